"""Tests of lavabench/grading/ (the tree mirrors the package)."""
