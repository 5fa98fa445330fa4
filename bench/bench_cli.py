"""The user's path: `lavabench run` (the CLI, a subprocess) vs a bare aiohttp loop, one server.

Issue 21: what a user runs is `lavabench run` with grading, the progress bar and the health
samplers on, not the in-process request path bench_client.py measures. This script starts
bench/sse_server.py (a minimal independent SSE server, not the simulator) pinned to core 0,
pins itself and its children to core 1, and alternates, `--pairs` times in one run:

- `lavabench run endpoint=lava endpoint.base_url=<server> runner.concurrency=256
  runner.repeats=R` with every other option at its default (the 7 default models, the demo
  set graded by its numeric grader, Parquet records with response text, health samplers),
  a dummy `LAVA_SECRET_KEY` in its environment and its stderr on a pseudo-terminal, so the
  progress bar draws as in a user's terminal. Its throughput is taken from its own records:
  requests / (last `done_ns` - first `send_ns`), i.e. Python start-up, config, dataset and
  plan before the first send, and the final Parquet merge and table after the last answer,
  are excluded; the wall time including them is reported beside it.
- the bare loop (bench_aiohttp.measure: one ClientSession on uvloop reading every SSE line,
  nothing else) in this process, the same number of requests at the same concurrency,
  after its warm-up opened the connections (lavabench's span includes opening them).

The order inside a pair alternates (A B, B A, ...) so that drift on a shared machine falls
on both. Reported: req/s of each, the ratio per pair and its min / median / max, and the
issue's targets (>= 85 % of bare; >= 12x the best peer, 238 req/s at c=256 in
bench/results/latest.md unless bench/results/peers.json says otherwise).

    python bench/bench_cli.py [--pairs 4] [--repeats 10] [--concurrency 256] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_aiohttp import measure  # noqa: E402
from bench.bench_client import _process_tree_cpu_s  # noqa: E402
from bench.bench_rate import _cores_busy_s  # noqa: E402

DEFAULT_MODELS = 7  # conf/config.yaml's model list
DEMO_ITEMS = 60
BEST_PEER_FALLBACK = 238.0  # AIPerf 0.13 at c=256, bench/results/latest.md (2026-12-01)
TARGET_SHARE = 0.85
TARGET_PEER_X = 12.0
DUMMY_KEY = "aks_test_benchcli0123456789"  # never leaves loopback


@contextlib.contextmanager
def sse_server(core: int | None, coalesce: bool = False) -> Iterator[tuple[str, int]]:
    """bench/sse_server.py on an ephemeral port (pinned to `core`): (base URL, pid)."""
    cmd = [sys.executable, str(ROOT / "bench" / "sse_server.py"), "--port", "0"]
    if coalesce:
        cmd.append("--coalesce")
    if core is not None:
        cmd += ["--core", str(core)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("port "):
            raise RuntimeError(f"sse_server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _drain(fd: int) -> None:
    """Read the pseudo-terminal until it closes (the progress bar must not block on it)."""
    with contextlib.suppress(OSError):
        while os.read(fd, 65536):
            pass


def lavabench_cli(base_url: str, work: Path, run_id: str, concurrency: int, repeats: int,
                  server_pid: int, checkout: Path = ROOT) -> dict[str, Any]:  # fmt: skip
    """One `lavabench run` subprocess (the package of `checkout`: its cwd); throughput from
    its records, wall time around it."""
    cmd = [sys.executable, "-m", "lavabench", "run", "endpoint=lava",
           f"endpoint.base_url={base_url}", f"runner.concurrency={concurrency}",
           f"runner.repeats={repeats}", f"results_dir={work}", f"run_id={run_id}"]  # fmt: skip
    env = {**os.environ, "LAVA_SECRET_KEY": DUMMY_KEY}
    env.pop("LAVA_FORWARD_TOKEN", None)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    drain = threading.Thread(target=_drain, args=(master,), daemon=True)
    drain.start()
    server0, busy0 = _process_tree_cpu_s(server_pid), _cores_busy_s({1})
    t0 = time.time()
    with (work / f"{run_id}.out").open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=slave, cwd=checkout, env=env)
        os.close(slave)
        _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - t0
    busy, server = _cores_busy_s({1}) - busy0, _process_tree_cpu_s(server_pid) - server0
    os.close(master)
    if os.waitstatus_to_exitcode(status) != 0:
        tail = (work / f"{run_id}.out").read_text()[-2000:]
        raise RuntimeError(f"lavabench run exit {os.waitstatus_to_exitcode(status)}: {tail}")
    run_dir = work / run_id
    table = pq.read_table(run_dir / "records.parquet",
                          columns=["status", "send_ns", "done_ns", "correct", "started_at"])  # fmt: skip
    rows = table.to_pylist()
    ok = [r for r in rows if r["status"] == "ok"]
    first_send = min(r["send_ns"] for r in rows)
    last_done = max(r["done_ns"] for r in ok)
    span = (last_done - first_send) / 1e9
    first_wall = min(r["started_at"] for r in rows).timestamp()
    health = json.loads((run_dir / "run.json").read_text()).get("health") or {}
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "client": "lavabench run",
        "requests": len(rows),
        "ok": len(ok),
        "correct_share": sum(bool(r["correct"]) for r in ok) / max(len(ok), 1),
        "req_per_s": len(ok) / span,
        "span_s": span,
        "wall_s": wall,
        "startup_s": first_wall - t0,  # process start -> first request's wall-clock stamp
        "after_s": wall - (first_wall - t0) - span,  # last answer -> exit (merge, table)
        "wall_req_per_s": len(ok) / wall,
        "client_cpu_s": cpu,
        "client_cpu_s_per_1k_wall": cpu / max(len(ok), 1) * 1000,
        "server_cpu_share": server / wall,
        "foreign_cpu_share": max(0.0, (busy - cpu) / wall),  # others on the client's core
        "loop_lag_ms_p99": (health.get("lag_ms") or {}).get("p99"),
        "in_flight_mean": (health.get("in_flight") or {}).get("mean"),
        "run_cpu_mean": (health.get("cpu") or {}).get("mean"),
        "verdict": (health.get("verdict") or {}).get("status"),
    }


def bare_loop(base_url: str, n: int, concurrency: int, server_pid: int) -> dict[str, Any]:
    """bench_aiohttp's loop in this process (pinned to the client core), after its warm-up."""
    import uvloop

    server0, busy0 = _process_tree_cpu_s(server_pid), _cores_busy_s({1})
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        m = runner.run(measure(base_url, "bench-model", n, concurrency))
    busy, server = _cores_busy_s({1}) - busy0, _process_tree_cpu_s(server_pid) - server0
    return {
        "client": "bare aiohttp",
        "requests": n,
        "ok": m["ok"],
        "req_per_s": m["ok"] / m["wall"],
        "span_s": m["wall"],
        "client_cpu_s": m["cpu"],
        "server_cpu_share_upper": server / m["wall"],  # includes the warm-up
        "foreign_cpu_share_upper": max(0.0, (busy - m["cpu"]) / m["wall"]),
    }


