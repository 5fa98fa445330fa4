"""Tests of lavabench/records/ (the tree mirrors the package)."""
