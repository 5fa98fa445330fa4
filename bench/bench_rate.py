"""Open-loop rate precision: does `lavabench run` send at the rate it was asked for?

A load generator that quietly sends slower than asked reports latencies at a load nobody
requested. For 10, 100 and 1,000 requests/s with `constant` and `poisson` arrivals this runs
the real `lavabench run` (Runner -> HttpClient -> SSE -> RecordWriter -> Parquet) as a
subprocess pinned to core 1 against a zero-delay simulator pinned to core 0, with enough
concurrency that the cap never binds, then reads the actual send stamps back from the
records. Target (issue): achieved rate within 2% of the requested rate up to 1,000/s.

Achieved rate = (n - 1) / (last - first actual send), from `first_send_ns`; `schedule err`
is the intended schedule's own rate against the requested one (0 since pacing rescales the
Poisson draw; raw draws were off by ~1/sqrt(n)). The CV of actual gaps also shows uvloop's
timers, which fire on whole milliseconds: at 1,000/s sends snap to ms ticks (CV ~0.8 for
`constant`) and can go out up to ~0.8 ms early; the rate is unaffected. On a shared machine
a cell that misses while other processes take the client's core is run again (see
`measured_cell`); `others' CPU` says how much they took.

    python bench/bench_rate.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_client import MODEL, _config, _process_tree_cpu_s, _sim_settings  # noqa: E402
from lavabench.sim.process import SimHandle, running_simulator  # noqa: E402

RATES = (10, 100, 1000)
ARRIVALS = ("constant", "poisson")
TARGET_PCT = 2.0
CONCURRENCY = 256
# other processes used more than this share of the client's core: the run was disturbed
DISTURBED_SHARE = 0.05
MAX_ATTEMPTS = 3


def write_dataset(path: Path, n: int) -> Path:
    """n distinct short arithmetic items in the demo spec's fields (id, question, answer), so
    `dataset.path=` alone turns the demo spec into an n-item dataset."""
    with path.open("w") as fh:
        for i in range(n):
            item = {"id": f"b{i:06d}", "question": f"What is {i} plus 1?", "answer": str(i + 1)}
            fh.write(json.dumps(item) + "\n")
    return path


@contextlib.contextmanager
def pinned_simulator() -> Iterator[SimHandle]:
    """The zero-delay simulator (bench_client's settings) pinned to core 0, with this process
    moved to core 1 so that every client started inside the block inherits core 1."""
    defaults, catalog = _config()
    settings = _sim_settings(defaults, zero=True, log_path=None)
    original = os.sched_getaffinity(0)
    pin = len(original) >= 2 and {0, 1} <= original
    if pin:
        os.sched_setaffinity(0, {0})  # the simulator child inherits core 0
    try:
        with running_simulator(settings, catalog) as sim:
            if pin:
                os.sched_setaffinity(0, {1})
            yield sim
    finally:
        os.sched_setaffinity(0, original)


@dataclass
class LavabenchRun:
    """One `lavabench run` subprocess: exit code, wall time, peak RSS and its time series."""

    rc: int
    wall_s: float
    peak_rss_mb: float  # ru_maxrss of the child (os.wait4)
    run_dir: Path
    log: Path
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (s since start, MB)
    run_started_s: float | None = None  # first sample that saw records.parts/ (writer made)
    # share of the client's core(s) that other processes used while it ran (the run's start to
    # its last sample): busy time of those cores in /proc/stat minus the client's own CPU time
    foreign_cpu_share: float = 0.0

    def run_json(self) -> dict[str, Any]:
        return json.loads((self.run_dir / "run.json").read_text())


def _vm_rss_mb(pid: int) -> float | None:
    """Current RSS of a process (VmRSS), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _cores_busy_s(cores: set[int]) -> float:
    """Busy time so far of these cores, every process (user nice system irq softirq steal)."""
    ticks = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name[:3] == "cpu" and name[3:].isdigit() and int(name[3:]) in cores:
            v = [int(x) for x in values]
            ticks += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return ticks / os.sysconf("SC_CLK_TCK")


def lavabench_run(
    sim: SimHandle,
    overrides: Sequence[str],
    work: Path,
    run_id: str,
    *,
    timeout_s: float,
    sample_s: float = 0.05,
) -> LavabenchRun:
    """`python -m lavabench run endpoint=sim endpoint.base_url=<sim> ...` with a deadline;
    samples the child's RSS while it runs and takes its peak from wait4's rusage."""
    run_dir = work / run_id
    log = work / f"{run_id}.log"
    cmd = [sys.executable, "-m", "lavabench", "run", "endpoint=sim",
           f"endpoint.base_url={sim.base_url}", f"model={MODEL}", f"results_dir={work}",
           f"run_id={run_id}", *overrides]  # fmt: skip
    with log.open("wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        cores, mine = os.sched_getaffinity(proc.pid), os.sched_getaffinity(0)
        others = set(range(os.cpu_count() or 1)) - cores
        if others:  # sample from another core: this loop must not count as load on the client's
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, others)
        samples: list[tuple[float, float]] = []
        started: float | None = None
        busy0 = own0 = busy = own = 0.0
        window = (0.0, 0.0)
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                now = time.perf_counter() - t0
                if now > timeout_s:
                    proc.kill()
                    proc.wait()
                    raise TimeoutError(
                        f"{run_id}: lavabench run exceeded {timeout_s:.0f} s ({log})"
                    )
                rss = _vm_rss_mb(proc.pid)
                if rss is not None:
                    samples.append((round(now, 3), round(rss, 1)))
                if started is None and (run_dir / "records.parts").exists():
                    started = now
                    busy0, own0 = _cores_busy_s(cores), _process_tree_cpu_s(proc.pid)
                if started is not None:
                    busy, own = _cores_busy_s(cores), _process_tree_cpu_s(proc.pid)
                    window = (started, now)
                time.sleep(sample_s)
        finally:
            os.sched_setaffinity(0, mine)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return LavabenchRun(
        rc=proc.returncode, wall_s=wall, peak_rss_mb=usage.ru_maxrss / 1024, run_dir=run_dir,
        log=log, rss_mb=samples, run_started_s=started,
        foreign_cpu_share=max(0.0, (busy - busy0) - (own - own0))
        / max(window[1] - window[0], 1e-9) / len(cores),
    )  # fmt: skip


def _cv(values: np.ndarray) -> float:
    """Coefficient of variation: 0 for evenly spaced sends, ~1 for Poisson gaps."""
    return float(values.std() / values.mean()) if len(values) > 1 and values.mean() else 0.0


def rate_cell(
    sim: SimHandle, work: Path, dataset: Path, rate: int, arrival: str, n: int, attempt: int = 1
) -> dict[str, Any]:
    """One open-loop run; the achieved rate and send-time spread from its own records."""
    run_id = f"rate-{arrival}-{rate}-a{attempt}"
    run = lavabench_run(
        sim,
        [f"dataset.path={dataset}", "dataset.name=bench-rate", f"dataset.limit={n}",
         f"load={arrival}", f"runner.rate={rate}", "runner.arrival_seed=0",
         f"runner.concurrency={CONCURRENCY}", "runner.max_tokens=16"],
        work, run_id, timeout_s=120 + 3 * n / rate,
    )  # fmt: skip
    if run.rc != 0:
        raise RuntimeError(f"{run_id}: exit {run.rc}\n{run.log.read_text()[-3000:]}")
    table = pq.read_table(
        run.run_dir / "records.parquet",
        columns=["first_send_ns", "intended_send_ns", "dispatch_late_s", "status", "is_warmup"],
    ).to_pandas()
    table = table[~table["is_warmup"]]
    sent = np.sort(table["first_send_ns"].to_numpy(np.int64))
    intended = np.sort(table["intended_send_ns"].to_numpy(np.int64))
    late_ms = table["dispatch_late_s"].to_numpy(float) * 1e3
    achieved = float((len(sent) - 1) / ((sent[-1] - sent[0]) / 1e9))
    scheduled = float((len(intended) - 1) / ((intended[-1] - intended[0]) / 1e9))
    info = run.run_json()
    health = info["health"]
    return {
        "arrival": arrival,
        "requested_per_s": rate,
        "requests": len(sent),
        "errors": int((table["status"] != "ok").sum()),
        "achieved_per_s": achieved,
        "error_pct": (achieved / rate - 1) * 100,
        # the seeded schedule's own rate: a Poisson draw of n gaps is off by ~1/sqrt(n)
        "schedule_per_s": scheduled,
        "schedule_error_pct": (scheduled / rate - 1) * 100,
        "achieved_vs_schedule_pct": (achieved / scheduled - 1) * 100,
        "cv_actual": _cv(np.diff(sent).astype(float)),
        "cv_intended": _cv(np.diff(intended).astype(float)),
        "late_ms_p50": float(np.percentile(late_ms, 50)),
        "late_ms_p99": float(np.percentile(late_ms, 99)),
        "late_ms_max": float(late_ms.max()),
        "late_ms_min": float(late_ms.min()),
        "verdict": info["verdict"],
        "verdict_causes": [c["message"] for c in health["verdict"]["causes"]],
        "lag_ms_p99": health["lag_ms"]["p99"],
        "client_cpu": health["cpu"]["mean"],
        # the client's own cost: x rate = the share of a core it needs to keep the schedule
        "client_cpu_ms_per_request": health["cpu"]["cpu_s"] / len(sent) * 1e3,
        "in_flight_max": health["in_flight"]["max"],
        "concurrency": CONCURRENCY,
        "run_elapsed_s": info["elapsed_s"],
        "foreign_cpu_share": run.foreign_cpu_share,
        "wall_s": run.wall_s,
        "within_target": bool(abs((achieved / rate - 1) * 100) <= TARGET_PCT),
    }


def measured_cell(
    sim: SimHandle, work: Path, dataset: Path, rate: int, arrival: str, n: int
) -> dict[str, Any]:
    """rate_cell, run again when it missed the target or its verdict was not `valid` while
    other work visibly took the client's core: that miss may be the machine's, not the
    client's. Keeps the first clean or undisturbed attempt, else the least disturbed one."""
    attempts: list[dict[str, Any]] = []
    chosen: dict[str, Any] | None = None
    while chosen is None and len(attempts) < MAX_ATTEMPTS:
        row = rate_cell(sim, work, dataset, rate, arrival, n, len(attempts) + 1)
        attempts.append(row)
        clean = row["within_target"] and row["verdict"] == "valid"
        if clean or row["foreign_cpu_share"] <= DISTURBED_SHARE:
            chosen = row
    if chosen is None:
        chosen = min(attempts, key=lambda r: r["foreign_cpu_share"])
    keys = ("achieved_per_s", "error_pct", "foreign_cpu_share", "client_cpu",
            "client_cpu_ms_per_request", "verdict")  # fmt: skip
    return {**chosen, "attempts": [{k: a[k] for k in keys} for a in attempts]}


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| arrival | requested /s | n | achieved /s | error % | schedule err % | CV actual / "
        "intended | late p50 / p99 / max ms | verdict | lag p99 ms | CPU | in flight max | "
        "others' CPU on its core | runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arrival']} | {r['requested_per_s']:,} | {r['requests']:,} | "
            f"{r['achieved_per_s']:,.2f} | {r['error_pct']:+.2f} | "
            f"{r['schedule_error_pct']:+.2f} | {r['cv_actual']:.3f} / {r['cv_intended']:.3f} | "
            f"{r['late_ms_p50']:.2f} / {r['late_ms_p99']:.2f} / {r['late_ms_max']:.1f} | "
            f"{r['verdict']} | {r['lag_ms_p99']:.1f} | {r['client_cpu']:.0%} | "
            f"{r['in_flight_max']} / {r['concurrency']} | {r['foreign_cpu_share']:.1%} | "
            f"{len(r['attempts'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="~3 s per cell instead of ~10 s")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "rate.json")
    parser.add_argument("--rates", type=int, nargs="*", default=list(RATES))
    parser.add_argument("--arrivals", nargs="*", default=list(ARRIVALS))
    args = parser.parse_args()
    seconds, floor = (3, 30) if args.quick else (10, 100)
    counts = {rate: max(floor, rate * seconds) for rate in args.rates}
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lavabench-bench-rate-") as tmp:
        work = Path(tmp)
        dataset = write_dataset(work / "items.jsonl", max(counts.values()))
        with pinned_simulator() as sim:
            for rate in args.rates:
                for arrival in args.arrivals:
                    rows.append(measured_cell(sim, work, dataset, rate, arrival, counts[rate]))
                    print({k: v for k, v in rows[-1].items() if k != "verdict_causes"}, flush=True)
    result = {
        "target_pct": TARGET_PCT,
        "quick": args.quick,
        "wall_s": time.perf_counter() - t0,
        "rows": rows,
        "all_within_target": all(r["within_target"] for r in rows),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(rows))
    print(f"\nwritten: {args.json} ({result['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
