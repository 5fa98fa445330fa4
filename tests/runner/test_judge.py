"""LLM-as-judge: prompt and score parsing (pure), options, and a run against the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lavabench.catalog import catalog_from_mapping
from lavabench.errors import ConfigError
from lavabench.grading.registry import get_grader
from lavabench.records.reader import read_records
from lavabench.runner.judge import (
    INSTRUCTION,
    JudgeOptions,
    judge_messages,
    judge_options,
    parse_score,
)
from tests.conftest import ROOT, run_cli

CATALOG = catalog_from_mapping(yaml.safe_load((ROOT / "conf/catalog/lava.yaml").read_text()))
OPTS = JudgeOptions(judge_model="glm-5p1", rubric="Exact final answer.", max_score=10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Looks right.\nScore: 9", 9.0),
        ("Score: 3\nOn reflection...\nScore: 8", 8.0),  # the last one counts
        ("**Score:** 7", 7.0),
        ("<think>Score: 10?</think>The response misses the point. Score: 2", 2.0),
        ("score: 6.5", 6.5),
        ("Score: 42", 10.0),  # capped at max_score
        ("I would give it a seven.", None),
    ],
)
def test_parse_score(text: str, expected: float | None) -> None:
    assert parse_score(text, 10) == expected


def test_judge_prompt_carries_question_reference_response_rubric_and_instruction() -> None:
    system, user = judge_messages("What is 2+2?", "4", "It is 4.", OPTS)
    assert system["role"] == "system" and user["role"] == "user"
    for part in ("What is 2+2?", "Reference answer:\n4", "Response to grade:\nIt is 4.",
                 "Exact final answer.", INSTRUCTION.format(max_score=10)):  # fmt: skip
        assert part in user["content"]


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"judge_model": "nope", "rubric": "r"}, "judge_model"),
        ({"judge_model": "glm-5p1"}, "rubric"),
        ({"judge_model": "glm-5p1", "rubric": "r", "pass_score": 11}, "pass_score"),
        ({"judge_model": "glm-5p1", "rubric": "r", "temperature": 0}, "temperature"),
    ],
)
def test_bad_judge_options_name_the_key(options: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        judge_options(options, CATALOG)


def test_judged_run_records_judge_cost_apart_and_agrees_with_the_numeric_grade(
    tmp_path: Path,
) -> None:
    proc = run_cli(["run", "dataset=demo-judge", "model=[gpt-oss-20b,kimi-k2p6]",
                    "dataset.limit=15", f"results_dir={tmp_path}", "run_id=judged"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    df = read_records(tmp_path / "judged").to_pandas()
    assert len(df) == 30 and (df.status == "ok").all() and df.grade_error.isna().all()
    assert (df.grade_status == "graded").all()
    assert (df.grader == "llm_judge").all() and (df.judge_model == "glm-5p1").all()
    assert (df.judge_prompt_tokens > 0).all() and (df.judge_cost_pico_usd > 0).all()
    assert df.score.between(0, 1).all()
    # judge spend is separate: the graded model's cost is its own tokens at its own price
    judge_price = CATALOG.models["glm-5p1"].price
    expected = df.judge_prompt_tokens * int(
        judge_price.input * 10**6
    ) + df.judge_completion_tokens * int(judge_price.output * 10**6)
    assert (df.judge_cost_pico_usd == expected).all()
    assert (df.cost_pico_usd != df.judge_cost_pico_usd).all()
    # the simulated judge (skill ~0.8+) agrees with the numeric grader on most answers
    numeric = get_grader("numeric")
    refs = {row["id"]: row["answer"] for row in map(__import__("json").loads,
            (ROOT / "datasets/demo-arith.jsonl").read_text().splitlines())}  # fmt: skip
    truth = [
        numeric(t, refs[i], {}).correct for t, i in zip(df.response_text, df.item_id, strict=True)
    ]
    agreement = (df.correct == truth).mean()
    assert agreement >= 0.8, agreement
