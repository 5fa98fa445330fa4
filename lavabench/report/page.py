"""The report: figures, one self-contained HTML page, summary.md and summary.json.

Draws what analysis/tables.py and analysis/pick.py computed; computes no statistic itself. Figures use
matplotlib's object API with the Agg canvas (no pyplot state, no display needed), every
model keeps one colour across all figures, and a simulated run says so in every title.
Cost axes tick in dollars. The page is one function per section (header, decision card,
tables, figures), the decision first; each figure has a "how to read this" (HOW_TO_READ);
tables carry units (report/formatting.py) and sort on a click with a few lines of inline
script, so the page stays one file that opens offline.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import multiprocessing as mp
import os
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from lavabench.analysis.adaptive import format_decisions
from lavabench.analysis.pick import PickResult, format_pick, pick_model, verdict_gate
from lavabench.analysis.tables import cell_table, ecdf_points, model_table, prepare
from lavabench.records.reader import Runs
from lavabench.report.decision import card_html, card_markdown, decision_card
from lavabench.report.formatting import COMPACT, display_cells, notes_for, usd_tick
from lavabench.report.trends import draw_trends
from lavabench.report.workloads import draw_workload_figures

GREY = "#b8b8b8"
DPI = 110


def model_colors(models: list[str]) -> dict[str, Any]:
    """One colour per model, fixed by sorted name so every figure (and report) agrees."""
    palette = [colormaps["tab20"](i) for i in range(20)] + [
        colormaps["tab20b"](i) for i in range(20)
    ]
    return {m: palette[i % len(palette)] for i, m in enumerate(sorted(models))}


class _Figures:
    """Collects figures, then writes each as PNG + SVG and keeps the PNG bytes for embedding.

    `save` only titles a figure; `render` draws them all, in forked workers when there are
    two or more figures and cores (drawing is ~half of `lavabench report` on 1M rows, issue 21).
    A forked worker inherits the figures as they are (nothing pickled: the formatters hold
    lambdas) and returns the PNG bytes; the files and the bytes equal a serial render's."""

    def __init__(self, out_dir: Path, simulated: bool) -> None:
        self.out_dir = out_dir
        self.suffix = " (simulated)" if simulated else ""
        self.pending: list[tuple[Figure, str, str]] = []  # (figure, name, title), in page order

    def new(self, ncols: int = 1, width: float = 7.5, height: float = 5.0) -> tuple[Figure, Any]:
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        return fig, fig.subplots(1, ncols, squeeze=False)[0]

    def save(self, fig: Figure, name: str, title: str) -> None:
        fig.suptitle(title + self.suffix, fontsize=12)
        self.pending.append((fig, name, title + self.suffix))

    def render(self) -> Callable[[], list[tuple[str, str, bytes]]]:
        """Start drawing every figure; the returned function waits for (name, title, png)."""
        workers = min(len(self.pending), os.cpu_count() or 1)
        if workers < 2 or "fork" not in mp.get_all_start_methods():
            items = [_render_one(self.out_dir, *f) for f in self.pending]
            return lambda: items
        global _FORKED  # what the forked workers read: set before the fork, cleared after
        _FORKED = self
        # a worker that dies raises BrokenProcessPool here (a Pool would wait forever)
        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"))
        try:
            futures = [pool.submit(_render_forked, i) for i in range(len(self.pending))]
        finally:  # the first submit forked every worker
            _FORKED = None

        def wait() -> list[tuple[str, str, bytes]]:
            try:
                return [f.result() for f in futures]
            finally:
                pool.shutdown()

        return wait


_FORKED: _Figures | None = None


def _render_forked(index: int) -> tuple[str, str, bytes]:
    assert _FORKED is not None  # set in the parent when the pool forked
    return _render_one(_FORKED.out_dir, *_FORKED.pending[index])


