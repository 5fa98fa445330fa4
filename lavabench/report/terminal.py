"""What the terminal shows after a run: the per-model table (rich)."""

from __future__ import annotations

import math
from decimal import Decimal

import pandas as pd
from rich.console import Console
from rich.table import Table


def _fmt_ms(seconds: float) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    return "inf" if math.isinf(seconds) else f"{seconds * 1000:.0f}"


def _fmt(value: float, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def summary_table(summary: pd.DataFrame, *, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in [
        ("model", "left"),
        ("n", "right"),
        ("errors", "right"),
        ("retried", "right"),
        ("accuracy", "right"),
        ("TTFT p50 ms", "right"),
        ("TTFT p90 ms", "right"),
        ("E2E p50 s", "right"),
        ("out tok/s", "right"),
        ("cost USD", "right"),
    ]:
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in summary.itertuples(index=False):
        cost: Decimal = row.cost_usd
        table.add_row(
            str(row.model),
            str(row.n),
            str(row.errors),
            str(row.retried),
            _fmt(row.accuracy, ".3f"),
            _fmt_ms(row.ttft_p50_s),
            _fmt_ms(row.ttft_p90_s),
            _fmt(row.e2e_p50_s, ".2f"),
            _fmt(row.output_tokens_per_s_mean, ".0f"),
            f"{cost:.6f}",
        )
    return table


def print_summary(summary: pd.DataFrame, *, title: str) -> None:
    Console(width=max(132, Console().width)).print(summary_table(summary, title=title))
