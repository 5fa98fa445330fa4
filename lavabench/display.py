"""What the terminal shows: a live progress bar during a run and the per-model table after.

The progress bar refreshes from rich's own thread at 4 Hz, so the event loop pays only a
few attribute updates per finished request.
"""

from __future__ import annotations

import math
import sys
import time
from decimal import Decimal

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lavabench.catalog import pico_to_usd
from lavabench.records import Record


class RunProgress:
    """done/total, errors, requests/s and spend so far; silent when stderr is not a terminal."""

    def __init__(self, total: int, *, enabled: bool | None = None) -> None:
        self._enabled = sys.stderr.isatty() if enabled is None else enabled
        self._errors = 0
        self._retried = 0
        self._done = 0
        self._spend_pico = 0
        self._start = time.perf_counter()
        self._progress = Progress(
            TextColumn("[bold]run"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            refresh_per_second=4,
            disable=not self._enabled,
        )
        self._task = self._progress.add_task("run", total=total, stats="")

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def on_record(self, record: Record) -> None:
        self._done += 1
        self._errors += record.status != "ok"
        self._retried += record.attempts > 1
        self._spend_pico += record.cost_pico_usd or 0
        if not self._enabled:
            return
        rate = self._done / max(time.perf_counter() - self._start, 1e-9)
        stats = (
            f"errors {self._errors}  retried {self._retried}  {rate:.1f} req/s  "
            f"${pico_to_usd(self._spend_pico):.4f}"
        )
        self._progress.update(self._task, completed=self._done, stats=stats)


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
