"""The report: figures, one self-contained HTML page, summary.md and summary.json.

Shows what analysis/tables.py and analysis/pick.py computed; computes no statistic itself.
The figures are drawn by report.figures in figure workers (report.workers) from the small
inputs `figure_tasks` gathers here; this module never imports matplotlib, so the process
that reads the records does not pay for it. The page is one function per section (header,
decision card, tables, figures), the decision first; each figure has a "how to read this"
(HOW_TO_READ); tables carry units (report/formatting.py) and sort on a click with a few
lines of inline script, so the page stays one file that opens offline.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lavabench.analysis.pick import PickResult, format_pick, pick_model, verdict_gate
from lavabench.analysis.tables import cell_table, ecdf_points, model_table, prepare
from lavabench.records.reader import Runs
from lavabench.report.decision import card_html, card_markdown, decision_card
from lavabench.report.figure_tasks import Drawn, FigureTask
from lavabench.report.formatting import COMPACT, display_cells, notes_for
from lavabench.report.workers import DrawJob, FigureWorkers
from lavabench.report.workloads import workload_series

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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def draw_job(
    runs: Runs,
    prepared: pd.DataFrame,
    table: pd.DataFrame,
    out_dir: Path,
    history_dir: Path | None = None,
    cells: pd.DataFrame | None = None,
) -> DrawJob:
    """Every figure of the report as one job of small inputs (report.figures draws them),
    coloured by the models write_report keys its colours on."""
    tasks = figure_tasks(runs, prepared, table, history_dir, cells)
    return DrawJob(out_dir, runs.simulated, table_models(prepared), tasks)


def latency_task(prepared: pd.DataFrame) -> FigureTask:
    """The latency ECDF figure: it needs only the prepared rows, not the tables."""
    ecdf = (ecdf_points(prepared, "_ttft"), ecdf_points(prepared, "_e2e"))
    return FigureTask("latency_ecdf", ecdf, weight=2)


def table_models(prepared: pd.DataFrame) -> list[str]:
    """The models `model_table` has, known before it: those with timed rows (its rows are
    latency_percentiles' groups, the other tables joined on), sorted. The colours are keyed
    on them, so the latency figure can be drawn before the table exists."""
    return sorted(str(m) for m in prepared.loc[prepared["_timed"], "model"].dropna().unique())


def figure_tasks(
    runs: Runs,
    prepared: pd.DataFrame,
    table: pd.DataFrame,
    history_dir: Path | None = None,
    cells: pd.DataFrame | None = None,
    latency: FigureTask | None = None,
) -> list[FigureTask]:
    """The page's figures in page order; what they draw is computed here (analysis/).

    `latency`: the `latency_task` made earlier, if the caller made one."""
    tasks = []
    if history_dir is not None:  # `report --history`: nightly trends first
        tasks.append(FigureTask("trends", (history_dir,), weight=2))
    datasets = sorted(str(d) for d in prepared["dataset"].dropna().unique())
    scope = datasets[0] if len(datasets) == 1 else "all datasets"
    price = "usd_per_1k_items"
    tasks.append(FigureTask("quality_vs_price",
                            (table, price, "quality_vs_price", f"Accuracy vs cost, {scope}")))  # fmt: skip
    if len(datasets) > 1:
        for d in datasets:
            t = (
                model_table(runs, dataset=d, prepared=prepared)
                if cells is None
                else cells[cells["dataset"] == d].reset_index(drop=True)
            )
            tasks.append(FigureTask("quality_vs_price", (t, price, f"quality_vs_price_{_slug(d)}",
                                                         f"Accuracy vs cost, {d}")))  # fmt: skip
    tasks.append(FigureTask("quality_vs_price", (table, "blended_usd_per_mtok",
                            "quality_vs_blended_price", f"Accuracy vs blended price, {scope}")))  # fmt: skip
    tasks.append(latency_task(prepared) if latency is None else latency)
    tasks.append(FigureTask("speed", (ecdf_points(prepared, "itl_p50_s"), table), weight=2))
    tasks.append(FigureTask("cost", (table,), weight=1.3))
    tasks.append(FigureTask("reliability", (table,)))
    tasks.append(FigureTask("workloads", workload_series(runs.rows)))  # time slices, turns
    return tasks


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
    workers: FigureWorkers | None = None,
) -> Path:
    """Write index.html, figures (PNG+SVG), summary.md and summary.json; return index.html.

    With `history_dir`, the page also shows per-model trends over the nightly history.
    `workers`: figure workers started before the records were read (`lavabench report`
    does); without them they start here."""
    if workers is None:
        with FigureWorkers() as own:
            return write_report(runs, out_dir, run_dirs=run_dirs, min_quality=min_quality,
                                max_p90_ttft_s=max_p90_ttft_s, max_p90_e2e_s=max_p90_e2e_s,
                                history_dir=history_dir, workers=own)  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    prepared = prepare(runs.rows)
    # the latency curves draw while the tables are computed; the other figures while the
    # pick is (the pick reads, never writes)
    models = table_models(prepared)
    early = latency_task(prepared) if models else None
    if early is not None:
        workers.draw(DrawJob(out_dir, runs.simulated, models, [early]))
    table = model_table(runs, prepared=prepared)
    cells = cell_table(runs, prepared=prepared, whole=table)
    tasks = figure_tasks(runs, prepared, table, history_dir, cells, latency=early)
    if not table.empty:
        rest = [t for t in tasks if t is not early]
        workers.draw(DrawJob(out_dir, runs.simulated, models, rest))
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
    drawn = workers.results() if not table.empty else []
    page.write_text(_html(content, _in_page_order(tasks, early, drawn)))
    return page


def _in_page_order(
    tasks: list[FigureTask], early: FigureTask | None, drawn: list[list[list[Drawn]]]
) -> list[Drawn]:
    """The figures of `tasks` (page order) from the early job (if any) and the rest."""
    if not drawn:
        return []
    rest = iter(drawn[-1])
    return [d for t in tasks for d in (drawn[0][0] if t is early else next(rest))]


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
    if not any(info.get("adaptive") for info in infos):
        return ""
    from lavabench.analysis.adaptive import format_decisions  # scipy: only for adaptive runs

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
