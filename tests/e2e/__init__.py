"""End-to-end tests: the CLI or the runner through the real HTTP stack to the simulator on loopback."""
