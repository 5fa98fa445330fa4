"""The report's figures: matplotlib (object API, Agg canvas, no pyplot state), drawn from
small inputs the parent computed (report.page's `figure_tasks`): tables of one row per model,
ECDF curves of a few hundred points, workload tables. Never the rows themselves, so a
figure worker forked before the records were read can draw them (report.workers).

Every model keeps one colour across all figures, a simulated run says so in every title,
and cost axes tick in dollars. Imported only where figures are drawn: the process that
reads records and computes the pick never loads matplotlib (issue 21: its import and first
text layout are ~2 s of `lavabench report`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from lavabench.report.figure_tasks import Drawn, FigureTask
from lavabench.report.formatting import usd_tick
from lavabench.report.trends import draw_trends
from lavabench.report.workloads import draw_workload_series

GREY = "#b8b8b8"
DPI = 110


def model_colors(models: list[str]) -> dict[str, Any]:
    """One colour per model, fixed by sorted name so every figure (and report) agrees."""
    palette = [colormaps["tab20"](i) for i in range(20)] + [
        colormaps["tab20b"](i) for i in range(20)
    ]
    return {m: palette[i % len(palette)] for i, m in enumerate(sorted(models))}


@dataclass
class Figures:
    """Collects the figures one task lays out; `write` draws each as PNG + SVG."""

    out_dir: Path
    simulated: bool
    pending: list[tuple[Figure, str, str]] = field(default_factory=list)  # (fig, name, title)

    @property
    def suffix(self) -> str:
        return " (simulated)" if self.simulated else ""

    def new(self, ncols: int = 1, width: float = 7.5, height: float = 5.0) -> tuple[Figure, Any]:
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        return fig, fig.subplots(1, ncols, squeeze=False)[0]

    def save(self, fig: Figure, name: str, title: str) -> None:
        fig.suptitle(title + self.suffix, fontsize=12)
        self.pending.append((fig, name, title + self.suffix))

    def write(self) -> list[Drawn]:
        return [write_figure(self.out_dir, *f) for f in self.pending]


def write_figure(out_dir: Path, fig: Figure, name: str, title: str) -> Drawn:
    """`name`.png and `name`.svg; returns the PNG bytes for the page."""
    png = io.BytesIO()
    fig.savefig(png, format="png")
    (out_dir / f"{name}.png").write_bytes(png.getvalue())
    # the SVG keeps the layout the PNG's draw just computed: constrained layout measures
    # every text again on each draw (~40% of drawing time in `lavabench report`)
    fig.set_layout_engine("none")
    fig.savefig(out_dir / f"{name}.svg", format="svg")
    return name, title, png.getvalue()


def draw_task(task: FigureTask, out_dir: Path, simulated: bool, models: list[str]) -> list[Drawn]:
    """Lay out and write the figures of one task, in page order."""
    figs = Figures(out_dir, simulated)
    BUILDERS[task.builder](figs, model_colors(models), *task.args)
    return figs.write()


def warm_up() -> None:
    """What every report's first figure pays once per process: fonts, the mathtext parser
    (log-axis tick labels), text metrics. Drawn to memory; changes no output."""
    fig = Figure(figsize=(2, 2), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([0.01, 10], [0, 1])
    ax.set_xscale("log")
    ax.set_xlabel("warm-up")
    fig.suptitle("warm-up", fontsize=12)
    fig.savefig(io.BytesIO(), format="png")
    fig.set_layout_engine("none")
    fig.savefig(io.BytesIO(), format="svg")


def dollar_axis(axis: Any, *, log: bool) -> None:
    """Ticks as `$0.02`, never `3×10⁻²`: on a log axis within two decades the 2x and 5x
    minor ticks are labelled too (matplotlib labels them in scientific notation)."""
    axis.set_major_formatter(FuncFormatter(usd_tick))
    if not log:
        axis.set_major_locator(MaxNLocator(5))  # "$0.0125" ticks crowd at the default 8-9
        return
    axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
    lo, hi = sorted(axis.get_view_interval())
    narrow = lo > 0 and math.log10(hi / lo) <= 2
    axis.set_minor_formatter(FuncFormatter(usd_tick) if narrow else NullFormatter())


def quality_vs_price(
    figs: Figures, colors: dict[str, Any], table: pd.DataFrame, x: str, name: str, title: str
) -> None:
    t = table[table["accuracy"].notna() & (table[x] > 0)]
    if t.empty:
        return
    frontier_column = "on_frontier" if x == "usd_per_1k_items" else "on_frontier_blended"
    t = t.assign(on_frontier=t[frontier_column])
    fig, (ax,) = figs.new()
    frontier = t[t["on_frontier"]].sort_values(x)
    ax.step(frontier[x], frontier["accuracy"], where="post", color="black", lw=1, alpha=0.6,
            label="Pareto frontier", zorder=1)  # fmt: skip
    for row in t.itertuples():
        color = colors[row.model] if row.on_frontier else GREY
        yerr = [[row.accuracy - row.acc_lo], [row.acc_hi - row.accuracy]]
        ax.errorbar(getattr(row, x), row.accuracy, yerr=yerr, fmt="o", color=color, ms=7,
                    capsize=3, zorder=3 if row.on_frontier else 2)  # fmt: skip
        ax.annotate(row.model, (getattr(row, x), row.accuracy), xytext=(5, 4),
                    textcoords="offset points", fontsize=8,
                    color="black" if row.on_frontier else "#888888")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel(
        "observed cost per 1,000 items (log)"
        if x == "usd_per_1k_items"
        else "blended list price per 1M tokens (3:1 input:output, log)"
    )
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{100 * v:.0f} %"))
    ax.set_ylabel("accuracy (95% interval)")
    ax.set_ylim(-0.02, 1.05)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, title="grey = dominated", title_fontsize=8)
    dollar_axis(ax.xaxis, log=True)
    figs.save(fig, name, title)


def _ecdf_panel(ax: Axes, curves: dict[str, Any], colors: dict[str, Any], xlabel: str) -> None:
    for model, (values, probs) in curves.items():
        ax.plot(values, probs, color=colors[model], label=model, lw=1.5)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of requests")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)


def latency_ecdf(
    figs: Figures, colors: dict[str, Any], ttft: dict[str, Any], e2e: dict[str, Any]
) -> None:
    fig, (a1, a2) = figs.new(ncols=2, width=11, height=4.8)
    _ecdf_panel(a1, ttft, colors, "TTFT, s (log)")
    _ecdf_panel(a2, e2e, colors, "end-to-end, s (log)")
    a2.legend(fontsize=7, loc="lower right")
    figs.save(fig, "latency_ecdf", "Latency distributions (failures keep the curve below 1)")


def speed(figs: Figures, colors: dict[str, Any], itl: dict[str, Any], table: pd.DataFrame) -> None:
    fig, (a1, a2) = figs.new(ncols=2, width=11, height=4.8)
    _ecdf_panel(a1, itl, colors, "median inter-token gap, s (log)")
    a1.set_ylabel("share of successful requests")
    a1.legend(fontsize=7, loc="lower right")
    for row in table.itertuples():
        if math.isnan(row.tok_s_p50):
            continue
        a2.errorbar(row.ttft_ok_p50_s, row.tok_s_p50, color=colors[row.model], fmt="o",
                    xerr=[[row.ttft_ok_p50_s - row.ttft_ok_p10_s], [row.ttft_ok_p90_s - row.ttft_ok_p50_s]],
                    yerr=[[row.tok_s_p50 - row.tok_s_p10], [row.tok_s_p90 - row.tok_s_p50]],
                    capsize=2)  # fmt: skip
        a2.annotate(row.model, (row.ttft_ok_p50_s, row.tok_s_p50), xytext=(4, 4),
                    textcoords="offset points", fontsize=8)  # fmt: skip
    a2.set_xlabel("TTFT, s (median, bars p10-p90)")
    a2.set_ylabel("output tokens/s (median, bars p10-p90)")
    a2.grid(True, alpha=0.3)
    figs.save(fig, "speed", "Inter-token latency and output speed vs TTFT")


def _floats(values: pd.Series) -> np.ndarray:
    """Costs for a bar: an unknown (None / NaN) draws no bar, it is never a zero-length one."""
    return np.array([math.nan if v is None or pd.isna(v) else float(v) for v in values])


def _bars(ax: Axes, models: list[str], values: Any, colors: dict[str, Any], label: str) -> None:
    ax.barh(models, values, color=[colors[m] for m in models])
    for i, value in enumerate(values):
        if pd.isna(value):  # said, not left as an empty row that reads as zero
            ax.text(0, i, " unknown", va="center", fontsize=8, color="#777777")
    ax.set_xlabel(label)
    ax.invert_yaxis()
    ax.grid(True, axis="x", alpha=0.3)


def cost(figs: Figures, colors: dict[str, Any], table: pd.DataFrame) -> None:
    models = list(table["model"])
    fig, (a1, a2, a3) = figs.new(ncols=3, width=13, height=0.9 + 0.32 * max(4, len(models)))
    _bars(a1, models, _floats(table["cost_usd"]), colors, "total spent")
    _bars(a2, models, _floats(table["usd_per_1k_items"]), colors, "cost per 1,000 items")
    a2.set_yticklabels([])
    for ax in (a1, a2):
        dollar_axis(ax.xaxis, log=False)
    y = np.arange(len(models))
    a3.barh(y - 0.2, table["prompt_tokens_per_item"], 0.4, color=[colors[m] for m in models],
            alpha=0.5, label="input")  # fmt: skip
    a3.barh(y + 0.2, table["completion_tokens_per_item"], 0.4,
            color=[colors[m] for m in models], label="output")  # fmt: skip
    a3.set_yticks(y, [])
    a3.invert_yaxis()
    a3.set_xlabel("tokens per item (pale = input)")
    a3.grid(True, axis="x", alpha=0.3)
    figs.save(fig, "cost", "Cost and tokens per model")


def reliability(figs: Figures, colors: dict[str, Any], table: pd.DataFrame) -> None:
    models = list(table["model"])
    fig, (a1, a2) = figs.new(ncols=2, width=10, height=0.9 + 0.32 * max(4, len(models)))
    _bars(a1, models, 100 * table["error_rate"], colors, "errors, % of requests")
    _bars(a2, models, 100 * table["retry_rate"], colors, "retried, % of requests")
    a2.set_yticklabels([])
    figs.save(fig, "reliability", "Reliability: final errors and retried requests")


BUILDERS: dict[str, Callable[..., None]] = {
    "trends": lambda figs, colors, history_dir: draw_trends(history_dir, figs, colors),
    "quality_vs_price": quality_vs_price,
    "latency_ecdf": latency_ecdf,
    "speed": speed,
    "cost": cost,
    "reliability": reliability,
    "workloads": lambda figs, colors, slices, turns: draw_workload_series(
        slices, turns, figs, colors
    ),
}
