"""Pure tables -> tables: the per-model summary of a run.

Conventions (shared/docs/statistics.md): warm-up rows are excluded; a failed request counts
as +inf latency (so errors push percentiles up instead of vanishing from them) and as not
correct; percentiles are over requests; cost is summed exactly from integer pico-USD.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa

from lavabench.catalog import PICO_PER_USD

SUMMARY_COLUMNS = [
    "model",
    "n",
    "errors",
    "retried",
    "accuracy",
    "ttft_p50_s",
    "ttft_p90_s",
    "e2e_p50_s",
    "output_tokens_per_s_mean",
    "cost_usd",
]


def measured_rows(table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Rows that count for statistics: everything but warm-up requests."""
    df = table.to_pandas() if isinstance(table, pa.Table) else table
    return df[~df["is_warmup"].fillna(False).astype(bool)]


def latency_with_failures(df: pd.DataFrame, column: str) -> pd.Series:
    """`column` with failed requests set to +inf, as float."""
    values = df[column].astype("float64")
    return values.where(df["status"] == "ok", np.inf)


def per_model_summary(table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """One row per model: n, errors, retried, accuracy, TTFT p50/p90, E2E p50, tok/s, cost."""
    df = measured_rows(table).copy()
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    df["_ttft"] = latency_with_failures(df, "ttft_s")
    df["_e2e"] = latency_with_failures(df, "e2e_s")
    df["_error"] = df["status"] != "ok"
    df["_retried"] = df["attempts"] > 1
    df["_correct"] = df["correct"].fillna(False).astype(bool) & ~df["_error"]
    # Accuracy counts graded answers and failed requests (as wrong) in the denominator.
    df["_in_accuracy"] = df["grader"].notna() | df["_error"]
    df["_cost"] = df["cost_pico_usd"].fillna(0).astype("int64")
    grouped = df.groupby("model", sort=False)
    out = pd.DataFrame(
        {
            "n": grouped.size(),
            "errors": grouped["_error"].sum(),
            "retried": grouped["_retried"].sum(),
            "ttft_p50_s": grouped["_ttft"].quantile(0.5),
            "ttft_p90_s": grouped["_ttft"].quantile(0.9),
            "e2e_p50_s": grouped["_e2e"].quantile(0.5),
            "output_tokens_per_s_mean": grouped["output_tokens_per_s"].mean(),
        }
    )
    accuracy = df[df["_in_accuracy"]].groupby("model", sort=False)["_correct"].mean()
    any_graded = grouped["grader"].count() > 0
    out["accuracy"] = accuracy.reindex(out.index).where(any_graded)
    out["cost_usd"] = [
        Decimal(int(v)) / PICO_PER_USD for v in grouped["_cost"].sum().reindex(out.index)
    ]
    out = out.reset_index()
    return out[SUMMARY_COLUMNS]