def best_peer() -> tuple[float, str]:
    """The best peer's req/s at c=256 and where that number comes from."""
    path = ROOT / "bench" / "results" / "peers.json"
    if path.exists():
        peers = [r for r in json.loads(path.read_text())
                 if r.get("kind") == "capacity" and r.get("concurrency") == 256 and not r.get("error")]  # fmt: skip
        if peers:
            best = max(peers, key=lambda r: r["req_per_s"])
            return best["req_per_s"], f"{best['tool']} {best['version']}, bench/results/peers.json"
    return BEST_PEER_FALLBACK, "AIPerf 0.13, bench/results/latest.md of 2026-12-01"


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def summarize(
    pairs: list[dict[str, Any]], concurrency: int, name: str = "lavabench"
) -> dict[str, Any]:
    """min / median / max of `name`'s req/s, the bare loop's and the per-pair ratio; the targets."""
    runs = [p["runs"][name] for p in pairs]
    ours = [r["req_per_s"] for r in runs]
    ratios = [p["ratio"][name] for p in pairs]
    peer, peer_source = best_peer()
    return {
        "concurrency": concurrency,
        "pairs": len(pairs),
        "lavabench_req_per_s": _spread(ours),
        "lavabench_wall_req_per_s": _spread([r["wall_req_per_s"] for r in runs]),
        "lavabench_startup_s": _spread([r["startup_s"] for r in runs]),
        "lavabench_after_s": _spread([r["after_s"] for r in runs]),
        "lavabench_wall_s": _spread([r["wall_s"] for r in runs]),
        "lavabench_loop_lag_ms_p99": _spread([r["loop_lag_ms_p99"] for r in runs]),
        "lavabench_foreign_cpu_share": _spread([r["foreign_cpu_share"] for r in runs]),
        "server_cpu_share": _spread([r["server_cpu_share"] for r in runs]),
        "correct_share": _spread([r["correct_share"] for r in runs]),
        "bare_req_per_s": _spread([p["runs"]["bare"]["req_per_s"] for p in pairs]),
        "ratio": _spread(ratios),
        "best_peer_req_per_s": peer,
        "best_peer_source": peer_source,
        "peer_x": _spread([x / peer for x in ours]),
        "target_share": TARGET_SHARE,
        "target_peer_x": TARGET_PEER_X,
        "share_met": statistics.median(ratios) >= TARGET_SHARE,
        "peer_x_met": statistics.median(ours) / peer >= TARGET_PEER_X,
    }


