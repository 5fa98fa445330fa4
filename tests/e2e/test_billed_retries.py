"""Every billed attempt counts: a stream cut after tokens flowed may be billed, so its cost
goes into the row (`retry_cost_pico_usd`, apart from the final attempt's) and into the
budget; the simulator bills it the same way, so the billing read-back can check it.

Before: the cut attempts were in no cost column and not in the budget's spend."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from lavabench.records.reader import read_records
from tests.conftest import run_cli, sim_settings

SECRET = "aks_live_" + "BILLEDretries5678"  # no key-shaped literal in the repo


@pytest.fixture
def cutting_sim(sim_defaults, sim_catalog):
    """Every request's first attempt is cut mid-stream; the retry succeeds."""
    from lavabench.sim.process import running_simulator

    faults = {"probabilities": {"disconnect_mid_stream": 1.0}, "fail_first": 1}
    settings = sim_settings(sim_defaults, zero_delays=True, faults=faults)
    with running_simulator(settings, sim_catalog) as sim:
        yield sim.base_url


def test_a_cut_attempt_is_priced_billed_and_budgeted(cutting_sim, tmp_path) -> None:
    proc = run_cli(
        ["run", "model=[llama-v3p3-70b-instruct]", "dataset.limit=3", "endpoint=lava",
         f"endpoint.base_url={cutting_sim}", f"results_dir={tmp_path}", "run_id=cut",
         "runner.budget_usd=1", "runner.retry.backoff_base_s=0.01"],
        env={"LAVA_SECRET_KEY": SECRET},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = read_records(tmp_path / "cut").to_pandas()
    assert (rows.status == "ok").all() and (rows.attempts == 2).all()
    assert (rows.retry_cost_pico_usd > 0).all()
    with httpx.Client(base_url=cutting_sim, timeout=10) as client:
        for row in rows.itertuples():
            (retry_id,) = row.retry_lava_request_ids
            billed = client.get(f"/v1/requests/{retry_id}").json()
            recorded = Decimal(int(row.retry_cost_pico_usd)) / 10**12
            assert abs(Decimal(billed["model_usage"]["total_cost"]) - recorded) < Decimal("1e-9")
    spent = Decimal(json.loads((tmp_path / "cut" / "run.json").read_text())["budget"]["spent_usd"])
    total = int(rows.cost_pico_usd.sum() + rows.retry_cost_pico_usd.sum())
    assert spent == Decimal(total) / 10**12  # before: the cut attempts were not in it


def test_reconcile_matches_the_billed_failed_attempts(cutting_sim, tmp_path) -> None:
    from lavabench.commands.reconcile import format_reconcile, reconcile_run

    proc = run_cli(
        ["run", "model=[llama-v3p3-70b-instruct]", "dataset.limit=2", "endpoint=lava",
         f"endpoint.base_url={cutting_sim}", f"results_dir={tmp_path}", "run_id=rc",
         "runner.retry.backoff_base_s=0.01"],
        env={"LAVA_SECRET_KEY": SECRET},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = reconcile_run(tmp_path / "rc", secret_key=SECRET, wait_s=5, poll_s=0.1)
    text = format_reconcile(report)
    assert report["ok"], text  # before: the 2 cut attempts were "billed but not recorded"
    line = report["failed"]["llama-v3p3-70b-instruct"]
    assert (line["matched"], line["requests"]) == (2, 2)
    assert Decimal(line["cost_billed_usd"]) > 0
