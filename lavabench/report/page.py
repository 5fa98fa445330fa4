"""The report: figures, one self-contained HTML page, summary.md and summary.json.

Draws what analysis/tables.py and analysis/pick.py computed; computes no statistic itself. Figures use
matplotlib's object API with the Agg canvas (no pyplot state, no display needed), every
model keeps one colour across all figures, and a simulated run says so in every title.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lavabench.analysis.pick import PickResult, format_pick, pick_model, verdict_gate
from lavabench.analysis.tables import cell_table, ecdf_points, model_table, prepare
from lavabench.records.reader import Runs
from lavabench.report.trends import draw_trends

GREY = "#b8b8b8"
DPI = 110


def model_colors(models: list[str]) -> dict[str, Any]:
    """One colour per model, fixed by sorted name so every figure (and report) agrees."""
    palette = [colormaps["tab20"](i) for i in range(20)] + [
        colormaps["tab20b"](i) for i in range(20)
    ]
    return {m: palette[i % len(palette)] for i, m in enumerate(sorted(models))}


class _Figures:
    """Collects figures: writes PNG + SVG files and keeps the PNG bytes for embedding."""

    def __init__(self, out_dir: Path, simulated: bool) -> None:
        self.out_dir = out_dir
        self.suffix = " (simulated)" if simulated else ""
        self.items: list[tuple[str, str, bytes]] = []  # (name, title, png)

    def new(self, ncols: int = 1, width: float = 7.5, height: float = 5.0) -> tuple[Figure, Any]:
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        return fig, fig.subplots(1, ncols, squeeze=False)[0]

    def save(self, fig: Figure, name: str, title: str) -> None:
        fig.suptitle(title + self.suffix, fontsize=12)
        png = io.BytesIO()
        fig.savefig(png, format="png")
        (self.out_dir / f"{name}.png").write_bytes(png.getvalue())
        fig.savefig(self.out_dir / f"{name}.svg", format="svg")
        self.items.append((name, title + self.suffix, png.getvalue()))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def _quality_vs_price(
    figs: _Figures, table: pd.DataFrame, colors: dict[str, Any], x: str, name: str, title: str
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
        "observed USD per 1,000 items (log)"
        if x == "usd_per_1k_items"
        else "blended list price, USD per 1M tokens (3:1 input:output, log)"
    )
    ax.set_ylabel("accuracy (95% interval)")
    ax.set_ylim(-0.02, 1.05)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, title="grey = dominated", title_fontsize=8)
    figs.save(fig, name, title)


def _ecdf_panel(ax: Axes, curves: dict[str, Any], colors: dict[str, Any], xlabel: str) -> None:
    for model, (values, probs) in curves.items():
        ax.plot(values, probs, color=colors[model], label=model, lw=1.5)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of requests")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)


def _bars(ax: Axes, models: list[str], values: Any, colors: dict[str, Any], label: str) -> None:
    ax.barh(models, values, color=[colors[m] for m in models])
    ax.set_xlabel(label)
    ax.invert_yaxis()
    ax.grid(True, axis="x", alpha=0.3)


def draw_figures(
    runs: Runs,
    prepared: pd.DataFrame,
    table: pd.DataFrame,
    out_dir: Path,
    history_dir: Path | None = None,
    cells: pd.DataFrame | None = None,
) -> list[tuple[str, str, bytes]]:
    """All figures of the report, written as PNG and SVG; returns (name, title, png).

    `cells` (analysis.cell_table) holds the per-dataset tables when the caller has them."""
    figs = _Figures(out_dir, runs.simulated)
    colors = model_colors(list(table["model"]))
    if history_dir is not None:  # `report --history`: nightly trends first
        draw_trends(history_dir, figs, colors)
    datasets = sorted(str(d) for d in prepared["dataset"].dropna().unique())
    scope = datasets[0] if len(datasets) == 1 else "all datasets"
    _quality_vs_price(figs, table, colors, "usd_per_1k_items", "quality_vs_price",
                      f"Accuracy vs cost, {scope}")  # fmt: skip
    if len(datasets) > 1:
        for d in datasets:
            t = (
                model_table(runs, dataset=d, prepared=prepared)
                if cells is None
                else cells[cells["dataset"] == d].reset_index(drop=True)
            )
            _quality_vs_price(figs, t, colors, "usd_per_1k_items", f"quality_vs_price_{_slug(d)}",
                              f"Accuracy vs cost, {d}")  # fmt: skip
    _quality_vs_price(figs, table, colors, "blended_usd_per_mtok", "quality_vs_blended_price",
                      f"Accuracy vs blended price, {scope}")  # fmt: skip

    fig, (a1, a2) = figs.new(ncols=2, width=11, height=4.8)
    _ecdf_panel(a1, ecdf_points(prepared, "_ttft"), colors, "TTFT, s (log)")
    _ecdf_panel(a2, ecdf_points(prepared, "_e2e"), colors, "end-to-end, s (log)")
    a2.legend(fontsize=7, loc="lower right")
    figs.save(fig, "latency_ecdf", "Latency distributions (failures keep the curve below 1)")

    fig, (a1, a2) = figs.new(ncols=2, width=11, height=4.8)
    _ecdf_panel(a1, ecdf_points(prepared, "itl_p50_s"), colors, "median inter-token gap, s (log)")
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

    models = list(table["model"])
    fig, (a1, a2, a3) = figs.new(ncols=3, width=13, height=0.9 + 0.32 * max(4, len(models)))
    _bars(a1, models, table["cost_usd"].astype(float), colors, "total USD")
    _bars(a2, models, table["usd_per_1k_items"], colors, "USD per 1,000 items")
    a2.set_yticklabels([])
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

    fig, (a1, a2) = figs.new(ncols=2, width=10, height=0.9 + 0.32 * max(4, len(models)))
    _bars(a1, models, 100 * table["error_rate"], colors, "errors, % of requests")
    _bars(a2, models, 100 * table["retry_rate"], colors, "retried, % of requests")
    a2.set_yticklabels([])
    figs.save(fig, "reliability", "Reliability: final errors and retried requests")
    return figs.items


_TABLE_COLUMNS = {
    "dataset": "dataset",  # only in the model x dataset table
    "model": "model",
    "requests": "requests",
    "accuracy": "accuracy",
    "acc_lo": "acc lo",
    "acc_hi": "acc hi",
    "usd_per_1k_items": "USD / 1k items",
    "cost_usd": "total USD",
    "blended_usd_per_mtok": "blended USD / 1M tok",
    "ttft_p50_s": "TTFT p50 s",
    "ttft_p90_s": "TTFT p90 s",
    "ttft_p99_s": "TTFT p99 s",
    "e2e_p50_s": "E2E p50 s",
    "e2e_p90_s": "E2E p90 s",
    "e2e_p99_s": "E2E p99 s",
    "itl_p50_s": "ITL p50 s",
    "tok_s_p50": "out tok/s p50",
    "error_rate": "error rate",
    "retry_rate": "retry rate",
    "unparsed_rate": "unparsed rate",  # tool-call / json format failures; - = not checked
    "on_frontier": "frontier",
}


def _fmt(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else ""
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf"
        return f"{value:.4g}"
    return str(value)


def _display_table(table: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in _TABLE_COLUMNS if c in table]
    shown = table[cols].rename(columns=_TABLE_COLUMNS)
    return shown.map(_fmt)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if hasattr(value, "as_tuple"):  # Decimal: exact, as a string
        return str(value)
    return value


def write_report(
    runs: Runs,
    out_dir: Path,
    *,
    run_dirs: list[Path],
    min_quality: float = 0.85,
    max_p90_ttft_s: float | None = None,
    max_p90_e2e_s: float | None = None,
    history_dir: Path | None = None,
) -> Path:
    """Write index.html, figures (PNG+SVG), summary.md and summary.json; return index.html.

    With `history_dir`, the page also shows per-model trends over the nightly history."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prepared = prepare(runs.rows)
    table = model_table(runs, prepared=prepared)
    cells = cell_table(runs, prepared=prepared)
    decision = pick_model(prepared, table, min_quality=min_quality,
                          max_p90_ttft_s=max_p90_ttft_s, max_p90_e2e_s=max_p90_e2e_s)  # fmt: skip
    figures = (
        draw_figures(runs, prepared, table, out_dir, history_dir, cells) if not table.empty else []
    )
    decision_text = format_pick(decision)
    sim = " (simulated)" if runs.simulated else ""
    run_ids = [str(i.get("run_id", d.name)) for i, d in zip(runs.infos, run_dirs, strict=True)]
    shown = _display_table(table) if not table.empty else pd.DataFrame()
    verdicts = "\n".join(verdict_gate(runs.infos, run_ids, allow_invalid=True)[0])

    several_datasets = not cells.empty and cells["dataset"].nunique() > 1
    cells_shown = _display_table(cells) if several_datasets else None
    (out_dir / "summary.md").write_text(
        _markdown(run_ids, sim, decision_text, shown, verdicts, cells_shown)
    )
    (out_dir / "summary.json").write_text(
        json.dumps(_summary_json(runs, run_ids, table, cells, decision), indent=2, allow_nan=False)
        + "\n"
    )
    page = out_dir / "index.html"
    page.write_text(_html(run_ids, sim, decision_text, shown, figures, verdicts))
    return page


