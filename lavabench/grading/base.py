"""The Grade value every grader returns (re-exported by lavabench.grading)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Grade:
    """`correct`/`score` are None when the item has no reference (nothing to grade against)."""

    correct: bool | None
    score: float | None
    extracted: str | None


def verdict(correct: bool, extracted: str | None) -> Grade:
    """A graded result: score 1.0 when correct, else 0.0."""
    return Grade(correct, 1.0 if correct else 0.0, extracted)
