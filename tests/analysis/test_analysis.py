"""analysis.py: warm-ups excluded, failures as +inf latency and as wrong, exact cost sums."""

from __future__ import annotations

import math
from decimal import Decimal

import pandas as pd

from lavabench.analysis.tables import per_model_summary


def _rows() -> pd.DataFrame:
    base = {"is_warmup": False, "attempts": 1, "output_tokens_per_s": 50.0, "grader": "numeric"}
    rows = [
        # model a: 3 ok (2 correct), 1 failed; one warm-up that must not count
        {"model": "a", "status": "ok", "ttft_s": 0.1, "e2e_s": 1.0, "correct": True, "cost_pico_usd": 10**12 // 3},
        {"model": "a", "status": "ok", "ttft_s": 0.2, "e2e_s": 1.0, "correct": True, "cost_pico_usd": 10**12 // 3},
        {"model": "a", "status": "ok", "ttft_s": 0.3, "e2e_s": 1.0, "correct": False, "cost_pico_usd": 10**12 // 3 + 1, "attempts": 3},
        {"model": "a", "status": "error", "ttft_s": None, "e2e_s": None, "correct": None, "cost_pico_usd": None, "grader": None},
        {"model": "a", "status": "ok", "ttft_s": 9.9, "e2e_s": 9.9, "correct": False, "cost_pico_usd": 5, "is_warmup": True},
        # model b: no reference (no grader): accuracy is not defined
        {"model": "b", "status": "ok", "ttft_s": 0.5, "e2e_s": 2.0, "correct": None, "cost_pico_usd": 7, "grader": None},
    ]  # fmt: skip
    return pd.DataFrame([{**base, **r} for r in rows])


def test_summary_counts_errors_as_wrong_and_excludes_warmups() -> None:
    s = per_model_summary(_rows()).set_index("model")
    a, b = s.loc["a"], s.loc["b"]
    assert (a.n, a.errors, a.retried) == (4, 1, 1)
    assert a.accuracy == 0.5  # 2 correct of 3 graded + 1 failed
    assert math.isinf(a.ttft_p90_s)  # the failure is +inf latency, not a missing value
    assert a.ttft_p50_s == 0.25
    assert a.cost_usd == Decimal(1)  # exact: 1/3 + 1/3 + (1/3 + 1 pico)
    assert math.isnan(b.accuracy) and b.cost_usd == Decimal(7) / 10**12


def test_empty_table_gives_empty_summary() -> None:
    assert per_model_summary(_rows().iloc[0:0]).empty
