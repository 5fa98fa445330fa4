"""Tests of lavabench/datasets/ (the tree mirrors the package)."""
