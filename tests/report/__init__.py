"""Tests of lavabench/report/ (the tree mirrors the package)."""
