"""Trend figures over the nightly history: per model, night by night, with a baseline band.

Per (night, model): TTFT p50 and p90 (failures as +inf, as everywhere), accuracy, and cost
per item. The band around each point is the mean +/- 2 sd of the previous `baseline_nights`
nights (the night itself excluded), which is what a reader compares tonight against; nights
with fewer than 2 earlier nights get no band. Vectorised per group; reads only history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lavabench.analysis.tables import cost_table, percentile, prepare
from lavabench.records.history import read_history

METRICS = (
    ("ttft_p50_s", "TTFT p50 (s)"),
    ("ttft_p90_s", "TTFT p90 (s)"),
    ("accuracy", "accuracy"),
    ("cost_per_item_usd", "USD per item"),
)


def trend_table(history: pd.DataFrame) -> pd.DataFrame:
    """One row per (night, model): the four trend metrics, nights in start order."""
    p = prepare(history)
    p["run_id"] = history.loc[p.index, "run_id"]
    p["night"] = history.loc[p.index, "run_started_at"].astype(str)
    grouped = p.groupby(["night", "run_id", "model"], sort=True)
    graded = p[p["_in_accuracy"]].groupby(["night", "run_id", "model"])["_correct"].mean()
    out = pd.DataFrame(
        {
            "ttft_p50_s": grouped["_ttft"].agg(percentile, 0.5),
            "ttft_p90_s": grouped["_ttft"].agg(percentile, 0.9),
        }
    )
    # cost_table's cost per item: unknown (NaN) when any answer's cost is unknown, never 0
    costs = cost_table(p, by=["night", "run_id", "model"]).set_index(["night", "run_id", "model"])
    out["cost_per_item_usd"] = costs["usd_per_item"].reindex(out.index)
    out["accuracy"] = graded.reindex(out.index)
    return out.reset_index()


def with_baseline_band(trends: pd.DataFrame, baseline_nights: int = 7) -> pd.DataFrame:
    """Add `<metric>_lo/_hi`: mean -/+ 2 sd of each model's previous nights (shifted by one)."""
    out = trends.sort_values(["model", "night"]).copy()
    for metric, _label in METRICS:
        values = out[metric].replace([np.inf, -np.inf], np.nan)
        past = values.groupby(out["model"]).transform(
            lambda s: s.shift(1).rolling(baseline_nights, min_periods=2).mean()
        )
        spread = values.groupby(out["model"]).transform(
            lambda s: s.shift(1).rolling(baseline_nights, min_periods=2).std()
        )
        out[f"{metric}_lo"] = past - 2 * spread
        out[f"{metric}_hi"] = past + 2 * spread
    return out


def draw_trends(
    history_dir: Path, figures: Any, colors: dict[str, Any], baseline_nights: int = 7
) -> None:
    """One 2x2 figure of the four metrics over nights, a line and a band per model."""
    trends = with_baseline_band(trend_table(read_history(history_dir)), baseline_nights)
    nights = sorted(trends["night"].unique())
    x_of = {night: i for i, night in enumerate(nights)}
    fig, _row = figures.new(ncols=1, width=11, height=7.5)
    fig.clear()
    axes = fig.subplots(2, 2, squeeze=False).ravel()
    for ax, (metric, label) in zip(axes, METRICS, strict=True):
        for model, rows in trends.groupby("model"):
            color = colors.get(model, "grey")
            xs = [x_of[n] for n in rows["night"]]
            ax.plot(xs, rows[metric], marker="o", color=color, label=str(model))
            ax.fill_between(xs, rows[f"{metric}_lo"], rows[f"{metric}_hi"], color=color, alpha=0.15)
        ax.set_ylabel(label)
        ax.set_xticks(range(len(nights)))
        ax.set_xticklabels(
            [n[5:16].replace("T", " ") for n in nights], rotation=45, ha="right", fontsize=7
        )
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figures.save(
        fig,
        "trends",
        f"Nightly trends, band = mean +/- 2 sd of the previous {baseline_nights} nights",
    )
