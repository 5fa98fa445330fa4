"""How many streamed responses per second the simulator serves, and at what CPU cost.

The simulator must be faster than any client it tests (a Python client tops out around
3,000-5,000 streamed responses/s per process), else a benchmark measures the simulator.
Target: >= 6,000 streamed 32-token responses/s on one core with `zero_delays: true`.

Setup: the simulator runs pinned to --server-cpus (default core 0), the load generator to
--client-cpus (default core 1). Load: `wrk` with a Lua script (keep-alive, every request a
new prompt so the answer-key cache never hits, against a 1,319-question key), else several
aiohttp client processes. Every request goes through the gateway path (credential, `u`,
then Fireworks validation) and streams 32 content tokens with include_usage.
Server CPU is read from /proc for every process of the simulator's process group.

    .venv/bin/python bench/bench_sim.py [--duration 10] [--connections 64] [--workers 1 2]

A last row runs with real delays (50 ms TTFT, 100 tokens/s, no jitter: 0.36 s per
response by plan) and many connections: its CPU per 1,000 responses is what a realistic run
costs the simulator, and wrk's latency percentiles show how closely the plan is kept under load.

Prints one Markdown row per configuration and writes bench/results/sim.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lavabench.sim.process import running_simulator  # noqa: E402

MODEL_NAME = "llama-v3p3-70b-instruct"
MODEL_ID = f"accounts/fireworks/models/{MODEL_NAME}"
SECRET = "aks_test_benchmark0001"
FORWARD = "/v1/forward?u=https%3A%2F%2Fapi.fireworks.ai%2Finference%2Fv1%2Fchat%2Fcompletions"
OUTPUT_TOKENS = 32
KEY_ITEMS = 1319

WRK_SCRIPT = """
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(secret)s"
request = function()
  counter = counter + 1
  local body = '{"model":"%(model)s","messages":[{"role":"system","content":"You are a '
    .. 'careful assistant."},{"role":"user","content":"Benchmark prompt ' .. counter
    .. ', which is in no answer key."}],"stream":true,"stream_options":{"include_usage":true},'
    .. '"max_tokens":64}'
  return wrk.format(nil, "%(path)s", nil, body)
end
"""


def catalog() -> dict[str, dict[str, Any]]:
    """One model is enough: lookups are a dict access whatever the catalog's size."""
    return {MODEL_NAME: {"id": MODEL_ID, "reasoning": False}}


def write_key(path: Path) -> None:
    """A GSM8K-sized key of arithmetic word problems, so matching cost is realistic."""
    with path.open("w") as f:
        for i in range(KEY_ITEMS):
            a, b = 3 + i % 97, 5 + (i * 7) % 89
            question = (
                f"A shop sold {a} pencils on Monday and {b} pencils on Tuesday, and item {i} "
                f"is the total. How many pencils did the shop sell in those two days?"
            )
            f.write(json.dumps({"id": f"b{i}", "question": question, "answer": str(a + b)}) + "\n")


def group_cpu_s(pgid: int) -> float:
    """utime + stime of every live process in the process group, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # fields[0] is state; pgrp is the 5th stat field
            total += int(fields[11]) + int(fields[12])
    return total / tick


def check_stream(base_url: str) -> None:
    """One request by hand: the bench must measure correct 32-token streams."""
    import httpx

    body = {
        "model": MODEL_ID,
        "messages": [{"role": "user", "content": "Benchmark sanity check."}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {SECRET}"}
    r = httpx.post(base_url + FORWARD, json=body, headers=headers, timeout=10)
    r.raise_for_status()
    contents = [line for line in r.text.split("\n\n") if '"content":' in line]
    if len(contents) != OUTPUT_TOKENS or not r.text.endswith("data: [DONE]\n\n"):
        raise SystemExit(f"unexpected stream: {len(contents)} content chunks")


def run_wrk(
    base_url: str, args: argparse.Namespace, connections: int
) -> tuple[int, float, int, dict[str, float]]:
    """(responses, seconds, errors, latency percentiles in s) from one wrk run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % {"secret": SECRET, "model": MODEL_ID, "path": FORWARD})
        script = f.name
    try:
        command = ["taskset", "-c", args.client_cpus, "wrk", "-t", str(args.wrk_threads)]
        command += ["-c", str(connections), "-d", f"{args.duration}s", "--latency", "-s", script]
        out = subprocess.run(
            [*command, base_url], capture_output=True, text=True, check=True
        ).stdout
    finally:
        os.unlink(script)
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if done is None:
        raise SystemExit(f"cannot parse wrk output:\n{out}")
    seconds = float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    n_errors = int(errors.group(1)) if errors else 0
    if socket_errors:
        n_errors += sum(int(x) for x in re.findall(r"\d+", socket_errors.group(1)))
    latency = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", out, re.M):
        latency[f"p{pct}_s"] = float(value) / {"us": 1e6, "ms": 1e3, "s": 1.0}[unit]
    return int(done.group(1)), seconds, n_errors, latency


