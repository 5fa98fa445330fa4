"""The composition roots: one module (or package) per command, the only layer that wires the
request path and the data path together, and the only one that starts the simulator.

May import anything in lavabench. Nothing imports it but `cli.py` (through its lazy table).
See docs/architecture.md."""
