"""Tests of lavabench/commands/ (the tree mirrors the package)."""
