"""The grade hook: each answer graded as its row is made, off the loop for blocking graders.

A grader bug must not lose the response: the exception is stored in `grade_error`
(grade_status `grade_error`). A grader that cannot grade an answer returns correct None
(grade_status `ungraded`, with its reason): never counted as wrong. A grader
with `reads = "tool_calls"` grades the row's tool calls (its JSON list, "[]" for none)
instead of the answer text."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lavabench.datasets.spec import DatasetSpec
from lavabench.grading.base import Grade
from lavabench.records.schema import Record
from lavabench.runner.plan import Job


def grade_hook(grader: Any, spec: DatasetSpec) -> Callable[[Job, Record, str], Awaitable[None]]:
    """Grade each answer; a `blocking` grader (code execution: 30 ms-5 s a sample) runs in a
    thread so the event loop keeps stamping tokens of the requests in flight."""
    blocking = bool(getattr(grader, "blocking", False))
    reads_tool_calls = getattr(grader, "reads", "text") == "tool_calls"
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2) if blocking else None

    async def grade(job: Job, record: Record, answer_text: str) -> None:
        if job.prompt.reference is None:
            record.grade_status = "no_reference"
            return
        record.grader = spec.grader
        answer = (record.tool_calls or "[]") if reads_tool_calls else answer_text
        args = (answer, job.prompt.reference, spec.grader_options)
        try:
            if pool is not None:
                result: Grade = await asyncio.get_running_loop().run_in_executor(
                    pool, grader, *args
                )
            else:
                result = grader(*args)
        except Exception as exc:  # a grader bug must not lose the response
            record.grade_error = f"{type(exc).__name__}: {exc}"
            record.grade_status, record.ungraded_reason = "grade_error", "grader raised"
            return
        if result.correct is None:
            record.grade_status = "ungraded"
            record.ungraded_reason = result.ungraded_reason or "the grader gave no verdict"
        else:
            record.grade_status = "graded"
        record.correct = result.correct
        record.score = result.score
        record.extracted_answer = result.extracted
        record.format_ok = result.format_ok

    return grade
