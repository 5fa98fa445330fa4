"""analysis.py: frontier properties, Wilson/cluster intervals, +inf percentiles, exact cost,
tolerant column reading. `make_rows`/`write_run` build synthetic runs for the pick and report
tests too (schema: docs/records.md)."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from lavabench.analysis.intervals import wilson_interval
from lavabench.analysis.tables import (
    accuracy_table,
    cost_table,
    latency_percentiles,
    model_table,
    pareto_frontier,
    prepare,
)
from lavabench.records.reader import read_columns, read_runs


def make_rows(
    spec: dict[str, dict[str, float]], items: int = 50, dataset: str = "d", repeats: int = 1
) -> pd.DataFrame:
    """Synthetic records: per model `acc` (first acc*items items correct), `ttft`, `pico`
    per request, `errors` (last items fail). Items are shared, so pairing works."""
    frames = []
    for model, p in spec.items():
        n = items * repeats
        idx = np.arange(n) % items
        error = idx >= items - int(p.get("errors", 0))
        correct = (idx < round(p.get("acc", 0.5) * items)) & ~error
        ttft = np.where(error, np.nan, p.get("ttft", 0.2) * (1 + (idx % 10) / 20))
        frames.append(
            pd.DataFrame(
                {
                    "run_id": "run-1",
                    "model": model,
                    "dataset": dataset,
                    "item_id": [f"i{j:04d}" for j in idx],
                    "repeat": np.arange(n) // items,
                    "is_warmup": False,
                    "status": np.where(error, "error", "ok"),
                    "error_type": np.where(error, "unavailable", None),
                    "attempts": np.where(idx % 7 == 0, 2, 1),
                    "ttft_s": ttft,
                    "e2e_s": ttft * 3,
                    "itl_p50_s": np.where(error, np.nan, 0.01),
                    "output_tokens_per_s": np.where(error, np.nan, 100.0),
                    "prompt_tokens": np.where(error, np.nan, 60.0),
                    "completion_tokens": np.where(error, np.nan, 30.0),
                    "cost_pico_usd": np.where(error, 0, int(p.get("pico", 1000))),
                    "grader": np.where(error, None, "numeric"),
                    "correct": np.where(error, None, correct),
                    "response_cached": False,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def write_run(
    run_dir: Path, rows: pd.DataFrame, prices: dict[str, tuple[str, str]], simulated: bool = True
) -> Path:
    """A run directory with records.parquet (only the given columns) and run.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(rows, preserve_index=False)
    pq.write_table(table, run_dir / "records.parquet")
    info = {
        "run_id": run_dir.name,
        "simulated": simulated,
        "dataset": {"name": "d", "sha256": "abc", "items": 50},
        "models": sorted(prices),
        "prices": {
            m: {"input_usd_per_mtok": i, "output_usd_per_mtok": o} for m, (i, o) in prices.items()
        },
    }
    (run_dir / "run.json").write_text(json.dumps(info))
    return run_dir


# --- frontier ---------------------------------------------------------------------------------

points = st.lists(
    st.tuples(st.integers(1, 6).map(float), st.integers(0, 6).map(lambda v: v / 6)),
    min_size=1,
    max_size=25,
)


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])


@given(points)
def test_no_frontier_point_is_dominated(pts: list[tuple[float, float]]) -> None:
    on = pareto_frontier(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
    for i, p in enumerate(pts):
        if on[i]:
            assert not any(_dominates(q, p) for q in pts)


@given(points)
def test_every_dominated_point_has_a_dominator_on_the_frontier(
    pts: list[tuple[float, float]],
) -> None:
    on = pareto_frontier(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
    assert on.any()  # a finite non-empty set always has a frontier
    for i, p in enumerate(pts):
        if not on[i]:
            assert any(on[j] and _dominates(q, p) for j, q in enumerate(pts))


@given(points)
def test_identical_points_share_their_fate(pts: list[tuple[float, float]]) -> None:
    doubled = pts + pts
    on = pareto_frontier(np.array([p[0] for p in doubled]), np.array([p[1] for p in doubled]))
    assert list(on[: len(pts)]) == list(on[len(pts) :])


def test_ties_and_nan() -> None:
    cost = np.array([1.0, 1.0, 2.0, 2.0, np.nan])
    quality = np.array([0.5, 0.5, 0.5, 0.9, 0.99])
    assert list(pareto_frontier(cost, quality)) == [True, True, False, True, False]


# --- intervals, percentiles, cost ----------------------------------------------------------------


def test_wilson_matches_the_textbook_formula() -> None:
    k, n, z = 8, 10, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo, hi = wilson_interval(k, n)
    assert math.isclose(lo, centre - half, rel_tol=1e-9) and math.isclose(hi, centre + half)
    one_sided_lo, one_sided_hi = wilson_interval(k, n, 0.95, "greater")
    assert one_sided_hi == 1.0 and lo < one_sided_lo < p  # one-sided 95% = two-sided 90%


def test_accuracy_uses_item_clusters_when_items_repeat() -> None:
    once = accuracy_table(prepare(make_rows({"a": {"acc": 0.8}})))
    twice = accuracy_table(prepare(make_rows({"a": {"acc": 0.8}}, repeats=2)))
    assert once.loc[0, "method"] == "wilson" and (once.loc[0, "k"], once.loc[0, "n"]) == (40, 50)
    assert "cluster-t" in twice.loc[0, "method"] and twice.loc[0, "answers_per_item"] == 2
    assert twice.loc[0, "accuracy"] == 0.8 and twice.loc[0, "items"] == 50


def test_failures_are_inf_in_percentiles_and_wrong_in_accuracy() -> None:
    df = prepare(make_rows({"a": {"acc": 1.0, "errors": 10}}))
    lat = latency_percentiles(df).iloc[0]
    assert math.isinf(lat.ttft_p90_s) and math.isinf(lat.ttft_p99_s)  # not NaN
    assert math.isfinite(lat.ttft_p50_s)
    assert accuracy_table(df).loc[0, "accuracy"] == 0.8


def test_cost_is_exact_and_per_item() -> None:
    df = prepare(make_rows({"a": {"pico": 10**12 // 3}}, items=3))
    row = cost_table(df).iloc[0]
    assert row.cost_usd == Decimal(3 * (10**12 // 3)) / 10**12
    assert math.isclose(row.usd_per_1k_items, 1000 * (10**12 // 3) / 1e12)


def test_reads_only_some_columns_from_an_older_schema(tmp_path: Path) -> None:
    rows = make_rows({"a": {"acc": 0.5}, "b": {"acc": 0.9}}).drop(columns=["response_cached"])
    write_run(tmp_path / "r1", rows, {"a": ("0.1", "0.2"), "b": ("1", "2")})
    table = read_columns(tmp_path / "r1", ["model", "response_cached"])
    assert table.column_names == ["model", "response_cached"]
    assert table["response_cached"].null_count == len(rows)
    runs = read_runs([tmp_path / "r1"])
    mt = model_table(runs)
    assert list(mt.model) == ["a", "b"] and runs.simulated
    assert mt.loc[1, "blended_usd_per_mtok"] == 1.25  # (3 x 1 + 2) / 4