def _markdown(
    run_ids: list[str],
    sim: str,
    decision: str,
    shown: pd.DataFrame,
    verdicts: str = "",
    cells_shown: pd.DataFrame | None = None,
) -> str:
    lines = [f"## lavabench report{sim}", "", f"Runs: {', '.join(run_ids)}", ""]
    if verdicts:
        lines += ["```", verdicts, "```", ""]
    lines += ["```", decision, "```", ""]
    lines += _markdown_table(shown)
    if cells_shown is not None and not cells_shown.empty:
        lines += ["", "### Per model x dataset", "", *_markdown_table(cells_shown)]
    return "\n".join(lines) + "\n"


def _markdown_table(shown: pd.DataFrame) -> list[str]:
    if shown.empty:
        return []
    return [
        "| " + " | ".join(shown.columns) + " |",
        "|" + "---|" * len(shown.columns),
        *("| " + " | ".join(row) + " |" for row in shown.itertuples(index=False)),
    ]


def _summary_json(
    runs: Runs, run_ids: list[str], table: pd.DataFrame, cells: pd.DataFrame, decision: PickResult
) -> dict[str, Any]:
    pick, runner_up = decision.pick, decision.runner_up
    return _jsonable(
        {
            "generated_at": datetime.now(UTC).isoformat(),
            "runs": run_ids,
            "simulated": runs.simulated,
            "price_axis": "observed USD per item = exact pico-USD sum / requests",
            "blended_price": "(3 x input + 1 x output) / 4 USD per 1M tokens, from run.json",
            "pick": {
                "model": pick.model if pick else None,
                "runner_up": runner_up.model if runner_up else None,
                **{k: v for k, v in asdict(decision).items() if k != "candidates"},
                "candidates": [asdict(c) for c in decision.candidates],
            },
            "models": table.to_dict(orient="records"),
            "cells": cells.to_dict(orient="records"),  # model x dataset
        }
    )


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222}
h1{font-size:22px} .sim{color:#b00020} table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:right} td:first-child{text-align:left}
pre{background:#f6f6f6;padding:10px;font-size:12px;white-space:pre-wrap}
figure{margin:18px 0} img{max-width:100%;height:auto;border:1px solid #eee}
"""


def _html(
    run_ids: list[str],
    sim: str,
    decision: str,
    shown: pd.DataFrame,
    figures: list[tuple[str, str, bytes]],
    verdicts: str = "",
) -> str:
    """The page; the runs' measurement verdicts sit in the header, under the title."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>lavabench report{html.escape(sim)}</title><style>{_CSS}</style></head><body>",
        f"<h1>lavabench report<span class='sim'>{html.escape(sim)}</span></h1>",
        f"<pre id='verdict'>{html.escape(verdicts)}</pre>",
        f"<p>Runs: {html.escape(', '.join(run_ids))}. Accuracy intervals: Wilson 95% "
        "(item-cluster t when items were answered more than once). Cost: observed, exact. "
        "Failed requests count as wrong and as +inf latency.</p>",
        "<h2>Decision</h2>",
        f"<pre id='pick'>{html.escape(decision)}</pre>",
        "<h2>Models</h2>",
        shown.to_html(index=False, border=0, escape=True) if not shown.empty else "<p>no rows</p>",
        "<h2>Figures</h2>",
    ]
    for name, title, png in figures:
        data = base64.b64encode(png).decode()
        parts.append(
            f"<figure id='{name}'><img class='figure' alt='{html.escape(title)}' "
            f"src='data:image/png;base64,{data}'><figcaption>{html.escape(title)} "
            f"(<a href='{name}.svg'>SVG</a>, <a href='{name}.png'>PNG</a>)</figcaption></figure>"
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)
