"""End to end on the simulator: BFCL tool calls graded, accuracy recovers the configured skill.

The simulator's tool-call truth (sim/tools.py) is a Bernoulli(skill) draw per item, so the
expected accuracy is the skill itself (one BFCL simple item contradicts its own schema and
fails even when "right": 1 in 400, far inside the interval). Fixed seeds: deterministic.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lavabench.analysis.intervals import wilson_interval
from tests.conftest import SHARED_DATASETS, read_log, run_cli

MODELS = ["deepseek-v3p2", "mixtral-8x22b-instruct"]
ITEMS = 200
pytestmark = pytest.mark.skipif(
    not (SHARED_DATASETS / "bfcl").is_dir(),
    reason=f"BFCL data not found at {SHARED_DATASETS / 'bfcl'} (present in CI)",
)


def test_bfcl_run_recovers_skill_and_bills_what_the_sim_sent(
    tmp_path: Path, sim_defaults: dict, composed
) -> None:
    from lavabench.catalog import catalog_from_mapping, cost_pico_usd

    catalog = catalog_from_mapping(composed.catalog)
    log = tmp_path / "sim.jsonl"
    done = run_cli(
        [
            "run",
            "dataset=bfcl_simple",
            f"dataset.limit={ITEMS}",
            f"model=[{','.join(MODELS)}]",
            f"results_dir={tmp_path}",
            "sim.zero_delays=true",
            "runner.concurrency=32",
            f"sim.log_path={log}",
        ],
        env={"LAVABENCH_DATA_MIRROR": str(SHARED_DATASETS)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    records = pd.read_parquet(run_dir / "records.parquet")
    assert len(records) == ITEMS * len(MODELS) and set(records["grader"]) == {"tool_call"}
    for model, rows in records.groupby("model"):
        profile = sim_defaults["models"][model]
        skill = (profile.get("dataset_skill") or {}).get("bfcl_simple", profile["skill"])
        k = int(rows["correct"].sum())
        lo, hi = wilson_interval(k, ITEMS, 0.95)
        assert lo <= skill <= hi, (model, k, skill)
        # unparsed answers are their own outcome: counted, never right
        unparsed = rows[rows["format_ok"] == False]  # noqa: E712
        assert not unparsed["correct"].any()
        called = rows[rows["tool_calls"].notna()]
        assert (called["finish_reason"] == "tool_calls").all() and len(called) > ITEMS // 2
        assert called["ttft_s"].notna().all() and (called["content_chunks"] > 0).all()
    assert (records["format_ok"] == False).sum() > 0  # noqa: E712  (mixtral: 55% wrong)
    sent = pd.DataFrame(r for r in read_log(log) if r.get("completion_id"))
    joined = records.merge(sent, left_on="response_id", right_on="completion_id",
                           suffixes=("", "_sim"))  # fmt: skip
    assert len(joined) == len(records)
    assert (joined["prompt_tokens"] == joined["prompt_tokens_sim"]).all()
    assert (joined["completion_tokens"] == joined["completion_tokens_sim"]).all()
    assert (joined["correct"] == joined["correct_sim"]).all()  # grader agrees with the sim
    for row in joined.itertuples():
        expected = cost_pico_usd(
            catalog.select([row.model])[0].price, prompt_tokens=row.prompt_tokens_sim,
            completion_tokens=row.completion_tokens_sim, cached_tokens=0 if pd.isna(row.cached_tokens_sim) else int(row.cached_tokens_sim),
        )  # fmt: skip
        assert row.cost_pico_usd == expected
