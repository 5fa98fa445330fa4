"""What the terminal shows during a run: a live progress bar (the table after is report/terminal).

The progress bar refreshes from rich's own thread at 4 Hz. The event loop pays a few
counter increments per finished request; the bar's numbers are handed to rich at most
every 0.1 s (the stats text and rich's task lock cost ~10 us a row, which at 2,000
requests/s was 2% of the loop; the bar cannot show them faster than it redraws anyway),
and once more when the run ends so the last frame is exact.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lavabench.catalog import pico_to_usd
from lavabench.records.schema import Record

_SHOW_EVERY_S = 0.1


class RunProgress:
    """done/total, errors, requests/s and spend so far; silent when stderr is not a terminal."""

    def __init__(self, total: int, *, enabled: bool | None = None) -> None:
        self._enabled = sys.stderr.isatty() if enabled is None else enabled
        self._errors = 0
        self._retried = 0
        self._done = 0
        self._spend_pico = 0
        self._start = time.perf_counter()
        self._shown_at = 0.0
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
        if self._enabled:
            self._show(time.perf_counter())
        self._progress.stop()

    def on_record(self, record: Record) -> None:
        self._done += 1
        self._errors += record.status != "ok"
        self._retried += record.attempts > 1
        self._spend_pico += record.cost_pico_usd or 0
        if not self._enabled:
            return
        now = time.perf_counter()
        if now - self._shown_at >= _SHOW_EVERY_S:
            self._show(now)

    def _show(self, now: float) -> None:
        self._shown_at = now
        rate = self._done / max(now - self._start, 1e-9)
        stats = (
            f"errors {self._errors}  retried {self._retried}  {rate:.1f} req/s  "
            f"${pico_to_usd(self._spend_pico):.4f}"
        )
        self._progress.update(self._task, completed=self._done, stats=stats)
