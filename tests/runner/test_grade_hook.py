"""runner/grade.py: every answered row says whether it was graded, and why not."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from lavabench.grading.registry import get_grader
from lavabench.records.reader import read_records
from lavabench.records.schema import Record
from lavabench.runner.grade import grade_hook
from tests.conftest import run_cli

UNSUPPORTED = json.dumps(
    {"instruction_id_list": ["language:response_language"], "kwargs": [{"language": "kn"}]}
)


def _grade(grader: Any, reference: str | None, name: str = "g") -> Record:
    spec = SimpleNamespace(grader=name, grader_options={})
    job = SimpleNamespace(prompt=SimpleNamespace(reference=reference))
    record = Record()
    asyncio.run(grade_hook(grader, spec)(job, record, "some answer"))  # type: ignore[arg-type]
    return record


def test_grade_status_for_each_outcome() -> None:
    graded = _grade(get_grader("exact"), "some answer")
    assert (graded.grade_status, graded.correct) == ("graded", True)
    unsupported = _grade(get_grader("ifeval"), UNSUPPORTED, "ifeval")
    assert (unsupported.grade_status, unsupported.correct) == ("ungraded", None)
    assert unsupported.ungraded_reason == "no supported instruction to check"

    def broken(*_: Any) -> Any:
        raise ValueError("bad reference")

    error = _grade(broken, "x")
    assert (error.grade_status, error.correct) == ("grade_error", None)
    assert error.grade_error == "ValueError: bad reference"
    assert _grade(get_grader("exact"), None).grade_status == "no_reference"


def test_a_judge_that_gives_no_score_leaves_answers_ungraded(tmp_path: Path) -> None:
    # The judge's own answer cut at 4 tokens has no `Score: N` line: a judge outage.
    proc = run_cli(["run", "dataset=demo-judge", "model=[gpt-oss-20b]", "dataset.limit=4",
                    "dataset.grader_options.max_tokens=4", f"results_dir={tmp_path}",
                    "run_id=outage"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    df = read_records(tmp_path / "outage").to_pandas()
    measured = df[~df.is_warmup]
    assert (measured.grade_status == "ungraded").all() and measured.correct.isna().all()
    assert (measured.ungraded_reason == "judge gave no score").all()
    assert "4 of 4 answers ungraded" in proc.stdout
