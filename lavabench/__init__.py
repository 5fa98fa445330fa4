"""lavabench: evaluate and benchmark Fireworks chat models through Lava's forward proxy.

Nothing runs on import. The request path is cli -> commands/run -> runner <-> load -> wire;
the data path is runner -> records -> analysis -> report; commands/ wires the two (the map
and its import rules: docs/architecture.md).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lavabench")
except PackageNotFoundError:  # running from a checkout without an install
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
