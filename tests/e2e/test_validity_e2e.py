"""Measurement validity against the real simulator: a light run is `valid` (and its overhead
matches an injected gateway delay), a saturated client is not, chunk packing is detected."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import uvloop

from bench.bench_client import MODEL, drive
from lavabench.records.reader import read_records
from lavabench.records.store import read_metadata
from lavabench.records.verdict import verdict
from lavabench.runner.health import HealthMonitor
from tests.conftest import read_log, run_cli, sim_settings

GATEWAY_DELAY_S = 0.015


def _run_dir(stdout: str) -> Path:
    line = next(x for x in stdout.splitlines() if x.startswith("run:"))
    return Path(line.split(None, 1)[1]).parent


def test_light_run_is_valid_and_overhead_matches_the_gateway_delay(tmp_path) -> None:
    proc = run_cli(
        [
            "run",
            "model=llama-v3p3-70b-instruct",
            "dataset.limit=40",
            "runner.concurrency=4",
            f"sim.gateway_delay_s={GATEWAY_DELAY_S}",
            f"results_dir={tmp_path}",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    assert "measurement: valid" in proc.stdout
    run_dir = _run_dir(proc.stdout)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["verdict"] == "valid" and info["health"]["verdict"]["causes"] == []
    assert info["health"]["in_flight"]["max"] == 4
    assert json.loads(read_metadata(run_dir)["health"])["verdict"]["status"] == "valid"
    df = read_records(run_dir).to_pandas()
    assert (df.status == "ok").all() and df.server_ttft_s.notna().all()
    # overhead = the gateway delay + loopback and client time (~1-1.5 ms here, measured)
    overhead_ms = np.median(df.overhead_s) * 1e3
    print(f"\nmedian overhead {overhead_ms:.2f} ms vs injected {GATEWAY_DELAY_S * 1e3:.0f} ms; "
          f"lag p99 {info['health']['lag_ms']['p99']} ms")  # fmt: skip
    assert abs(overhead_ms - GATEWAY_DELAY_S * 1e3) <= 2.0
    assert df.intended_send_ns.notna().all() and (df.dispatch_late_s >= 0).all()
    assert (df.tokens_per_chunk == 1.0).all()


def _profiles(defaults: dict[str, Any], **changes: Any) -> dict[str, Any]:
    profiles = dict(defaults["models"])
    profiles[MODEL] = {**profiles[MODEL], "ttft_s": 0.05, "tokens_per_s": 100.0, "jitter": 0.1,
                       "reasoning_style": "none", "default_output_tokens": 32, **changes}  # fmt: skip
    return profiles


def _drive(settings: dict[str, Any], catalog: Any, n: int, c: int, **kw: Any) -> Any:
    from lavabench.sim.process import running_simulator

    with (
        running_simulator(settings, catalog) as sim,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop,
    ):
        return loop.run(drive(sim.base_url, catalog[MODEL]["id"], n=n, concurrency=c, **kw))


class BlockingObserver:
    """The test hook: every finished row blocks the event loop (as a slow callback would)."""

    def on_record(self, record: Any) -> None:
        time.sleep(0.06)


def test_saturated_client_is_not_valid_and_names_the_cause(sim_defaults, sim_catalog) -> None:
    settings = sim_settings(sim_defaults, models=_profiles(sim_defaults))
    monitor = HealthMonitor()
    rows, _wall, _cpu = _drive(
        settings, sim_catalog, 48, 16, monitor=monitor, observer=BlockingObserver()
    )
    assert all(r.status == "ok" for r in rows)
    summary = monitor.summary(concurrency=16)
    v = verdict(summary, monitor.thresholds)
    print(f"\nsaturated: {v['status']}, lag p99 {summary['lag_ms']['p99']} ms, "
          f"cpu {summary['cpu']['mean']}, causes {[c['message'] for c in v['causes']]}")  # fmt: skip
    assert v["status"] != "valid"
    assert "event_loop_lag_p99_ms" in {c["metric"] for c in v["causes"]}


def test_four_tokens_per_chunk_are_detected_and_itl_is_per_chunk(
    sim_defaults, sim_catalog, tmp_path
) -> None:
    log = tmp_path / "log.jsonl"
    settings = sim_settings(
        sim_defaults, models=_profiles(sim_defaults, tokens_per_chunk=4), log_path=str(log)
    )
    rows, _wall, _cpu = _drive(settings, sim_catalog, 16, 8)
    sent = {e["completion_id"]: e for e in read_log(log)}
    for r in rows:
        assert r.status == "ok" and r.completion_tokens == 32
        assert r.tokens_per_chunk == 4.0 and r.content_chunks == 8
        assert len(r.token_offsets_ns) == 8
        assert sent[r.response_id]["chunks"] == 8
    # ITL is the gap between chunks: ~4 token gaps (4 x 10 ms), not 10 ms
    assert 0.035 < float(np.median([r.itl_p50_s for r in rows])) < 0.045
