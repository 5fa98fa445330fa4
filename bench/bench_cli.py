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

- the best peer, AIPerf (bench_peers.py installs it into bench/.peers/aiperf and knows its
  command line), against the same server at the same concurrency with its defaults
  otherwise (bench_peers.py's c=256 capacity case: 2,000 requests after 512 warm-up ones,
  32-token streams, server token counts), its process tree on core 1. Its req/s is its own
  over its profiling phase (start-up and warm-up excluded, like lavabench's span). A peer
  that cannot be installed or run gives a row saying why, never a number.

The order inside a round rotates (A B C, B C A, ...) so that drift on a shared machine
falls on all of them. Reported: req/s of each, lavabench / bare and lavabench / peer per
round and their min / median / max, and the issue's targets (>= 85 % of bare; >= 12x the
best peer, both measured in this run).

    python bench/bench_cli.py [--pairs 4] [--repeats 10] [--concurrency 256] [--quick]
                              [--no-peer] [--json PATH]
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
PEER = "aiperf"  # the best peer at c=256 in bench/results/peers.json (238 req/s vs 28 GuideLLM)
PEER_CASE = (2000, 512)  # requests, warm-up: bench_peers.py's capacity case at c=256
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


def prepare_peer() -> tuple[Any, Path, str]:
    """AIPerf installed (once) with its local tokenizer: (Peer, its python, its version).
    Raises RuntimeError (one line) when it cannot be installed."""
    from bench import bench_peers

    peer = next(p for p in bench_peers.PEERS if p.name == PEER)
    python, version = bench_peers.ensure_peer(peer)
    bench_peers.ensure_tokenizer(python)
    return peer, python, version


def peer_run(prepared: tuple[Any, Path, str] | str, base_url: str, concurrency: int,
             work: Path, run_id: str) -> dict[str, Any]:  # fmt: skip
    """One AIPerf run against the server (its tree on core 1, as bench_peers pins it); a row
    with `error` ("could not run: ...") instead of req/s when it fails. Never raises."""
    from bench import bench_peers

    row: dict[str, Any] = {"client": PEER, "req_per_s": None, "error": None}
    if isinstance(prepared, str):  # the install failed: say so in every round
        row["error"] = f"could not run: {prepared}"
        return row
    peer, python, version = prepared
    row["client"] = f"{PEER} {version}"
    out = work / run_id
    out.mkdir(parents=True)
    requests, warmup = PEER_CASE
    case = bench_peers.Case("capacity", concurrency, requests, warmup)
    try:
        command = peer.build(python.parent.parent, base_url, "bench-model", case, out)
        code, samples, _total, wall = bench_peers.run_tree(
            command, cwd=out, env={**os.environ, **peer.env}, timeout_s=bench_peers.RUN_TIMEOUT_S
        )
        row["wall_s"] = wall
        if code != 0:
            why = "timed out" if code is None else f"exit {code}"
            log = (out / "stderr.log").read_text(errors="replace")
            row["error"] = f"could not run: {why}: {bench_peers._one_line(log)}"
            return row
        got = peer.parse(out)
        if got["completed"] <= 0:
            row["error"] = f"could not run: no completed requests ({got['peer_errors']} errors)"
            return row
        phase_cpu = bench_peers._cpu_between(samples, *got["phase_s"])
        row.update({"req_per_s": got["req_per_s"], "completed": got["completed"],
                    "peer_errors": got["peer_errors"],
                    "achieved_concurrency": got["achieved_concurrency"],
                    "client_cpu_s_per_1k": None if phase_cpu is None
                    else phase_cpu / got["completed"] * 1e3})  # fmt: skip
    except Exception as exc:  # a peer must never crash the bench
        row["error"] = f"could not run: {type(exc).__name__}: {exc}".splitlines()[0][:300]
    return row