def _render_one(out_dir: Path, fig: Figure, name: str, title: str) -> tuple[str, str, bytes]:
    png = io.BytesIO()
    fig.savefig(png, format="png")
    (out_dir / f"{name}.png").write_bytes(png.getvalue())
    # the SVG keeps the layout the PNG's draw just computed: constrained layout measures
    # every text again on each draw (~40% of drawing time in `lavabench report`)
    fig.set_layout_engine("none")
    fig.savefig(out_dir / f"{name}.svg", format="svg")
    return name, title, png.getvalue()


# What each figure shows and how to read it, by figure name (the longest matching prefix).
HOW_TO_READ = {
    "quality_vs_price": "Each dot is a model: accuracy (bars: 95% interval) against what 1,000 "
    "items cost in this run. Up and to the left is better. The black steps join the Pareto "
    "frontier; grey models are beaten on both axes by another. Models of unknown cost are "
    "not drawn.",
    "quality_vs_blended_price": "As above, against the list price blended 3:1 input:output "
    "per 1M tokens: what the models cost on paper, before each one's own token usage.",
    "latency_ecdf": "Share of requests (y) that got their first token (left) or finished "
    "(right) within x seconds. Further left is faster; a curve that stops below 1 had "
    "failures (the gap is their share).",
    "speed": "Left: the spread of each request's median gap between tokens. Right: output "
    "tokens/s against time to first token (median, bars p10-p90): up and to the left is "
    "better.",
    "cost": "Total spend in this run, cost per 1,000 items (what decides the pick) and tokens "
    "per item (pale = input). A long bar on the right explains a long bar in the middle.",
    "reliability": "Requests that failed after retries, and requests that needed at least one "
    "retry, as a share of each model's requests. Failures count as wrong answers.",
    "trends": "Each metric per night; the band is the mean ± 2 sd of the previous nights, so "
    "a point outside it is unusual for that model.",
}


def how_to_read(name: str) -> str:
    keys = [k for k in HOW_TO_READ if name.startswith(k)]
    return HOW_TO_READ[max(keys, key=len)] if keys else ""


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
    return build_figures(runs, prepared, table, out_dir, history_dir, cells).render()()


def build_figures(
    runs: Runs,
    prepared: pd.DataFrame,
    table: pd.DataFrame,
    out_dir: Path,
    history_dir: Path | None = None,
    cells: pd.DataFrame | None = None,
) -> _Figures:
    """Every figure of the report laid out, none drawn yet (`render` draws and writes them)."""
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

    fig, (a1, a2) = figs.new(ncols=2, width=10, height=0.9 + 0.32 * max(4, len(models)))
    _bars(a1, models, 100 * table["error_rate"], colors, "errors, % of requests")
    _bars(a2, models, 100 * table["retry_rate"], colors, "retried, % of requests")
    a2.set_yticklabels([])
    figs.save(fig, "reliability", "Reliability: final errors and retried requests")
    draw_workload_figures(runs.rows, figs, colors)  # time slices; per-turn TTFT (workloads)
    return figs


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
    cells = cell_table(runs, prepared=prepared, whole=table)
    # the figures draw in forked workers while the pick is computed (pick reads, never writes)
    figures = (
        build_figures(runs, prepared, table, out_dir, history_dir, cells).render()
        if not table.empty
        else list
    )
    decision = pick_model(prepared, table, min_quality=min_quality,
                          max_p90_ttft_s=max_p90_ttft_s, max_p90_e2e_s=max_p90_e2e_s)  # fmt: skip
    run_ids = [str(i.get("run_id", d.name)) for i, d in zip(runs.infos, run_dirs, strict=True)]
    several_datasets = not cells.empty and cells["dataset"].nunique() > 1
    content = _Content(
        run_ids=run_ids,
        sim=" (simulated)" if runs.simulated else "",
        decision=decision,
        table=table,
        cells=cells if several_datasets else None,
        verdicts="\n".join(verdict_gate(runs.infos, run_ids, allow_invalid=True)[0]),
        adaptive=adaptive_decisions(runs.infos, run_ids),
    )
    (out_dir / "summary.md").write_text(_markdown(content))
    (out_dir / "summary.json").write_text(
        json.dumps(_summary_json(runs, run_ids, table, cells, decision), indent=2, allow_nan=False)
        + "\n"
    )
    page = out_dir / "index.html"
    page.write_text(_html(content, figures()))
    return page


