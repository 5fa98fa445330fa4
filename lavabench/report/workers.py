"""Figure workers: matplotlib is imported, warmed and drawn with outside the process that
reads the records, while that process reads, prepares and picks.

Why (issue 21, `lavabench report` on 1M rows under 10 s): matplotlib's import, its fonts and
mathtext parser cost ~2 s before the first figure, and drawing the figures ~5 CPU-s, while
the records' own work (read, prepare, tables, pick) is all in one process. `FigureWorkers`
forks one server at once, before any record is read (nothing large is copied, no pyarrow
thread exists yet); it imports and warms matplotlib (report.figures.warm_up) while the
parent works, then forks one drawer per core from its warm state, draws each job as it
arrives and sends the PNG bytes back in page order. Figure tasks carry small inputs only (report.page's
`figure_tasks`: per-model tables, ECDF curves), never the rows.

A dead server or drawer raises instead of hanging (BrokenProcessPool, EOF on the pipe).
One core, or no fork: the same figures drawn in this process, the same bytes.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp
import os
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from lavabench.report.figure_tasks import Drawn, FigureTask


@dataclass(frozen=True)
class DrawJob:
    """Everything a drawer needs: where to write, the title suffix, the colours' models."""

    out_dir: Path
    simulated: bool
    models: list[str]
    tasks: list[FigureTask]


class FigureWorkers:
    """The figure server; use as a context manager (its exit ends the server).

    `draw` queues a job (the server starts on it at once), `results` waits for all of them:
    so a job whose inputs are ready early (the latency curves) draws while the parent is
    still computing the tables of the next."""

    def __init__(self, cores: int | None = None) -> None:
        self.cores = (os.cpu_count() or 1) if cores is None else cores
        self._conn: Any = None
        self._proc: Any = None
        self._jobs: list[DrawJob] = []  # in this process: drawn when `results` is called
        if self.cores < 2 or "fork" not in mp.get_all_start_methods():
            return
        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        # not a daemon: a daemon may not fork the drawers; close() ends it
        self._proc = ctx.Process(target=_serve, args=(child, self._conn, self.cores))
        self._proc.start()
        child.close()
        # registered after multiprocessing's own exit hook, so it runs first: that hook
        # joins the (non-daemon) server, which waits for this pipe to close
        atexit.register(self.close)

    def draw(self, job: DrawJob) -> int:
        """Queue `job`; returns its number in `results`."""
        self._jobs.append(job)
        if self._conn is not None:
            with contextlib.suppress(OSError):  # a dead server (BrokenPipeError): said later
                self._conn.send(("draw", job))
        return len(self._jobs) - 1

    def results(self) -> list[list[list[Drawn]]]:
        """Every queued job's figures: per job, per task, (name, title, png) in page order."""
        jobs, self._jobs = self._jobs, []
        if self._conn is None:
            return [[_draw_task(t, job) for t in job.tasks] for job in jobs]
        try:
            self._conn.send(("results", None))
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
            atexit.unregister(self.close)
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


def _draw_task(task: FigureTask, job: DrawJob) -> list[Drawn]:
    from lavabench.report.figures import draw_task

    return draw_task(task, job.out_dir, job.simulated, job.models)


def _serve(conn: Any, parent_end: Any, cores: int) -> None:
    """The server: warm matplotlib, then draw each job on `cores` drawers (forked warm from
    here, heaviest task of a job first) until asked for the results."""
    parent_end.close()  # else the pipe never reports EOF when the parent goes away
    pool: ProcessPoolExecutor | None = None
    jobs: list[list[Future[list[Drawn]]]] = []  # per job, per task in page order
    try:
        from lavabench.report.figures import warm_up

        warm_up()
        while True:
            try:
                kind, job = conn.recv()
            except EOFError:  # the parent ended without asking (an error, an empty table)
                return
            if kind == "results":
                conn.send(("ok", [[f.result() for f in futures] for futures in jobs]))
                return
            if pool is None:
                pool = ProcessPoolExecutor(cores, mp_context=mp.get_context("fork"))
            order = sorted(range(len(job.tasks)), key=lambda i: -job.tasks[i].weight)
            futures = {i: pool.submit(_draw_task, job.tasks[i], job) for i in order}
            jobs.append([futures[i] for i in range(len(job.tasks))])
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        conn.close()
