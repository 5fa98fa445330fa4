"""analysis/workloads.py: cache state as reported (unknown is not 0), turns, time slices."""

from __future__ import annotations

import math

import pandas as pd

from lavabench.analysis.workloads import cache_table, time_slices, turn_table


def rows(**cols: list) -> pd.DataFrame:  # type: ignore[type-arg]
    n = len(next(iter(cols.values())))
    base = {"model": ["m"] * n, "dataset": ["w"] * n, "status": ["ok"] * n,
            "is_warmup": [False] * n, "e2e_s": [1.0] * n, "output_tokens_per_s": [50.0] * n}  # fmt: skip
    return pd.DataFrame({**base, **cols})


def test_hit_rate_counts_only_rows_that_report_cached_tokens() -> None:
    df = rows(prompt_tokens=[1000, 1000, 1000, 1000], cached_tokens=[0, 800, 800, None],
              ttft_s=[0.5, 0.1, 0.2, 0.3])  # fmt: skip
    t = cache_table(df).iloc[0]
    assert (t.n, t.reported, t.requests_hit) == (4, 3, 2)
    assert t.hit_rate == 1600 / 3000
    assert abs(t.ttft_p50_cached_s - 0.15) < 1e-12 and t.ttft_p50_uncached_s == 0.5
    unknown = cache_table(rows(prompt_tokens=[10], cached_tokens=[None], ttft_s=[0.1])).iloc[0]
    assert math.isnan(unknown.hit_rate) and unknown.reported == 0  # not a 0% hit rate


def test_turn_table_counts_failures_as_inf() -> None:
    df = rows(turn_index=[0, 0, 1, 1], ttft_s=[0.4, 0.6, 0.1, None], cached_tokens=[0, 0, 900, 0])
    df.loc[3, "status"] = "error"
    t = turn_table(df)
    assert t.turn_index.tolist() == [0, 1] and t.ttft_p50_s.iloc[0] == 0.5
    assert math.isinf(t.ttft_p90_s.iloc[1]) and t.cached_tokens_mean.iloc[1] == 450


def test_time_slices_put_each_request_in_its_window() -> None:
    sends = [0, 2e9, 11e9, 12e9, 25e9, None]
    df = rows(first_send_ns=sends, ttft_s=[0.1, 0.3, 1.0, 1.2, 2.0, 9.0])
    t = time_slices(df, window_s=10)
    assert t.window_start_s.tolist() == [0.0, 10.0, 20.0] and t.n.tolist() == [2, 2, 1]
    assert t.ttft_p50_s.round(9).tolist() == [0.2, 1.1, 2.0]  # drift inside the run shows
