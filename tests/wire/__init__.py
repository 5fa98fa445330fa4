"""Tests of lavabench/wire/ (the tree mirrors the package)."""
