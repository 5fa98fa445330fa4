"""`runner.adaptive`: rounds through the real HTTP stack to the simulator; a run killed
mid-round (SIGKILL: no flush, no finally), then stopped by its budget, and resumed reaches the
same decisions, and sends the same items, as one that ran through (state from rows)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lavabench.exit_codes import EXIT_STOPPED
from lavabench.records.reader import read_records
from tests.conftest import ROOT, run_cli, sim_settings

MODELS = "model=[mixtral-8x22b-instruct,deepseek-v4-pro]"


def _args(base_url: str, results: Path, run_id: str, *extra: str) -> list[str]:
    return ["run", MODELS, "dataset=demo", f"endpoint.base_url={base_url}",
            f"results_dir={results}", f"run_id={run_id}", "runner.adaptive.enabled=true",
            "runner.adaptive.min_quality=0.6", "runner.adaptive.batch=15",
            "runner.adaptive.seed=5", *extra]  # fmt: skip


def _decisions(run_dir: Path) -> list[tuple]:
    info = json.loads((run_dir / "run.json").read_text())["adaptive"]
    keys = ("model", "decision", "decided_at", "items_sent", "correct", "log_w_plus")
    return [info["pick"], *[tuple(m[k] for k in keys) for m in info["models"]]]


@pytest.fixture
def quick_sim(sim_defaults, sim_catalog):
    """The default simulator at a fifth of its latencies: the decisions depend only on the
    answers, and a round still lasts long enough to be killed in."""
    from lavabench.sim.process import running_simulator

    with running_simulator(sim_settings(sim_defaults, latency_scale=0.2), sim_catalog) as sim:
        yield sim.base_url


def test_stopped_and_resumed_run_decides_like_an_uninterrupted_one(quick_sim, tmp_path):
    base_url = quick_sim
    through = run_cli(_args(base_url, tmp_path, "through"))
    assert through.returncode == 0, through.stderr
    assert "adaptive round" in through.stdout and "done, pick deepseek-v4-pro" in through.stdout
    full = _decisions(tmp_path / "through")
    assert full[0] == "deepseek-v4-pro"
    _kill_9_in_round_two(_args(base_url, tmp_path, "stopped", "records.flush_rows=2",
                               "records.flush_interval_s=0.1"), tmp_path / "stopped")  # fmt: skip
    # the budget stops it again part-way (it is below the full plan's lower bound, which an
    # adaptive run never sends: a warning, not a refusal)
    rows = read_records(tmp_path / "through").to_pandas()
    before = len(read_records(tmp_path / "stopped"))
    # the guard reserves each request's max_tokens bound, so 90 % of the rest stops it early
    rest = float(rows["cost_pico_usd"].sum()) / 1e12 - _spent(tmp_path / "stopped")
    budget = f"runner.budget_usd={rest * 0.9:.8f}"
    cut = run_cli(_args(base_url, tmp_path, "stopped", "resume=stopped", budget))
    assert cut.returncode == EXIT_STOPPED, cut.stdout + cut.stderr
    cut_info = json.loads((tmp_path / "stopped" / "run.json").read_text())["adaptive"]
    assert not cut_info["done"]
    assert before < len(read_records(tmp_path / "stopped")) < len(rows)
    resumed = run_cli(_args(base_url, tmp_path, "stopped", "resume=stopped"))
    assert resumed.returncode == 0, resumed.stderr
    assert _decisions(tmp_path / "stopped") == full
    # fewer requests than every model on every item, and one row per job after the resumes
    after = read_records(tmp_path / "stopped").to_pandas()
    assert len(after) == len(rows) < 2 * 60
    assert after["job_id"].is_unique


def _spent(run_dir: Path) -> float:
    return float(read_records(run_dir).to_pandas()["cost_pico_usd"].sum()) / 1e12


def _kill_9_in_round_two(args: list[str], run_dir: Path) -> None:
    """SIGKILL the run once round 1 is recorded and round 2's rows start reaching disk."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAVA_", "FIREWORKS_"))}
    proc = subprocess.Popen([sys.executable, "-m", "lavabench", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 90
    try:
        while _round(run_dir) < 1 or len(_rows(run_dir)) <= 15:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "round 2 never started"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    assert not json.loads((run_dir / "run.json").read_text())["adaptive"]["done"]


def _round(run_dir: Path) -> int:
    try:
        return int(json.loads((run_dir / "run.json").read_text())["adaptive"]["rounds"])
    except (OSError, ValueError, KeyError):
        return -1


def _rows(run_dir: Path) -> list:
    try:
        return list(read_records(run_dir).column("job_id"))
    except Exception:
        return []
