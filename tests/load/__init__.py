"""Tests of lavabench/load/ (the tree mirrors the package)."""