@dataclass(frozen=True)
class _Content:
    """What the page and summary.md both show, computed once by write_report."""

    run_ids: list[str]
    sim: str
    decision: PickResult
    table: pd.DataFrame
    cells: pd.DataFrame | None  # the model x dataset table, when there are several datasets
    verdicts: str
    adaptive: str = ""  # runner.adaptive runs: their own decisions (the card is not theirs)


ADAPTIVE_NOTE = (
    "These runs sent only what the adaptive pick needed (runner.adaptive): its decisions below "
    "are the pick. The card above applies the fixed-sample rule to rows whose count the "
    "sequential test chose, so it is not a valid decision for them."
)


def adaptive_decisions(infos: list[dict[str, Any]], run_ids: list[str]) -> str:
    """Each adaptive run's last recorded decisions (run.json `adaptive`), as the run printed."""
    parts = [
        f"{run_id}: {format_decisions(info['adaptive'])}"
        for info, run_id in zip(infos, run_ids, strict=True)
        if info.get("adaptive")
    ]
    return "\n\n".join(parts)


# --- summary.md (GitHub's renderer: $GITHUB_STEP_SUMMARY) ------------------------------------


def _markdown(c: _Content) -> str:
    lines = [f"## lavabench report{c.sim}", "", *card_markdown(decision_card(c.decision))]
    lines += [f"Runs: {', '.join(c.run_ids)}", ""]
    if c.verdicts:
        lines += ["```", c.verdicts, "```", ""]
    lines += ["### Models", "", *_markdown_table(c.table)]
    lines += ["", "All columns (p99s, ITL, tokens/s, retries): index.html and summary.json."]
    lines += [f"\n{note}" for note in notes_for(c.table)] if not c.table.empty else []
    if c.cells is not None:
        lines += ["", "### Per model x dataset", "", *_markdown_table(c.cells)]
    if c.adaptive:
        lines += ["### Adaptive pick", "", ADAPTIVE_NOTE, "", "```", c.adaptive, "```", ""]
    lines += ["", "<details><summary>Why each cheaper model was rejected</summary>", ""]
    lines += ["```", format_pick(c.decision), "```", "", "</details>"]
    return "\n".join(lines) + "\n"


def _markdown_table(table: pd.DataFrame) -> list[str]:
    """Numbers right-aligned, units in the cells, `|` escaped, no blank cells (— instead)."""
    if table.empty:
        return ["no rows"]
    columns = display_cells(table, COMPACT)
    cell = lambda text: (text or " ").replace("|", "\\|")  # noqa: E731
    header = "| " + " | ".join(cell(col.label) for col, _ in columns) + " |"
    align = "|" + "|".join(":---" if col.fmt is str else "---:" for col, _ in columns) + "|"
    rows = [
        "| " + " | ".join(cell(values[i][0]) for _, values in columns) + " |"
        for i in range(len(table))
    ]
    return [header, align, *rows]


