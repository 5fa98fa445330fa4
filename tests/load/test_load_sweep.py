"""`load=` shapes and `load=sweep`: stepping the load up until throughput stops rising.

The end-to-end tests run `lavabench run load=sweep` against a simulator with a known
capacity (`sim.capacity`: N streams per model, the rest queue), so the knee is known in
advance: throughput tops out at N / service time and TTFT grows past it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lavabench.errors import ConfigError
from lavabench.load.steps import LoadSweepConf, StepStats, saturation_point, step_sizes, stop_reason
from lavabench.records.reader import read_records
from lavabench.records.store import read_run_json
from tests.conftest import run_cli, sim_settings

CAPACITY = 4


@pytest.fixture
def capped_sim(sim_defaults, sim_catalog):
    """gpt-oss-20b at a quarter of its latency (~85 ms a stream), CAPACITY streams at once."""
    from lavabench.sim.process import running_simulator

    settings = sim_settings(sim_defaults, latency_scale=0.25, capacity=CAPACITY)
    with running_simulator(settings, sim_catalog) as sim:
        yield sim.base_url


def _run(base_url: str, results: Path, *extra: str):
    return run_cli(["run", "model=gpt-oss-20b", f"endpoint.base_url={base_url}",
                    f"results_dir={results}", "run_id=ramp", *extra])  # fmt: skip


def test_concurrency_sweep_finds_the_simulators_capacity(capped_sim, tmp_path) -> None:
    proc = _run(capped_sim, tmp_path, "load=sweep", "runner.load_sweep.levels=[1,2,4,8,16]",
                "runner.load_sweep.requests_per_step=40")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "ramp"
    sweep = read_run_json(run_dir)["load_sweep"]
    steps = {s["level"]: s for s in sweep["steps"]}
    # below capacity throughput doubles with the load; past it, it stays flat and TTFT grows
    assert steps[2]["throughput_rps"] > 1.6 * steps[1]["throughput_rps"]
    assert steps[4]["throughput_rps"] > 1.6 * steps[2]["throughput_rps"]
    assert steps[8]["throughput_rps"] < 1.05 * steps[4]["throughput_rps"]
    assert steps[8]["ttft_p50_s"] > steps[4]["ttft_p50_s"] + 0.03
    assert sweep["saturation"]["level"] == CAPACITY
    assert "throughput stopped rising at concurrency 8" in sweep["stop_reason"]
    assert 16 not in steps  # the sweep stopped after the step that did not gain
    assert f"saturation: concurrency {CAPACITY}" in proc.stdout

    rows = read_records(run_dir).to_pandas()
    assert len(rows) == sum(s["requests"] for s in sweep["steps"]) == 40 * 3 + 40
    assert sorted(rows["load_level"].unique()) == [1, 2, 4, 8]
    assert rows.groupby("load_step")["load_level"].nunique().eq(1).all()
    assert rows["job_id"].is_unique


def test_latency_limit_stops_the_sweep_and_the_knee_stays_within_it(capped_sim, tmp_path) -> None:
    proc = _run(capped_sim, tmp_path, "load=sweep", "runner.load_sweep.levels=[2,4,8,16]",
                "runner.load_sweep.requests_per_step=40", "runner.load_sweep.min_gain=0",
                "runner.load_sweep.max_p90_ttft_s=0.08")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = read_run_json(tmp_path / "ramp")["load_sweep"]
    assert "limit crossed at concurrency 8: p90 TTFT" in sweep["stop_reason"]
    assert sweep["saturation"]["level"] == 4


def test_rate_sweep_steps_open_loop_arrivals(capped_sim, tmp_path) -> None:
    proc = _run(capped_sim, tmp_path, "load=sweep", "runner.load_sweep.over=rate",
                "runner.load_sweep.levels=[5,20]", "runner.load_sweep.requests_per_step=10",
                "runner.load_sweep.min_step_s=1.5", "runner.concurrency=32")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_records(tmp_path / "ramp").to_pandas()
    for level, n in ((5, 10), (20, 30)):  # max(requests_per_step, rate x min_step_s)
        step = rows[rows["load_level"] == level].sort_values("first_send_ns")
        assert len(step) == n
        sends = step["first_send_ns"].to_numpy() / 1e9
        achieved = (n - 1) / (sends[-1] - sends[0])
        assert achieved == pytest.approx(level, rel=0.05)


BAD_LOAD_SETTINGS = [
    (["load=sweep", "runner.arrival=poisson", "runner.rate=5"], "closed loop"),
    (["load=sweep", "runner.load_sweep.levels=[4,2]"], "must rise"),
    (["load=sweep", "runner.load_sweep.over=speed"], "runner.load_sweep.over"),
    (["load=poisson", "runner.rate=null"], "needs runner.rate"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_LOAD_SETTINGS)
def test_bad_load_settings_are_clear_errors(overrides, message) -> None:
    """The config check `lavabench run` makes (load_config on the composed config)."""
    from lavabench.config import compose, load_config

    with pytest.raises(ConfigError) as error:
        load_config(compose(overrides))
    assert message in str(error.value)


def test_a_bad_load_setting_exits_2_and_writes_no_rows(tmp_path) -> None:
    """One case through the command line: that error is exit 2 and a sentence, before any
    request (the others differ only in the message checked above)."""
    overrides, message = BAD_LOAD_SETTINGS[0]
    proc = run_cli(["run", *overrides, f"results_dir={tmp_path}"])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not list(tmp_path.glob("*/records.parquet"))


def test_load_shapes_set_the_arrival(composed) -> None:
    from hydra import compose, initialize_config_dir

    from lavabench.config import CONF_DIR, load_config

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        shapes = {
            name: load_config(compose(config_name="config", overrides=[f"load={name}"])).runner
            for name in ("closed", "constant", "poisson", "sweep")
        }
    assert {n: r.arrival for n, r in shapes.items()} == {
        "closed": "closed", "constant": "constant", "poisson": "poisson", "sweep": "closed"
    }  # fmt: skip
    assert shapes["poisson"].rate == 10 and shapes["closed"].rate is None
    assert shapes["sweep"].load_sweep is not None and shapes["closed"].load_sweep is None


# --- the pure decisions ------------------------------------------------------------------


def _step(i: int, level: float, rps: float, ttft_p90: float = 0.1, errors: int = 0) -> StepStats:
    return StepStats(step=i, level=level, requests=100, ok=100 - errors, errors=errors,
                     wall_s=1.0, throughput_rps=rps, output_tokens_per_s=0.0, ttft_p50_s=0.05,
                     ttft_p90_s=ttft_p90, e2e_p50_s=0.2, e2e_p90_s=0.3,
                     dispatch_late_mean_ms=0.0, client_cpu_share=0.1, client_bound=False)  # fmt: skip


def test_step_sizes_cover_every_slot_and_every_rate_step() -> None:
    closed = LoadSweepConf(levels=[1, 64, 256], requests_per_step=200, min_rounds=4)
    assert step_sizes(closed) == [200, 256, 1024]
    opened = LoadSweepConf(over="rate", levels=[10, 100], requests_per_step=50, min_step_s=5)
    assert step_sizes(opened) == [50, 500]


def test_stop_and_knee_from_step_numbers() -> None:
    conf = LoadSweepConf(levels=[1, 2, 4, 8], min_gain=0.05)
    rising = [_step(0, 1, 10), _step(1, 2, 19)]
    assert stop_reason(conf, rising) is None
    flat = [*rising, _step(2, 4, 19.5)]
    assert "stopped rising at concurrency 4" in (stop_reason(conf, flat) or "")
    knee = saturation_point(conf, flat)
    assert knee is not None and knee.level == 2  # 19 is within 5% of the best, 19.5


def test_limits_stop_the_sweep_and_exclude_the_step() -> None:
    conf = LoadSweepConf(levels=[1, 2, 4], max_p90_ttft_s=0.5, max_error_rate=0.05)
    slow = [_step(0, 1, 10), _step(1, 2, 20, ttft_p90=0.9)]
    assert "p90 TTFT 0.900 s > 0.5 s" in (stop_reason(conf, slow) or "")
    knee = saturation_point(conf, slow)
    assert knee is not None and knee.level == 1
    failing = [_step(0, 1, 10, errors=6)]
    assert "error rate 6.0%" in (stop_reason(conf, failing) or "")
    assert saturation_point(conf, failing) is None


def test_failed_requests_count_as_infinite_latency_in_a_step() -> None:
    from lavabench.load.steps import step_stats
    from lavabench.records.schema import Record

    rows = []
    for i in range(10):
        ok = i < 8
        rows.append(Record(status="ok" if ok else "error", first_send_ns=i * 10**8,
                           end_ns=i * 10**8 + 2 * 10**8, ttft_s=0.1 if ok else None,
                           e2e_s=0.2 if ok else None))  # fmt: skip
    stats = step_stats(0, 4, rows, cpu_s=0.05)
    assert stats.ok == 8 and stats.errors == 2
    assert stats.wall_s == pytest.approx(1.1)
    assert stats.throughput_rps == pytest.approx(8 / 1.1)
    assert stats.ttft_p50_s == pytest.approx(0.1) and math.isinf(stats.ttft_p90_s)


def test_bad_sweep_conf_names_the_key() -> None:
    with pytest.raises(ConfigError, match="levels"):
        LoadSweepConf(levels=[])
    with pytest.raises(ConfigError, match="whole numbers"):
        LoadSweepConf(levels=[1.5, 2])


def test_run_json_step_table_is_plain_json(capped_sim, tmp_path) -> None:
    proc = _run(capped_sim, tmp_path, "load=sweep", "runner.load_sweep.levels=[1,2]",
                "runner.load_sweep.requests_per_step=10")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads((tmp_path / "ramp" / "run.json").read_text())
    assert [s["level"] for s in info["load_sweep"]["steps"]] == [1, 2]
    assert info["load_sweep"]["stop_reason"] == "every level ran"


def test_goodput_counts_ok_requests_within_every_target() -> None:
    from lavabench.load.steps import SweepResult, format_steps, step_stats
    from lavabench.records.schema import Record

    rows = [
        Record(status="ok", first_send_ns=0, end_ns=10**9, ttft_s=0.1, e2e_s=0.5),
        Record(status="ok", first_send_ns=0, end_ns=10**9, ttft_s=0.9, e2e_s=0.95),  # slow TTFT
        Record(status="ok", first_send_ns=0, end_ns=10**9, ttft_s=0.2, e2e_s=2.0),  # slow E2E
        Record(status="ok", first_send_ns=0, end_ns=10**9, ttft_s=None, e2e_s=0.3),  # unknown
        Record(status="error", first_send_ns=0, end_ns=10**9),  # a failure is never good
    ]
    both = step_stats(0, 4, rows, 0.0, {"ttft_s": 0.5, "e2e_s": 1.0})
    assert both.throughput_rps == pytest.approx(4.0) and both.goodput_rps == pytest.approx(1.0)
    assert step_stats(0, 4, rows, 0.0, {"e2e_s": 1.0}).goodput_rps == pytest.approx(3.0)
    assert step_stats(0, 4, rows, 0.0).goodput_rps is None
    conf = LoadSweepConf(levels=[4], goodput_ttft_s=0.5, goodput_e2e_s=1.0)
    table = format_steps(conf, SweepResult([both], "every level ran", both))
    assert "good/s = ok requests with TTFT <= 0.5 s and E2E <= 1 s" in table
    assert "good/s" in table.splitlines()[1] and "     1.0" in table.splitlines()[2]
    plain = format_steps(LoadSweepConf(levels=[4]), SweepResult([both], "x", both))
    assert "good/s" not in plain
    with pytest.raises(ConfigError, match="goodput"):
        LoadSweepConf(goodput_ttft_s=0)
