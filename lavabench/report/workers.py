"""Figure workers: matplotlib is imported, warmed and drawn with outside the process that
reads the records, while that process reads, prepares and picks.

Why (issue 21, `lavabench report` on 1M rows under 10 s): matplotlib's import, its fonts and
mathtext parser cost ~2 s before the first figure, and drawing the figures ~5 CPU-s, while
the records' own work (read, prepare, tables, pick) is all in one process. `FigureWorkers`
forks one server at once, before any record is read (nothing large is copied, no pyarrow
thread exists yet); it imports and warms matplotlib (report.figures.warm_up) while the
parent works, then on `draw` forks one drawer per core from its warm state and sends the
PNG bytes back in page order. Figure tasks carry small inputs only (report.page's
`figure_tasks`: per-model tables, ECDF curves), never the rows.

A dead server or drawer raises instead of hanging (BrokenProcessPool, EOF on the pipe).
One core, or no fork: the same figures drawn in this process, the same bytes.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

Drawn = tuple[str, str, bytes]  # (name, title, PNG bytes)


@dataclass(frozen=True)
class FigureTask:
    """One builder of report.figures.BUILDERS and its (picklable, small) inputs.

    `weight`: roughly its drawing time; drawers start the heaviest first."""

    builder: str
    args: tuple[Any, ...]
    weight: float = 1.0


@dataclass(frozen=True)
class DrawJob:
    """Everything a drawer needs: where to write, the title suffix, the colours' models."""

    out_dir: Path
    simulated: bool
    models: list[str]
    tasks: list[FigureTask]


def draw_serial(job: DrawJob) -> list[Drawn]:
    """The job's figures drawn here, in page order."""
    from lavabench.report.figures import draw_task

    return [d for t in job.tasks for d in draw_task(t, job.out_dir, job.simulated, job.models)]


class FigureWorkers:
    """The figure server; use as a context manager (its exit ends the server)."""

    def __init__(self, cores: int | None = None) -> None:
        self.cores = (os.cpu_count() or 1) if cores is None else cores
        self._conn: Any = None
        self._proc: Any = None
        if self.cores < 2 or "fork" not in mp.get_all_start_methods():
            return
        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        # not a daemon: a daemon may not fork the drawers; close() ends it
        self._proc = ctx.Process(target=_serve, args=(child, self._conn, self.cores))
        self._proc.start()
        child.close()

    def draw(self, job: DrawJob) -> Callable[[], list[Drawn]]:
        """Start drawing `job` (served by the warm server, else here when waited for);
        the returned function waits for (name, title, png) in page order."""
        if self._conn is None:
            return lambda: draw_serial(job)
        with contextlib.suppress(OSError):  # a dead server (BrokenPipeError): said on wait
            self._conn.send(job)
        return self._receive

    def _receive(self) -> list[Drawn]:
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError):  # closed, or reset by the kernel when it died
            self._proc.join(5)
            raise RuntimeError(
                f"the figure worker died (exit code {self._proc.exitcode}) before it answered"
            ) from None
        if status != "ok":
            raise RuntimeError(f"drawing the report's figures failed in a worker:\n{value}")
        return list(value)

    def close(self) -> None:
        """End the server (an idle one sees the pipe close) and wait for it."""
        if self._conn is not None:
            self._conn.close()
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
            self._conn = None

    def __enter__(self) -> FigureWorkers:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _serve(conn: Any, parent_end: Any, cores: int) -> None:
    """The server: warm matplotlib, wait for one job, draw it on `cores` drawers, answer."""
    parent_end.close()  # else the pipe never reports EOF when the parent goes away
    try:
        from lavabench.report.figures import warm_up

        warm_up()
        try:
            job = conn.recv()
        except EOFError:  # the parent ended without figures (an error, an empty table)
            return
        conn.send(("ok", _draw_parallel(job, cores)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def _draw_parallel(job: DrawJob, cores: int) -> list[Drawn]:
    """One drawer per core (forked warm from the server); heaviest task first."""
    from lavabench.report.figures import draw_task

    workers = min(cores, len(job.tasks))
    if workers < 2:
        return draw_serial(job)
    order = sorted(range(len(job.tasks)), key=lambda i: -job.tasks[i].weight)
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        futures = {
            i: pool.submit(draw_task, job.tasks[i], job.out_dir, job.simulated, job.models)
            for i in order
        }
        return [d for i in range(len(job.tasks)) for d in futures[i].result()]