def run_pairs(url: str, pid: int, work: Path, variants: dict[str, Path], pairs: int,
              concurrency: int, repeats: int) -> list[dict[str, Any]]:  # fmt: skip
    """`pairs` rounds of every variant's `lavabench run` and one bare loop, the order
    rotating each round so that drift on a shared machine falls on all of them."""
    n = DEFAULT_MODELS * DEMO_ITEMS * repeats
    names = [*variants, "bare"]
    out = []
    for i in range(pairs):
        order = names[i % len(names) :] + names[: i % len(names)]
        runs: dict[str, dict[str, Any]] = {}
        for name in order:
            if name == "bare":
                runs[name] = bare_loop(url, n, concurrency, pid)
            else:
                runs[name] = lavabench_cli(url, work, f"{name}-{i}", concurrency, repeats, pid,
                                           checkout=variants[name])  # fmt: skip
        bare = runs["bare"]["req_per_s"]
        pair = {"order": order, "runs": runs,
                "ratio": {k: r["req_per_s"] / bare for k, r in runs.items() if k != "bare"}}  # fmt: skip
        out.append(pair)
        print(json.dumps({"pair": i, "order": order,
                          **{f"{k}_req_per_s": round(r["req_per_s"]) for k, r in runs.items()},
                          **{f"{k}_ratio": round(x, 3) for k, x in pair["ratio"].items()},
                          **{f"{k}_lag_p99_ms": r.get("loop_lag_ms_p99") for k, r in runs.items() if k != "bare"},
                          **{f"{k}_wall_s": round(r["wall_s"], 2) for k, r in runs.items() if k != "bare"},
                          "foreign": round(max(r.get("foreign_cpu_share", r.get("foreign_cpu_share_upper", 0)) for r in runs.values()), 3)}),
              flush=True)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=10, help="runner.repeats (x 420 requests)")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="runner.repeats=6 (2,520 requests)")
    parser.add_argument("--checkout", action="append", default=[], metavar="NAME=DIR",
                        help="compare checkouts: run each one's lavabench (cwd=DIR) in every round")  # fmt: skip
    parser.add_argument("--coalesce", action="store_true",
                        help="the server writes each response at once (default: one write per event)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "cli.json")
    args = parser.parse_args()
    repeats = 6 if args.quick else args.repeats
    variants = dict(v.split("=", 1) for v in args.checkout) or {"lavabench": str(ROOT)}
    original = os.sched_getaffinity(0)
    pin = {0, 1} <= original
    with (
        tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp,
        sse_server(0 if pin else None, args.coalesce) as (url, pid),
    ):
        if pin:
            os.sched_setaffinity(0, {1})  # this process and the lavabench child: core 1
        try:
            pairs = run_pairs(url, pid, Path(tmp), {k: Path(v) for k, v in variants.items()},
                              args.pairs, args.concurrency, repeats)  # fmt: skip
        finally:
            os.sched_setaffinity(0, original)
    result = {
        "requests": DEFAULT_MODELS * DEMO_ITEMS * repeats,
        "pinned": pin,
        "server_writes": "one per response" if args.coalesce else "one per event",
        "summary": summarize(pairs, args.concurrency, next(iter(variants))),
        "variants": {k: summarize(pairs, args.concurrency, k) for k in variants},
        "checkouts": variants,
        "pairs": pairs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    for name, s in result["variants"].items():
        ours, bare, ratio = s["lavabench_req_per_s"], s["bare_req_per_s"], s["ratio"]
        print(f"{name}: lavabench run {ours['median']:,.0f} req/s (min {ours['min']:,.0f}, max "
              f"{ours['max']:,.0f}); bare {bare['median']:,.0f}; ratio median {ratio['median']:.1%} "
              f"(min {ratio['min']:.1%}, max {ratio['max']:.1%}); {s['peer_x']['median']:.1f}x "
              f"the best peer ({s['best_peer_req_per_s']:.0f})")  # fmt: skip


if __name__ == "__main__":
    main()
