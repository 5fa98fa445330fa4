"""Tests of lavabench/runner/ (the tree mirrors the package)."""