def _aiohttp_client(url: str, connections: int, duration: float, queue: Any) -> None:
    import asyncio

    import aiohttp

    body = {
        "model": MODEL_ID,
        "messages": [{"role": "user", "content": "Benchmark prompt"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    async def main() -> tuple[int, int]:
        done = errors = 0
        stop_at = time.monotonic() + duration
        headers = {"Authorization": f"Bearer {SECRET}"}
        conn = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=conn) as session:

            async def one_connection(k: int) -> None:
                nonlocal done, errors
                i = 0
                while time.monotonic() < stop_at:
                    i += 1
                    payload = dict(body, messages=[{"role": "user", "content": f"p {k} {i}"}])
                    async with session.post(url, json=payload, headers=headers) as r:
                        await r.read()
                        if r.status == 200:
                            done += 1
                        else:
                            errors += 1

            await asyncio.gather(*(one_connection(k) for k in range(connections)))
        return done, errors

    queue.put(asyncio.run(main()))


def run_aiohttp(
    base_url: str, args: argparse.Namespace, connections: int
) -> tuple[int, float, int, dict[str, float]]:
    """Fallback load: several aiohttp processes pinned to the client cpus."""
    cpus = {int(c) for c in args.client_cpus.split(",")}
    procs, queue = [], mp.Queue()
    per = max(1, connections // args.client_procs)
    start = time.monotonic()
    for _ in range(args.client_procs):
        p = mp.Process(target=_aiohttp_client, args=(base_url + FORWARD, per, args.duration, queue))
        p.start()
        os.sched_setaffinity(p.pid, cpus)
        procs.append(p)
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    seconds = time.monotonic() - start
    return sum(r[0] for r in results), seconds, sum(r[1] for r in results), {}


def bench(
    workers: int, tool: str, args: argparse.Namespace, key_path: Path, timed: bool
) -> dict[str, Any]:
    profile: dict[str, Any] = {"default_output_tokens": OUTPUT_TOKENS, "reasoning_style": "none"}
    if timed:
        profile.update(ttft_s=0.05, tokens_per_s=100, jitter=0.0)
    settings = {
        "seed": 1,
        "workers": workers,
        "zero_delays": not timed,
        "answer_keys": [str(key_path)],
        "models": {MODEL_NAME: profile},
    }
    connections = args.timed_connections if timed else args.connections
    prefix = ("taskset", "-c", args.server_cpus)
    with running_simulator(settings, catalog(), command_prefix=prefix) as sim:
        check_stream(sim.base_url)
        cpu_before = group_cpu_s(sim.pid)
        runner = run_wrk if tool == "wrk" else run_aiohttp
        responses, seconds, errors, latency = runner(sim.base_url, args, connections)
        cpu_s = group_cpu_s(sim.pid) - cpu_before
    rate = responses / seconds
    return {
        "mode": "50 ms TTFT + 10 ms ITL" if timed else "zero_delays",
        "workers": workers,
        "server_cpus": args.server_cpus,
        "client_cpus": args.client_cpus,
        "tool": tool,
        "connections": connections,
        "duration_s": round(seconds, 2),
        "responses": responses,
        "errors": errors,
        "responses_per_s": round(rate, 1),
        "server_cpu_s": round(cpu_s, 2),
        "server_cpu_s_per_1k": round(cpu_s / (responses / 1000), 4) if responses else None,
        "planned_latency_s": 0.05 + 0.01 * (OUTPUT_TOKENS - 1) if timed else 0.0,
        **{f"latency_{k}": round(v, 4) for k, v in latency.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1")
    parser.add_argument("--timed-connections", type=int, default=512)
    parser.add_argument("--no-timed", action="store_true", help="skip the row with real delays")
    parser.add_argument("--tool", choices=("auto", "wrk", "aiohttp"), default="auto")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--client-procs", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "sim.json"))
    args = parser.parse_args()
    tool = args.tool
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "aiohttp"
    if tool == "aiohttp":
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            print("skipped: neither wrk nor aiohttp is available")
            return 0
    if shutil.which("taskset") is None:
        print("skipped: taskset is needed to pin server and client to separate cores")
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        key_path = Path(tmp) / "key.jsonl"
        write_key(key_path)
        print(
            f"load generator: {tool}; server cpus {args.server_cpus}, "
            f"client cpus {args.client_cpus}; {os.cpu_count()} cpus\n"
        )
        print(
            "| mode | workers | tool | conns | responses/s | server CPU s / 1k "
            "| latency p50 / p99 | errors |"
        )
        print("|---|---|---|---|---|---|---|---|")
        plan = [(w, False) for w in args.workers] + ([] if args.no_timed else [(1, True)])
        for workers, timed in plan:
            row = bench(workers, tool, args, key_path, timed)
            rows.append(row)
            p50, p99 = row.get("latency_p50_s"), row.get("latency_p99_s")
            shown = f"{p50 * 1e3:.1f} / {p99 * 1e3:.1f} ms" if p50 and p99 else "n/a"
            print(
                f"| {row['mode']} | {workers} | {tool} | {row['connections']} "
                f"| {row['responses_per_s']:,.0f} | {row['server_cpu_s_per_1k']} | {shown} "
                f"| {row['errors']} |",
                flush=True,
            )
    result = {
        "benchmark": "sim: streamed 32-token responses over the gateway path (wrk or aiohttp load)",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "target_responses_per_s_one_core": 6000,
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
