"""`runner.adaptive`: rounds through the real HTTP stack to the simulator; a run stopped
mid-way and resumed reaches the same decisions as one that ran through (state from rows)."""

from __future__ import annotations

import json
from pathlib import Path

from lavabench.records.reader import read_records
from tests.conftest import run_cli

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


def test_stopped_and_resumed_run_decides_like_an_uninterrupted_one(running_sim, tmp_path):
    base_url, _ = running_sim
    through = run_cli(_args(base_url, tmp_path, "through"))
    assert through.returncode == 0, through.stderr
    assert "adaptive round" in through.stdout and "done, pick deepseek-v4-pro" in through.stdout
    stopped = run_cli(_args(base_url, tmp_path, "stopped", "runner.adaptive.max_rounds=1"))
    assert stopped.returncode == 0, stopped.stderr
    partial = json.loads((tmp_path / "stopped" / "run.json").read_text())["adaptive"]
    assert not partial["done"] and partial["rounds"] == 1
    resumed = run_cli(_args(base_url, tmp_path, "stopped", "resume=stopped"))
    assert resumed.returncode == 0, resumed.stderr
    assert _decisions(tmp_path / "stopped") == _decisions(tmp_path / "through")
    full = _decisions(tmp_path / "through")
    assert full[0] == "deepseek-v4-pro"
    # fewer requests than every model on every item, and one row per job after the resume
    rows = read_records(tmp_path / "stopped").to_pandas()
    assert len(rows) == len(read_records(tmp_path / "through")) < 2 * 60
    assert rows["job_id"].is_unique
