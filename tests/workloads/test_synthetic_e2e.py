"""Synthetic workloads end to end: the CLI, the real HTTP stack, the simulator's own counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tests.conftest import run_cli


def _run(base_url: str, tmp_path: Path, *args: str) -> pd.DataFrame:
    proc = run_cli(
        ["run", "endpoint=lava", f"endpoint.base_url={base_url}", f"results_dir={tmp_path}",
         "workload=synthetic", "runner.max_tokens=64", *args],
        env={"LAVA_SECRET_KEY": "aks_test_workloads"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    newest = max(tmp_path.glob("*/records.parquet"), key=lambda p: p.stat().st_mtime)
    return pd.read_parquet(newest)


def test_prompt_tokens_within_2_percent_of_target_on_every_catalog_model(
    running_sim: Any, tmp_path: Path
) -> None:
    base_url, _ = running_sim
    df = _run(base_url, tmp_path, "model=all", "workload.items=3", "runner.concurrency=20",
              "workload.input_tokens={dist:lognormal,median:1500,sigma:0.8,max:10000}",
              "workload.output_tokens=16", "workload.system_prompt='Answer briefly.'",
              "sim.latency_scale=0.01")  # fmt: skip
    assert (df.status == "ok").all() and df.model.nunique() == 20
    error = (df.prompt_tokens - df.target_prompt_tokens).abs() / df.target_prompt_tokens
    assert error.max() <= 0.02, df.loc[error.idxmax()]
    assert (df.completion_tokens == 16).all() and (df.output_control == "ignore_eos").all()
    # one text per item (every model's calibration is the same line on the simulator)
    assert df.prompt_sha256.str.len().eq(64).all()
    assert df.groupby("model").prompt_sha256.nunique().eq(3).all()
    assert (df.workload_kind == "synthetic").all() and (df.dataset == "synthetic-fresh-1k").all()


def test_fresh_stays_uncached_on_a_warm_simulator_and_shared_prefix_hits(
    running_sim: Any, tmp_path: Path
) -> None:
    base_url, _ = running_sim
    common = (
        "model=gpt-oss-20b",
        "runner.concurrency=1",
        "sim.latency_scale=0.2",
        "workload.output_tokens=4",
    )
    shared = _run(base_url, tmp_path, *common, "workload.items=6", "workload.input_tokens=4000",
                  "workload.cache_mode=shared_prefix", "workload.prefix_tokens=3000")  # fmt: skip
    shared = shared.sort_values("send_ns")
    cached = shared.cached_tokens.tolist()
    assert cached[0] == 0 and all(3000 - 16 <= c <= 3000 for c in cached[1:]), cached
    assert shared.ttft_s.iloc[1:].max() < shared.ttft_s.iloc[0]
    # the simulator is warm now (and each repeat meets its first pass's blocks): fresh
    # prompts still share nothing, not even a first block
    fresh = _run(base_url, tmp_path, *common, "workload.items=4", "runner.repeats=2")
    assert (fresh.cached_tokens == 0).all(), fresh.cached_tokens.tolist()


def test_an_endpoint_refusing_ignore_eos_falls_back_on_the_instruction(tmp_path: Path) -> None:
    proc = run_cli(
        ["run", "model=gpt-oss-20b", f"results_dir={tmp_path}", "workload=synthetic",
         "workload.items=3", "workload.output_tokens=48", "runner.max_tokens=64",
         "sim.rejected_fields=[ignore_eos]", "sim.latency_scale=0.02"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    df = pd.read_parquet(next(tmp_path.glob("*/records.parquet")))
    assert (df.status == "ok").all() and (df.output_control == "instruction").all()
    assert (df.max_tokens == 48).all()


def test_100k_token_prompts_pass_every_buffer_on_the_path(running_sim: Any, tmp_path: Path) -> None:
    """No read-buffer or line limit on the way (aiohttp iter_any, the SSE decoder, the
    simulator's parser take any size); the heavy TTFT-error figure is bench_workloads.py."""
    base_url, _ = running_sim
    df = _run(base_url, tmp_path, "model=gpt-oss-20b", "workload.items=4",
              "workload.input_tokens=100000", "workload.output_tokens=8",
              "runner.concurrency=4", "runner.stream=false", "sim.latency_scale=0.02")  # fmt: skip
    assert (df.status == "ok").all() and (df.prompt_tokens == 100_000).all()
    assert (df.completion_tokens == 8).all()
