"""End to end: gsm8k (first 50 rows) against the simulator, graded, with honest intervals.

The simulator's truth for a model on an item is P = p_correct(skill, difficulty(item)), so
the configured accuracy on these 50 items is the mean of P over them (not `skill` itself).
Everything is seeded (sim seed, runner seed), so the run is deterministic: the check
"Wilson 95% interval contains the truth" either always passes or always fails for this
configuration; across configurations it would fail about 1 in 20 per model, which is why
the seeds are fixed here rather than varied.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from lavabench.analysis.quality import paired_comparison, quality_summary
from lavabench.sim.answers import p_correct
from lavabench.sim.determinism import unit
from tests.conftest import SHARED_DATASETS, run_cli

MODELS = ["gpt-oss-20b", "deepseek-v3p2", "mixtral-8x22b-instruct"]

pytestmark = pytest.mark.skipif(
    not (SHARED_DATASETS / "gsm8k" / "test.jsonl").exists(),
    reason=f"public datasets not found at {SHARED_DATASETS} (present in CI)",
)


def test_gsm8k_sample_against_sim_recovers_configured_accuracy(
    tmp_path: Path, sim_defaults: dict
) -> None:
    done = run_cli(
        [
            "run",
            "dataset=gsm8k",
            "dataset.limit=50",
            f"model=[{','.join(MODELS)}]",
            f"results_dir={tmp_path}",
            "sim.zero_delays=true",
        ],
        env={"LAVABENCH_DATA_MIRROR": str(SHARED_DATASETS)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    records = pd.read_parquet(run_dir / "records.parquet")
    assert len(records) == 150
    assert set(records["grader"]) == {"numeric"}
    assert records["correct"].notna().all()
    assert records["extracted_answer"].notna().all()

    rows = [json.loads(line) for line in (SHARED_DATASETS / "gsm8k" / "test.jsonl").open()][:50]
    seed = sim_defaults["seed"]
    summary = quality_summary(records).set_index("model")
    for model in MODELS:
        skill = sim_defaults["models"][model]["skill"]
        truth = sum(p_correct(skill, unit(seed, "difficulty", r["question"])) for r in rows) / 50
        row = summary.loc[model]
        assert row["n"] == 50
        assert row["ci_low"] <= truth <= row["ci_high"], (model, truth, row.to_dict())

    by_model = {m: g.set_index("item_id")["correct"] for m, g in records.groupby("model")}
    better = paired_comparison(by_model["deepseek-v3p2"], by_model["mixtral-8x22b-instruct"])
    assert better.n == 50
    assert better.mid_p < 0.05  # skill 0.87 vs 0.45: the paired test must see it


def test_sim_replies_in_the_requested_format() -> None:
    from lavabench.grading.registry import get_grader
    from lavabench.sim.answers import AnswerKey
    from lavabench.sim.replies import answer_tokens

    key = AnswerKey.load(
        [
            str(SHARED_DATASETS / "gsm8k" / "test_first200.jsonl"),
            str(SHARED_DATASETS / "math500" / "test_first200.jsonl"),
            str(SHARED_DATASETS / "humaneval" / "HumanEval.jsonl"),
            str(SHARED_DATASETS / "agieval" / "sat-math.jsonl"),
            str(SHARED_DATASETS / "bbh" / "bbh" / "date_understanding.json"),
            str(SHARED_DATASETS / "mmlu" / "sample200"),
        ],
        seed=1,
    )
    formats = {item.format for item in key.items()}
    assert formats == {"gsm8k", "boxed", "code", "letter", "paren_letter"}
    graders = {
        "gsm8k": ("numeric", {}),
        "boxed": ("math", {}),
        "letter": ("multiple_choice", {"letters": "ABCDE"}),
        "paren_letter": ("exact", {"final_answer": True, "option_letters": True}),
    }
    for item in key.items():
        if item.format == "code":
            continue
        name, options = graders[item.format]
        for correct in (True, False):
            text = "".join(answer_tokens(1, "m", item, correct))
            grade = get_grader(name)(text, item.answer, options)
            assert grade.correct is correct, (item.id, text, item.answer)
    humaneval = SHARED_DATASETS / "humaneval" / "HumanEval.jsonl"
    rows = {r["task_id"]: r for r in map(json.loads, humaneval.open())}
    code = get_grader("code")
    for item in [i for i in key.items() if i.format == "code"][:3]:
        row = rows[item.id]
        ref = json.dumps({k: row[k] for k in ("prompt", "test", "entry_point")})
        for correct in (True, False):
            text = "".join(answer_tokens(1, "m", item, correct))
            assert text.count("```") == 2
            assert code(text, ref, {}).correct is correct, text