# --- the page: one function per section ----------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px} .sim{color:#b00020} table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:right} td.text,th.text{text-align:left}
.scroll{overflow-x:auto;max-width:100%}
table.sortable th{cursor:pointer;background:#f3f3f3;white-space:nowrap}
table.sortable th[aria-sort=ascending]::after{content:" ▲"}
table.sortable th[aria-sort=descending]::after{content:" ▼"}
.card{border:2px solid #2e7d32;border-radius:8px;padding:10px 16px;margin:12px 0;max-width:900px}
.card.none{border-color:#b26a00} .card h2{margin:4px 0 8px;font-size:20px}
.card table.facts th,.card table.facts td{border:0;text-align:left;font-size:14px;padding:2px 8px}
.card table.facts th{color:#555;font-weight:600;white-space:nowrap}
.note{font-size:12px;color:#555;max-width:900px} .how{font-size:13px;color:#333;max-width:900px}
pre{background:#f6f6f6;padding:10px;font-size:12px;white-space:pre-wrap}
figure{margin:18px 0} img{max-width:100%;height:auto;border:1px solid #eee}
"""

# Click a header to sort by it (numbers by value, missing last), again to reverse.
_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], rows = [...body.rows];
  const dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
  th.closest('tr').querySelectorAll('th').forEach(h => h.removeAttribute('aria-sort'));
  th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
  const key = r => r.cells[col].dataset.sort, num = rows.every(r => key(r) === '' || !isNaN(parseFloat(key(r))));
  rows.sort((a, b) => { const x = key(a), y = key(b); if (x === '' || y === '') return (x === '') - (y === '');
    return dir * (num ? parseFloat(x) - parseFloat(y) : x.localeCompare(y)); });
  rows.forEach(r => body.appendChild(r));
}));
"""


def _html(c: _Content, figures: list[tuple[str, str, bytes]]) -> str:
    sections = [
        _header_section(c),
        card_html(decision_card(c.decision)),
        f"<details><summary>Why each cheaper model was rejected</summary>"
        f"<pre id='pick'>{html.escape(format_pick(c.decision))}</pre></details>",
        _table_section("Models", "models", c.table),
    ]
    if c.adaptive:
        sections.insert(1, f"<h2>Adaptive pick</h2><p class='note'>{html.escape(ADAPTIVE_NOTE)}"
                           f"</p><pre id='adaptive'>{html.escape(c.adaptive)}</pre>")  # fmt: skip
    if c.cells is not None:
        sections.append(_table_section("Per model x dataset", "cells", c.cells))
    sections.append(_figures_section(figures))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>lavabench report{html.escape(c.sim)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(sections)
        + f"\n<script>{_SORT_JS}</script></body></html>\n"
    )


def _header_section(c: _Content) -> str:
    """Title, the runs' measurement verdicts, and what the numbers rest on."""
    return (
        f"<h1>lavabench report<span class='sim'>{html.escape(c.sim)}</span></h1>\n"
        f"<pre id='verdict'>{html.escape(c.verdicts)}</pre>\n"
        f"<p class='note'>Runs: {html.escape(', '.join(c.run_ids))}. Accuracy intervals: Wilson "
        "95% (item-cluster t when items were answered more than once). Cost: observed in these "
        "runs. Failed requests count as wrong and as ∞ latency.</p>"
    )


def _table_section(title: str, table_id: str, table: pd.DataFrame) -> str:
    """A sortable table: units in the cells, the raw number in data-sort."""
    if table.empty:
        return f"<h2>{html.escape(title)}</h2><p>no rows</p>"
    columns = display_cells(table)
    head = "".join(
        f"<th scope='col'{' class=text' if col.fmt is str else ''}>{html.escape(col.label)}</th>"
        for col, _ in columns
    )
    rows = []
    for i in range(len(table)):
        tds = "".join(
            f"<td{' class=text' if col.fmt is str else ''} data-sort='{html.escape(values[i][1])}'>"
            f"{html.escape(values[i][0])}</td>"
            for col, values in columns
        )
        rows.append(f"<tr>{tds}</tr>")
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes_for(table))
    return (
        f"<h2>{html.escape(title)}</h2><p class='note'>Click a column to sort.</p>"
        f"<div class='scroll'><table id='{table_id}' class='sortable'><thead><tr>{head}</tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>{notes}"
    )


def _figures_section(figures: list[tuple[str, str, bytes]]) -> str:
    parts = ["<h2>Figures</h2>"]
    for name, title, png in figures:
        data = base64.b64encode(png).decode()
        how = how_to_read(name)
        parts.append(
            f"<figure id='{name}'><img class='figure' alt='{html.escape(title)}' "
            f"src='data:image/png;base64,{data}'><figcaption>{html.escape(title)} "
            f"(<a href='{name}.svg'>SVG</a>, <a href='{name}.png'>PNG</a>)"
            + (f"<p class='how'><b>How to read this:</b> {html.escape(how)}</p>" if how else "")
            + "</figcaption></figure>"
        )
    return "\n".join(parts)


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
