"""What the terminal shows after a run: the per-model table (rich) and the notes under it.

It computes nothing: every figure is a column of `analysis.tables.per_model_summary`. An
unknown cost prints as `unknown`, never 0; an estimated one carries `~` and `est`; accuracy
is over graded answers (failed requests as wrong) with the ungraded count beside it; truncation has its own column.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from lavabench.analysis.tables import UNGRADED_WARN_SHARE


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _fmt_ms(seconds: float) -> str:
    if _missing(seconds):
        return "-"
    return "inf" if math.isinf(seconds) else f"{seconds * 1000:.0f}"


def _fmt(value: float, spec: str) -> str:
    return "-" if _missing(value) else format(value, spec)


def _cost(row: Any) -> str:
    basis = getattr(row, "cost_basis", "server")
    cost: Decimal | None = row.cost_usd
    if basis == "unknown" or _missing(cost):
        return f"unknown ({row.cost_unknown} rows)"
    text = f"{cost:.6f}"
    return f"~{text} est" if basis in ("estimate", "partly estimated") else text


def summary_table(summary: pd.DataFrame, *, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    judged = "judge_cost_usd" in summary and bool(summary["judge_cost_usd"].notna().any())
    judged = judged and bool((summary["judge_cost_usd"].fillna(1) != 0).any())
    columns = ["model", "n", "errors", "retried", "accuracy", "graded", "ungraded", "trunc",
               "TTFT p50 ms", "TTFT p90 ms", "E2E p50 s", "tok/s", "cost USD"]  # fmt: skip
    if judged:
        columns.append("judge USD")
    for name in columns:
        table.add_column(name, justify="left" if name == "model" else "right", no_wrap=True)
    for row in summary.itertuples(index=False):
        cells = [
            str(row.model),
            str(row.n),
            str(row.errors),
            str(row.retried),
            _fmt(row.accuracy, ".3f"),
            "-" if _missing(row.graded) else str(int(row.graded)),
            "-" if _missing(row.ungraded) else str(int(row.ungraded)),
            _fmt(row.truncation_rate, ".0%"),
            _fmt_ms(row.ttft_p50_s),
            _fmt_ms(row.ttft_p90_s),
            _fmt(row.e2e_p50_s, ".2f"),
            _fmt(row.output_tokens_per_s_mean, ".0f"),
            _cost(row),
        ]
        if judged:
            cells.append("unknown" if _missing(row.judge_cost_usd) else f"{row.judge_cost_usd:.6f}")
        table.add_row(*cells)
    return table


def summary_notes(summary: pd.DataFrame) -> list[str]:
    """Warnings under the table: many ungraded answers, truncation, unknown or estimated cost."""
    notes = []
    for row in summary.itertuples(index=False):
        graded = 0 if _missing(row.graded) else int(row.graded)
        ungraded = 0 if _missing(row.ungraded) else int(row.ungraded)
        if ungraded and ungraded / (graded + ungraded) >= UNGRADED_WARN_SHARE:
            notes.append(
                f"warning: {row.model}: {ungraded} of {graded + ungraded} answers ungraded "
                "(see grade_status / ungraded_reason); accuracy is over the graded ones only"
            )
        if not _missing(row.truncation_rate) and row.truncated:
            limit = "" if _missing(row.max_tokens) else f"={int(row.max_tokens)}"
            notes.append(
                f"warning: {row.model}: {int(row.truncated)} answers ({row.truncation_rate:.0%}) "
                f"cut at max_tokens{limit} (finish_reason=length); raise runner.max_tokens"
            )
        if row.cost_basis == "unknown":
            notes.append(
                f"note: {row.model}: cost unknown for {row.cost_unknown} answers (no usage in "
                "the response): its cost is shown as unknown, not 0"
            )
        elif row.cost_basis in ("estimate", "partly estimated"):
            notes.append(
                f"note: {row.model}: cost {row.cost_basis} (list price x estimated tokens; "
                "see usage_source)"
            )
    return notes


def print_summary(summary: pd.DataFrame, *, title: str) -> None:
    Console(width=max(160, Console().width)).print(summary_table(summary, title=title))
    for note in summary_notes(summary):
        print(note)
