"""The Grade value every grader returns (re-exported by lavabench.grading)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Grade:
    """`correct`/`score` are None when the item has no reference (nothing to grade against).

    `format_ok` is False when the answer was not in the format the grader needs (an
    *unparsed* answer, counted apart from wrong ones), None when the grader has no format rule.
    `ungraded_reason` is set when a grader with a reference still cannot grade this answer
    (correct None): such an answer is ungraded, never counted as wrong.
    """

    correct: bool | None
    score: float | None
    extracted: str | None
    format_ok: bool | None = None
    ungraded_reason: str | None = None


def verdict(correct: bool, extracted: str | None) -> Grade:
    """A graded result: score 1.0 when correct, else 0.0."""
    return Grade(correct, 1.0 if correct else 0.0, extracted)
