"""Pure: the tables a workload run is read by: cache state, per-turn latency, time slices.

Cache state is measured, not assumed: `cached_tokens` is what the server reported. A model
that reports none (null) is shown as unknown, never as a 0% hit rate; TTFT is split into
requests that hit the cache (cached_tokens > 0) and those that did not (== 0), over
successful requests (a failure has no first token to split). Time slices put each request in
the fixed window of its first send (`first_send_ns`, the run's clock), so warm-up,
throttling or drift inside a run show up as a slope instead of disappearing in a percentile.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lavabench.analysis.tables import latency_with_failures, measured_rows, percentile

CACHE_COLUMNS = [
    "model", "dataset", "n", "reported", "prompt_tokens", "cached_tokens", "hit_rate",
    "requests_hit", "ttft_p50_cached_s", "ttft_p50_uncached_s",
]  # fmt: skip
TURN_COLUMNS = ["model", "turn_index", "n", "ttft_p50_s", "ttft_p90_s", "cached_tokens_mean"]
SLICE_COLUMNS = ["model", "window_start_s", "n", "errors", "ttft_p50_s", "e2e_p50_s",
                 "output_tokens_per_s"]  # fmt: skip


def cache_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model and dataset (a workload's name): prompt and cached tokens reported, the
    token hit rate (over rows that report cached tokens), and TTFT p50 with and without a hit."""
    df = measured_rows(rows)
    df = df[df["status"] == "ok"]
    out = []
    for (model, dataset), g in df.groupby(["model", "dataset"], sort=True, observed=True):
        known = g[g["cached_tokens"].notna()]
        prompt = known["prompt_tokens"].sum()
        cached = known["cached_tokens"].sum()
        hit = known["cached_tokens"] > 0
        out.append({
            "model": model, "dataset": dataset, "n": len(g), "reported": len(known),
            "prompt_tokens": int(prompt), "cached_tokens": int(cached),
            "hit_rate": float(cached / prompt) if len(known) and prompt else math.nan,
            "requests_hit": int(hit.sum()) if len(known) else None,
            "ttft_p50_cached_s": percentile(known.loc[hit, "ttft_s"], 0.5),
            "ttft_p50_uncached_s": percentile(known.loc[~hit, "ttft_s"], 0.5),
        })  # fmt: skip
    return pd.DataFrame(out, columns=CACHE_COLUMNS)


def turn_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model and conversation turn: TTFT (failures as +inf) and mean cached tokens."""
    df = measured_rows(rows)
    df = df[df["turn_index"].notna()].copy()
    if df.empty:
        return pd.DataFrame(columns=TURN_COLUMNS)
    df["_ttft"] = latency_with_failures(df, "ttft_s")
    grouped = df.groupby(["model", "turn_index"], sort=True, observed=True)
    out = pd.DataFrame({
        "n": grouped.size(),
        "ttft_p50_s": grouped["_ttft"].agg(percentile, 0.5),
        "ttft_p90_s": grouped["_ttft"].agg(percentile, 0.9),
        "cached_tokens_mean": grouped["cached_tokens"].mean(),
    }).reset_index()  # fmt: skip
    out["turn_index"] = out["turn_index"].astype(int)
    return out[TURN_COLUMNS]


def time_slices(rows: pd.DataFrame, window_s: float = 10.0) -> pd.DataFrame:
    """Per model and fixed window of first-send time: n, errors, TTFT and E2E p50 (failures
    as +inf), mean output tokens/s. Rows without a send stamp are left out (never sent)."""
    if window_s <= 0:
        raise ValueError("window_s must be > 0")
    df = measured_rows(rows)
    df = df[df["first_send_ns"].notna()].copy()
    if df.empty:
        return pd.DataFrame(columns=SLICE_COLUMNS)
    start = df["first_send_ns"].astype("float64") / 1e9
    df["window_start_s"] = np.floor((start - start.min()) / window_s) * window_s
    df["_ttft"] = latency_with_failures(df, "ttft_s")
    df["_e2e"] = latency_with_failures(df, "e2e_s")
    df["_error"] = df["status"] != "ok"
    grouped = df.groupby(["model", "window_start_s"], sort=True, observed=True)
    out = pd.DataFrame({
        "n": grouped.size(),
        "errors": grouped["_error"].sum(),
        "ttft_p50_s": grouped["_ttft"].agg(percentile, 0.5),
        "e2e_p50_s": grouped["_e2e"].agg(percentile, 0.5),
        "output_tokens_per_s": grouped["output_tokens_per_s"].mean(),
    }).reset_index()  # fmt: skip
    return out[SLICE_COLUMNS]