def _spread(values: list[float]) -> dict[str, float] | None:
    """min / median / max; None when nothing was measured (a peer that could not run)."""
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def summarize(
    pairs: list[dict[str, Any]], concurrency: int, name: str = "lavabench"
) -> dict[str, Any]:
    """min / median / max of `name`'s req/s, the bare loop's and the per-pair ratio; the targets."""
    runs = [p["runs"][name] for p in pairs]
    ours = [r["req_per_s"] for r in runs]
    ratios = [p["ratio"][name] for p in pairs]
    peers = [p["runs"]["peer"] for p in pairs if "peer" in p["runs"]]
    peer_rates = [r["req_per_s"] for r in peers if r["req_per_s"] is not None]
    peer_x = [p["peer_ratio"][name] for p in pairs if p.get("peer_ratio", {}).get(name)]
    errors = sorted({r["error"] for r in peers if r["error"]})
    peer = _spread(peer_rates)
    peer_source = (
        f"{peers[0]['client'] if peers else PEER} c={concurrency} against bench/sse_server.py "
        f"in this run, {len(peer_rates)} of {len(peers)} rounds"
        + (f"; {'; '.join(errors)}" if errors else "")
    )
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
        "peer_req_per_s": peer,  # None: it could not run (peer_errors says why)
        "peer_errors": errors,
        "best_peer_req_per_s": None if peer is None else peer["median"],
        "best_peer_source": peer_source,
        "peer_x": _spread(peer_x),  # lavabench / peer, each round's own pair
        "target_share": TARGET_SHARE,
        "target_peer_x": TARGET_PEER_X,
        "share_met": statistics.median(ratios) >= TARGET_SHARE,
        "peer_x_met": None if not peer_x else statistics.median(peer_x) >= TARGET_PEER_X,
    }


def run_pairs(url: str, pid: int, work: Path, variants: dict[str, Path], pairs: int,
              concurrency: int, repeats: int,
              peer: tuple[Any, Path, str] | str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """`pairs` rounds of every variant's `lavabench run`, one bare loop and (`peer` not
    None) one peer run, the order rotating each round so that drift on a shared machine
    falls on all of them."""
    n = DEFAULT_MODELS * DEMO_ITEMS * repeats
    names = [*variants, "bare", *(["peer"] if peer is not None else [])]
    out = []
    for i in range(pairs):
        order = names[i % len(names) :] + names[: i % len(names)]
        runs: dict[str, dict[str, Any]] = {}
        for name in order:
            if name == "bare":
                runs[name] = bare_loop(url, n, concurrency, pid)
            elif name == "peer":
                assert peer is not None
                runs[name] = peer_run(peer, url, concurrency, work, f"peer-{i}")
            else:
                runs[name] = lavabench_cli(url, work, f"{name}-{i}", concurrency, repeats, pid,
                                           checkout=variants[name])  # fmt: skip
        bare = runs["bare"]["req_per_s"]
        ours = {k: runs[k] for k in variants}  # in --checkout order whatever ran first
        # (run_all.targets_section reads each round's first ratio as the lavabench one)
        pair = {"order": order, "runs": runs,
                "ratio": {k: r["req_per_s"] / bare for k, r in ours.items()}}  # fmt: skip
        peer_rate = runs.get("peer", {}).get("req_per_s")
        if peer_rate:
            pair["peer_ratio"] = {k: r["req_per_s"] / peer_rate for k, r in ours.items()}
        out.append(pair)
        print(json.dumps({"pair": i, "order": order,
                          **{f"{k}_req_per_s": None if r["req_per_s"] is None else round(r["req_per_s"]) for k, r in runs.items()},
                          **{f"{k}_ratio": round(x, 3) for k, x in pair["ratio"].items()},
                          **{f"{k}_peer_x": round(x, 2) for k, x in pair.get("peer_ratio", {}).items()},
                          **{f"{k}_lag_p99_ms": r.get("loop_lag_ms_p99") for k, r in ours.items()},
                          **{f"{k}_wall_s": round(r["wall_s"], 2) for k, r in ours.items()},
                          "peer_error": runs.get("peer", {}).get("error"),
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
    parser.add_argument("--no-peer", action="store_true", help=f"leave {PEER} out of the rounds")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "cli.json")
    args = parser.parse_args()
    repeats = 6 if args.quick else args.repeats
    peer: tuple[Any, Path, str] | str | None = None
    if not args.no_peer:
        try:
            peer = prepare_peer()
        except Exception as exc:  # the rounds still run; the peer row says why
            peer = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
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
                              args.pairs, args.concurrency, repeats, peer)  # fmt: skip
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
        x = s["peer_x"]
        peer_text = (f"{x['median']:.1f}x the peer (min {x['min']:.1f}, max {x['max']:.1f}; "
                     f"{s['best_peer_source']})" if x else f"peer: {s['best_peer_source']}")  # fmt: skip
        print(f"{name}: lavabench run {ours['median']:,.0f} req/s (min {ours['min']:,.0f}, max "
              f"{ours['max']:,.0f}); bare {bare['median']:,.0f}; ratio median {ratio['median']:.1%} "
              f"(min {ratio['min']:.1%}, max {ratio['max']:.1%}); {peer_text}")  # fmt: skip


if __name__ == "__main__":
    main()
