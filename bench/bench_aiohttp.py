"""The ceiling: a bare aiohttp loop against the same simulator, measured in the same run.

Issue 6 asks that lavabench's capacity at concurrency 256 be >= 70% of what one plain
aiohttp event loop achieves on the same core. This script is that plain loop, with nothing
of lavabench's request path: one `aiohttp.ClientSession` on uvloop (as `lavabench run`
uses), `concurrency` worker tasks sharing one request counter, every request a distinct
prompt over the same forward route and headers as bench_client.py, and every SSE line of
every response read (`async for line in response.content`) until `data: [DONE]`.

Same setup as bench_client.py's capacity rows: the simulator in its own process pinned to
core 0 with zero delays and 32-token streams, this process pinned to core 1, a warm-up that
opens the connections, then wall time and this process's CPU time over the timed requests.

    python bench/bench_aiohttp.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_client import MODEL, _config, _process_tree_cpu_s, _sim_settings  # noqa: E402
from lavabench.sim.process import running_simulator  # noqa: E402
from lavabench.wire.protocol import forward_url  # noqa: E402

HEADERS = {"authorization": "Bearer aks_test_bench0123456789", "content-type": "application/json"}
CONCURRENCIES = (1, 64, 256)


def request_bodies(model_id: str, n: int, tag: str) -> list[bytes]:
    """n distinct prompts (no answer-key hits), the body shape lavabench sends."""
    return [
        orjson.dumps({
            "model": model_id,
            "messages": [{"role": "user", "content": f"Bench prompt {tag}{i}."}],
            "max_tokens": 64,
            "stream": True,
            "stream_options": {"include_usage": True},
        })
        for i in range(n)
    ]  # fmt: skip


async def one_request(session: aiohttp.ClientSession, url: str, body: bytes) -> bool:
    """POST, read every SSE line; True when the stream ended with [DONE]."""
    async with session.post(url, data=body, headers=HEADERS) as response:
        if response.status != 200:
            await response.read()
            return False
        done = False
        async for line in response.content:
            if line.startswith(b"data: [DONE]"):
                done = True
        return done


async def run_loop(
    session: aiohttp.ClientSession, url: str, bodies: list[bytes], concurrency: int
) -> int:
    """`concurrency` workers drain `bodies`; returns how many streams completed."""
    next_index = iter(range(len(bodies)))
    ok = 0

    async def worker() -> None:
        nonlocal ok
        for i in next_index:
            completed = await one_request(session, url, bodies[i])
            ok += completed  # after the await: `ok += await ...` would lose updates

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


async def measure(base_url: str, model_id: str, n: int, concurrency: int) -> dict[str, float]:
    """Warm-up (opens the connections), then n timed requests: ok, wall s, CPU s."""
    url = forward_url(base_url)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm = request_bodies(model_id, min(n, concurrency * 2), "w")
        await run_loop(session, url, warm, concurrency)
        bodies = request_bodies(model_id, n, "")
        cpu0, t0 = time.process_time(), time.perf_counter()
        ok = await run_loop(session, url, bodies, concurrency)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"ok": ok, "wall": wall, "cpu": cpu}


def capacity_row(n: int, concurrency: int, defaults: Any, catalog: Any) -> dict[str, Any]:
    """One pinned simulator, one measured loop; the row run_all.py prints."""
    import uvloop

    settings = _sim_settings(defaults, zero=True, log_path=None)
    os.sched_setaffinity(0, {0})  # the simulator child inherits core 0
    try:
        with running_simulator(settings, catalog) as sim:
            os.sched_setaffinity(0, {1})
            sim_cpu0 = _process_tree_cpu_s(sim.pid)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                m = runner.run(measure(sim.base_url, catalog[MODEL]["id"], n, concurrency))
            sim_cpu = _process_tree_cpu_s(sim.pid) - sim_cpu0
    finally:
        os.sched_setaffinity(0, {0, 1})
    return {
        "kind": "capacity",
        "client": "bare aiohttp",
        "concurrency": concurrency,
        "requests": n,
        "errors": n - m["ok"],
        "req_per_s": m["ok"] / m["wall"],
        "output_tokens_per_s": m["ok"] * 32 / m["wall"],
        "client_cpu_s_per_1k": m["cpu"] / max(m["ok"], 1) * 1000,
        "client_cpu_share": m["cpu"] / m["wall"],
        "sim_cpu_share_upper": sim_cpu / m["wall"],
    }


def requests_for(concurrency: int, quick: bool) -> int:
    """The same counts as bench_client.py's capacity rows."""
    scale = 1 if quick else 4
    return (max(500, concurrency * 4) if concurrency > 1 else 500) * scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "aiohttp.json")
    args = parser.parse_args()
    defaults, catalog = _config()
    rows = []
    for c in CONCURRENCIES:
        rows.append(capacity_row(requests_for(c, args.quick), c, defaults, catalog))
        print(rows[-1], flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
