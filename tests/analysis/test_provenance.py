"""Unknown is not zero: cost without usage, estimated and cached cost, ungraded answers and
truncation, through the tables, the end-of-run table and pick (analysis.provenance)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lavabench.analysis.pick import format_pick, pick_model
from lavabench.analysis.tables import cost_table, model_table, per_model_summary, prepare
from lavabench.cli import main
from lavabench.records.reader import read_runs
from lavabench.report.terminal import summary_notes, summary_table
from tests.analysis.test_analysis_frontier import make_rows, write_run

PRICES = {"nousage": ("0.1", "0.2"), "paid": ("1", "2"), "a": ("1", "1"), "b": ("1", "1")}


def no_usage_rows() -> pd.DataFrame:
    """`nousage` (as good as `paid`) streamed no usage: its cost is null, not 0."""
    rows = make_rows({"nousage": {"acc": 0.97, "pico": 1}, "paid": {"acc": 0.97, "pico": 5000}},
                     items=200)  # fmt: skip
    rows.loc[rows.model == "nousage", "cost_pico_usd"] = None
    return rows


def test_unknown_cost_is_unknown_in_tables_and_the_run_table() -> None:
    df = prepare(no_usage_rows())
    costs = cost_table(df).set_index("model")
    assert costs.loc["nousage", "cost_basis"] == "unknown"
    assert costs.loc["nousage", "cost_unknown"] == 200
    assert math.isnan(costs.loc["nousage", "usd_per_1k_items"])
    assert costs.loc["nousage", "cost_usd"] is None and costs.loc["paid", "cost_basis"] == "server"
    summary = per_model_summary(no_usage_rows())
    text = " ".join(str(c) for c in summary_table(summary, title="t").columns[-1].cells)
    assert "unknown (200 rows)" in text and "0.000000" not in text
    assert any("cost unknown for 200 answers" in n for n in summary_notes(summary))


def test_pick_never_ranks_a_model_cheaper_on_missing_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    df = prepare(no_usage_rows())
    result = pick_model(df, cost_table(df), min_quality=0.85)
    assert result.pick is not None and result.pick.model == "paid"
    (unknown,) = result.cost_unknown
    assert unknown.model == "nousage" and not unknown.qualifies
    text = format_pick(result)
    assert "not ranked: nousage: cost unknown: 200 answers carried no usage" in text
    assert "would pass the quality and latency limits" in text
    run = write_run(tmp_path / "run", no_usage_rows(), PRICES)
    assert main(["pick", str(run), "--min-quality", "0.85"]) == 0
    assert "pick:      paid" in capsys.readouterr().out
    table = model_table(read_runs([run])).set_index("model")
    assert not table.loc["nousage", "on_frontier"] and table.loc["paid", "on_frontier"]
    assert list(table.index) == ["paid", "nousage"]  # unknown cost sorts last, not first


def test_estimated_cost_ranks_with_its_label() -> None:
    rows = no_usage_rows()
    rows["cost_source"] = np.where(rows.model == "nousage", "estimate", "server_usage")
    rows.loc[rows.model == "nousage", "cost_pico_usd"] = 3
    df = prepare(rows)
    result = pick_model(df, cost_table(df), min_quality=0.85)
    assert result.pick is not None and result.pick.model == "nousage"
    assert result.pick.cost_basis == "estimate" and "/1k items est" in format_pick(result)
    summary = per_model_summary(rows)
    cells = list(summary_table(summary, title="t").columns[-1].cells)
    assert any(c.startswith("~") and c.endswith(" est") for c in cells)


def test_cached_answers_are_priced_at_their_original_cost_not_zero() -> None:
    rows = make_rows({"a": {"acc": 0.9, "pico": 1000}}, items=10)
    rows["response_cached"] = np.arange(10) < 5
    rows["cost_source"] = np.where(rows.response_cached, "cached", "server_usage")
    row = cost_table(prepare(rows)).iloc[0]
    assert row.usd_per_item == pytest.approx(1000 / 1e12)  # not halved by the cache
    assert row.cost_known_usd * 10**12 == 5 * 1000  # spend: only the 5 new requests
    assert row.cost_cached == 5
    # an older cached row without a cost is left out of cost per item, not priced at 0
    rows.loc[rows.response_cached, "cost_pico_usd"] = None
    old = rows.drop(columns=["cost_source"])
    assert cost_table(prepare(old)).iloc[0].usd_per_item == pytest.approx(1000 / 1e12)


def judge_outage_rows() -> pd.DataFrame:
    """37 items judged: 14 right, 3 wrong, and 20 whose judge request failed."""
    rows = make_rows({"a": {"acc": 14 / 37}}, items=37)
    rows["grader"] = "llm_judge"
    failed = np.arange(37) >= 17
    rows["correct"] = np.where(failed, None, rows["correct"])
    rows["grade_error"] = np.where(failed, "judge request failed: unavailable: 503", None)
    return rows


def test_a_judge_outage_leaves_answers_ungraded_not_wrong() -> None:
    rows = judge_outage_rows()
    summary = per_model_summary(rows).iloc[0]
    assert (summary.graded, summary.ungraded) == (17, 20)
    assert summary.accuracy == pytest.approx(14 / 17)  # was 14/37 = 0.378 when counted wrong
    assert any("20 of 37 answers ungraded" in n for n in summary_notes(per_model_summary(rows)))
    df = prepare(rows)
    result = pick_model(df, cost_table(df), min_quality=0.1)
    assert result.pick is not None and result.pick.graded == 17
    assert "20 answers ungraded (accuracy over 17 graded)" in format_pick(result)


def test_recorded_grade_status_wins_and_unsupported_prompts_are_ungraded() -> None:
    rows = make_rows({"a": {"acc": 1.0}}, items=10)
    rows["grader"] = "ifeval"
    rows["grade_status"] = np.where(np.arange(10) < 3, "ungraded", "graded")
    rows["correct"] = np.where(np.arange(10) < 3, None, True)
    summary = per_model_summary(rows).iloc[0]
    assert (summary.graded, summary.ungraded, summary.accuracy) == (7, 3, 1.0)


def test_truncation_rate_is_shown_with_advice_in_the_table_and_pick() -> None:
    rows = make_rows({"a": {"acc": 0.9}}, items=20)
    rows["finish_reason"] = np.where(np.arange(20) < 5, "length", "stop")
    rows["max_tokens"] = 512
    summary = per_model_summary(rows)
    assert summary.iloc[0].truncation_rate == 0.25
    assert any("5 answers (25%) cut at max_tokens=512" in n and "raise runner.max_tokens" in n
               for n in summary_notes(summary))  # fmt: skip
    df = prepare(rows)
    text = format_pick(pick_model(df, cost_table(df), min_quality=0.99))
    assert "25% of answers cut at max_tokens=512: raise runner.max_tokens" in text


def test_judge_cost_counts_in_pick_only_when_asked() -> None:
    rows = make_rows({"a": {"acc": 0.97, "pico": 100}, "b": {"acc": 0.97, "pico": 200}}, 200)
    rows["judge_model"] = "glm-5p1"
    rows["judge_cost_pico_usd"] = np.where(rows.model == "a", 500, 10)
    df = prepare(rows)
    plain = pick_model(df, cost_table(df), min_quality=0.85)
    graded = pick_model(
        df, cost_table(df, include_grading=True), min_quality=0.85, cost_includes_grading=True
    )
    assert plain.pick is not None and plain.pick.model == "a"
    assert graded.pick is not None and graded.pick.model == "b"
    assert "includes grading" in format_pick(graded)
    summary = per_model_summary(rows).set_index("model")
    assert summary.loc["a", "judge_cost_usd"] == pytest.approx(200 * 500 / 1e12)
