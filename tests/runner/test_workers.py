"""`runner.workers=N`: one run over N client processes with one schedule and one timeline.

End-to-end tests run `lavabench run runner.workers=2` against the simulator on 127.0.0.1
and check the merged records: every job once, both workers present, the open-loop rate
held across processes (the workers' stamps share one origin), and a SIGTERM that stops
both workers cleanly so that `resume=` finishes the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import numpy as np
import pytest

from lavabench.catalog import Model, Price
from lavabench.datasets.prompt import Message, Prompt
from lavabench.errors import ConfigError
from lavabench.records.reader import read_records
from lavabench.records.store import read_run_json
from lavabench.runner.plan import plan_jobs
from lavabench.runner.workers import shares
from tests.conftest import ROOT, run_cli, sim_settings, terminate_once_writing


@pytest.fixture
def zero_delay_sim(sim_defaults, sim_catalog):
    from lavabench.sim.process import running_simulator

    with running_simulator(sim_settings(sim_defaults, zero_delays=True), sim_catalog) as sim:
        yield sim.base_url


@pytest.fixture
def fast_sim(sim_defaults, sim_catalog):
    from lavabench.sim.process import running_simulator

    with running_simulator(sim_settings(sim_defaults, latency_scale=0.2), sim_catalog) as sim:
        yield sim.base_url


def test_open_loop_rate_holds_across_two_workers(zero_delay_sim, tmp_path) -> None:
    rate = 50.0
    proc = run_cli(["run", "runner.workers=2", "load=constant", f"runner.rate={rate}",
                    "model=[gpt-oss-20b,glm-5]", "dataset.limit=50", "runner.concurrency=16",
                    f"endpoint.base_url={zero_delay_sim}", f"results_dir={tmp_path}",
                    "run_id=w"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_records(tmp_path / "w").to_pandas()
    assert len(rows) == 100 and rows["job_id"].is_unique
    assert sorted(rows["client_worker"].unique()) == [0, 1]
    assert rows.groupby("client_worker").size().tolist() == [50, 50]
    # one origin for both processes: their stamps merge into one schedule
    intended = np.sort(rows["intended_send_ns"].to_numpy()) / 1e9
    assert np.allclose(np.diff(intended), 1 / rate, atol=1e-6)  # the global schedule, interleaved
    # the rate from the clients' own send stamps. Not from the first and last send alone: one
    # of them held up 40 ms by a busy machine moved that estimate by 2% (the flake). Each of
    # the n/2 pairs (i, i + n/2) spans half the run (~1 s at 100 requests); the median of
    # their rates is off by 2% only if most pairs' lateness differs by > 20 ms, i.e. the
    # dispatch drifted for most of the run, not one stall
    sends = np.sort(rows["first_send_ns"].to_numpy()) / 1e9
    half = len(sends) // 2
    achieved = half / np.median(sends[half:] - sends[: len(sends) - half])
    assert achieved == pytest.approx(rate, rel=0.02)
    # kept to the schedule: a stall of d seconds delays ~d x 50 consecutive sends, so the
    # bound is on the 95th percentile (5 of 100 sends), not on the single worst send
    assert np.quantile(rows["dispatch_late_s"], 0.95) < 0.05, rows["dispatch_late_s"].max()
    info = read_run_json(tmp_path / "w")
    assert [w["concurrency"] for w in info["workers"]] == [8, 8]
    assert len({w["pid"] for w in info["workers"]}) == 2
    assert info["rows_written"] == 100 and info["status"] == "completed"


def test_closed_loop_splits_the_concurrency(fast_sim, tmp_path) -> None:
    proc = run_cli(["run", "runner.workers=2", "runner.concurrency=5", "model=gpt-oss-20b",
                    "dataset.limit=40", f"endpoint.base_url={fast_sim}",
                    f"results_dir={tmp_path}", "run_id=c"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = read_run_json(tmp_path / "c")
    assert [w["concurrency"] for w in info["workers"]] == [3, 2]
    for worker in info["workers"]:  # each worker's own loop never held more than its share
        assert worker["health"]["in_flight"]["max"] <= worker["concurrency"]
    assert info["verdict"] in ("valid", "suspect", "invalid")
    assert read_records(tmp_path / "c").num_rows == 40


def test_sigterm_stops_every_worker_and_resume_finishes(fast_sim, tmp_path) -> None:
    args = ["run", "runner.workers=2", "runner.concurrency=4", "model=[gpt-oss-20b,glm-5]",
            "dataset.limit=60", f"endpoint.base_url={fast_sim}", f"results_dir={tmp_path}",
            "run_id=t", "records.flush_rows=4", "records.flush_interval_s=0.2"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "lavabench", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    _out, err = terminate_once_writing(proc, tmp_path / "t" / "records.parts", "part-*-w1.parquet")
    assert proc.returncode == 130, err[-3000:]
    info = json.loads((tmp_path / "t" / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert all(w["interrupted"] for w in info["workers"])
    kept = read_records(tmp_path / "t").to_pandas()
    assert 0 < (kept["status"] == "ok").sum() < 120
    resumed = run_cli([*args[:-2], "resume=t"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = read_records(tmp_path / "t").to_pandas()
    assert len(rows) == 120 and rows["job_id"].is_unique and (rows["status"] == "ok").all()


def test_shares_split_jobs_concurrency_and_limits() -> None:
    model = Model(name="m", id="m", price=Price(Decimal(1), Decimal(1)), context_length=8)
    prompts = [Prompt("d", f"i{i}", (Message("user", f"q{i}"),), None, f"h{i}") for i in range(7)]
    jobs = plan_jobs([model], prompts)
    arrivals = [i / 10 for i in range(7)]
    work = shares(jobs, arrivals, count=3, concurrency=8, rate=9.0, budget_usd=3.0)
    assert [w.concurrency for w in work] == [3, 3, 2]
    assert [len(w.job_ids) for w in work] == [3, 2, 2]
    assert sorted(j for w in work for j in w.job_ids) == sorted(j.job_id for j in jobs)
    assert work[1].arrivals_s == (0.1, 0.4)  # the global schedule's own slots
    assert {w.rate for w in work} == {3.0} and {w.budget_usd for w in work} == {1.0}
    with pytest.raises(ConfigError, match="at least one request in flight"):
        shares(jobs, None, count=9, concurrency=8, rate=None, budget_usd=None)


ONE_PROCESS_ONLY = [
    (["load=sweep"], "load=sweep runs in one process"),
    (["cache.enabled=true"], "the sqlite cache has one writer"),
    (["runner.concurrency=2", "runner.workers=3"], "at least one request in flight"),
]


@pytest.mark.parametrize(("overrides", "message"), ONE_PROCESS_ONLY)
def test_workers_refuse_what_one_process_must_do(overrides, message) -> None:
    """The config check `lavabench run` makes (load_config on the composed config)."""
    from lavabench.config import compose, load_config

    with pytest.raises(ConfigError) as error:
        load_config(compose(["runner.workers=2", *overrides]))
    assert message in str(error.value)


def test_a_refused_worker_setting_exits_2_before_anything_is_written(tmp_path) -> None:
    """One case through the command line (the others differ only in the message)."""
    overrides, message = ONE_PROCESS_ONLY[1]
    proc = run_cli(["run", "runner.workers=2", *overrides, f"results_dir={tmp_path}"])
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
    assert not list(tmp_path.glob("*/run.json"))  # refused before anything was written
