"""How a workload run is shown: cache state and per-turn tables (terminal), time slices and
per-turn TTFT (figures). Computes nothing itself: the tables are analysis/workloads.py's."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from lavabench.analysis.workloads import cache_table, time_slices, turn_table

if TYPE_CHECKING:  # rich only where tables are printed: `lavabench report` prints none
    from rich.table import Table

WINDOW_S = 10.0


def _ms(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "inf" if math.isinf(value) else f"{value * 1000:.0f}"


def _pct(value: Any) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{100 * value:.1f}%")
    )


def workload_tables(rows: pd.DataFrame) -> list[Table]:
    """The cache table (any run with rows) and the per-turn table (conversations)."""
    from rich.table import Table

    tables = []
    cache = cache_table(rows)
    if not cache.empty:
        t = Table(title="prompt cache (cached_tokens as reported; - = not reported)",
                  title_justify="left")  # fmt: skip
        for name in ("model", "workload/dataset", "n", "reported", "hit rate", "requests hit",
                     "TTFT p50 ms cached", "uncached"):  # fmt: skip
            t.add_column(name, justify="left" if name in ("model", "workload/dataset") else "right")
        for r in cache.itertuples(index=False):
            t.add_row(str(r.model), str(r.dataset), str(r.n), str(r.reported), _pct(r.hit_rate),
                      "-" if r.requests_hit is None or pd.isna(r.requests_hit)
                      else str(int(r.requests_hit)),
                      _ms(r.ttft_p50_cached_s), _ms(r.ttft_p50_uncached_s))  # fmt: skip
        tables.append(t)
    turns = turn_table(rows)
    if not turns.empty:
        t = Table(title="conversation turns", title_justify="left")
        for name in ("model", "turn", "n", "TTFT p50 ms", "TTFT p90 ms", "cached tok mean"):
            t.add_column(name, justify="left" if name == "model" else "right")
        for r in turns.itertuples(index=False):
            cached = "-" if pd.isna(r.cached_tokens_mean) else f"{r.cached_tokens_mean:.0f}"
            t.add_row(str(r.model), str(r.turn_index), str(r.n), _ms(r.ttft_p50_s),
                      _ms(r.ttft_p90_s), cached)  # fmt: skip
        tables.append(t)
    return tables


def print_workload_tables(rows: pd.DataFrame) -> None:
    """Printed after the per-model table when the run sent a workload."""
    from rich.console import Console

    console = Console(width=max(132, Console().width))
    for table in workload_tables(rows):
        console.print(table)


def draw_workload_figures(rows: pd.DataFrame, figs: Any, colors: dict[str, Any]) -> None:
    """TTFT p50 per model over fixed windows of the run (always, when rows have send times)
    and per conversation turn (when there are turns). `figs` is the page's figure collector."""
    draw_workload_series(*workload_series(rows), figs, colors)


def workload_series(rows: pd.DataFrame) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """What the workload figures draw: the time slices when they span two windows or more,
    the per-turn table when there are turns (None: no such figure). Small tables, so a
    figure worker can draw them without the rows."""
    slices = None
    if "first_send_ns" in rows:
        slices = time_slices(rows, WINDOW_S)
        slices = slices if slices["window_start_s"].nunique() >= 2 else None
    turns = turn_table(rows) if "turn_index" in rows else None
    return slices, None if turns is None or turns.empty else turns


def draw_workload_series(
    slices: pd.DataFrame | None, turns: pd.DataFrame | None, figs: Any, colors: dict[str, Any]
) -> None:
    """The figures of `workload_series`' tables."""
    if slices is not None:
        fig, (ax,) = figs.new()
        for model, g in slices.groupby("model", observed=True):
            ax.plot(g["window_start_s"], g["ttft_p50_s"] * 1000, marker="o",
                    color=colors.get(str(model)), label=str(model))  # fmt: skip
        ax.set_xlabel(f"time into the run, s ({WINDOW_S:.0f} s windows, by first send)")
        ax.set_ylabel("TTFT p50, ms (failures as inf)")
        ax.legend(fontsize=7)
        figs.save(fig, "time_slices_ttft", "TTFT over the run")
    if turns is not None:
        fig, (ax,) = figs.new()
        for model, g in turns.groupby("model", observed=True):
            ax.plot(g["turn_index"], g["ttft_p50_s"] * 1000, marker="o",
                    color=colors.get(str(model)), label=str(model))  # fmt: skip
        ax.set_xlabel("conversation turn")
        ax.set_ylabel("TTFT p50, ms")
        ax.legend(fontsize=7)
        figs.save(fig, "turn_ttft", "TTFT per conversation turn")
