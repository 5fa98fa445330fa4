"""Reconcile against the simulator's billing read-back: every request matches; a skew is flagged."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli_in_process, run_cli, sim_settings

SECRET = "aks_test_reconcileSECRET12345"


def _run_and_reconcile(
    sim_defaults: Any, sim_catalog: Any, tmp_path: Path, skew: float, args: tuple[str, ...] = ()
):
    from lavabench.sim.process import running_simulator

    settings = sim_settings(sim_defaults, billing={"pending_s": 0.3, "skew": skew})
    with running_simulator(settings, sim_catalog) as sim:
        env = {"LAVA_SECRET_KEY": SECRET}
        run = run_cli(
            ["run", "model=[gpt-oss-20b,glm-5]", "dataset.limit=8", "endpoint=lava",
             f"endpoint.base_url={sim.base_url}", f"results_dir={tmp_path}", "run_id=rc",
             *args],
            env=env,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        rec = cli_in_process(["reconcile", str(tmp_path / "rc"), "--wait", "10"], env=env)
    report = json.loads((tmp_path / "rc" / "reconcile.json").read_text())
    assert SECRET not in rec.stdout + rec.stderr
    assert SECRET not in (tmp_path / "rc" / "reconcile.json").read_text()
    return rec, report


def test_reconcile_matches_every_request(sim_defaults, sim_catalog, tmp_path) -> None:
    rec, report = _run_and_reconcile(sim_defaults, sim_catalog, tmp_path, 1.0)
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert report["ok"] and not report["mismatches"] and not report["billed_not_recorded"]
    for model in ("gpt-oss-20b", "glm-5"):
        m = report["models"][model]
        assert m["matched"] == m["requests"] == 8 and m["pending"] == 0
        assert m["output_tokens_billed"] == m["output_tokens_recorded"] > 0


def test_warmup_and_judge_requests_are_matched_on_their_own_lines(
    sim_defaults, sim_catalog, tmp_path
) -> None:
    # Before: 2 warm-ups and 4 judge requests were "billed but not recorded": MISMATCH.
    args = ("model=[gpt-oss-20b]", "dataset=demo-judge", "dataset.limit=4",
            "runner.warmup_requests=2")  # fmt: skip
    rec, report = _run_and_reconcile(sim_defaults, sim_catalog, tmp_path, 1.0, args)
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert report["ok"] and not report["billed_not_recorded"]
    assert report["models"]["gpt-oss-20b"]["matched"] == 4
    assert report["warmup"]["gpt-oss-20b"]["matched"] == 2
    judge = report["judge"]["glm-5p1"]
    assert judge["matched"] == judge["requests"] == 6  # warm-up answers are judged too
    billed, recorded = Decimal(judge["cost_billed_usd"]), Decimal(judge["cost_recorded_usd"])
    assert billed == recorded > 0
    assert "warm-up gpt-oss-20b" in rec.stdout and "judge glm-5p1" in rec.stdout


def test_reconcile_flags_injected_billing_skew(sim_defaults, sim_catalog, tmp_path) -> None:
    rec, report = _run_and_reconcile(sim_defaults, sim_catalog, tmp_path, 1.5)
    assert rec.returncode == 1 and "MISMATCH" in rec.stdout
    assert len(report["mismatches"]) == 16
    assert all(m["what"] == ["cost"] for m in report["mismatches"])


def test_reconcile_needs_the_secret_key(tmp_path) -> None:
    from lavabench.commands.reconcile import reconcile_run
    from lavabench.errors import ConfigError

    with pytest.raises(ConfigError, match="LAVA_SECRET_KEY"):
        reconcile_run(tmp_path, secret_key="")


def test_unmatched_and_pending_records_are_not_ok() -> None:
    from lavabench.commands.reconcile import reconcile

    rows: list[dict[str, Any]] = [
        {"model": "m", "job_id": "a", "lava_request_id": "req_1", "response_id": "c1",
         "prompt_tokens": 10, "completion_tokens": 5, "cost_pico_usd": 1000},
        {"model": "m", "job_id": "b", "lava_request_id": "req_2", "response_id": "c2",
         "prompt_tokens": 10, "completion_tokens": 5, "cost_pico_usd": 1000},
    ]  # fmt: skip
    billed = [
        {"request_id": "req_x", "response_id": "c1", "status": "pending",
         "model_usage": {"input_tokens": 10, "output_tokens": 5, "total_cost": "0.0000000010"}},
    ]  # fmt: skip
    report = reconcile(rows, billed, 0.01)
    assert not report["ok"]
    m = report["models"]["m"]
    assert (m["matched"], m["unmatched"], m["pending"]) == (1, 1, 1)  # c1 matched by response_id
