"""Tests of lavabench/analysis/ (the tree mirrors the package)."""
