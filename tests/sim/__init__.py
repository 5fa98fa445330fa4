"""Tests of lavabench/sim/ (the tree mirrors the package)."""
