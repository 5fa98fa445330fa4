"""Graders by name, one module each; `registry` maps names to graders and checks options. Pure:
code execution runs in a sandboxed subprocess (`code`)."""
