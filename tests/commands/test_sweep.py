"""Sweeps (`lavabench run -m`): hive-partitioned job directories, the manifest, the shared
account-wide limiter, and one simulator shared by every job.

End-to-end tests launch real sweeps (`python -m lavabench run -m ...`) against one
simulator on 127.0.0.1; unit tests drive the limiter's bookkeeping and the manifest alone.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from lavabench.load.limiter import LimiterState, serve_limits
from lavabench.load.limits import SharedLimits
from lavabench.records.sweep_dirs import (
    build_manifest,
    expand_run_dirs,
    sweep_exit_code,
    write_job_status,
)
from tests.conftest import ROOT, cli_in_process, run_cli, sim_settings

MODELS = "gpt-oss-20b,glm-5,llama-v3p3-70b-instruct"


@pytest.fixture
def zero_delay_sim(sim_defaults, sim_catalog):
    """One simulator for the whole sweep, answering at once (the client sets the pace)."""
    from lavabench.sim.process import running_simulator

    with running_simulator(sim_settings(sim_defaults, zero_delays=True), sim_catalog) as sim:
        yield sim.base_url


@pytest.fixture
def second_dataset(tmp_path: Path) -> Path:
    """A config dir with a second small dataset spec, added to Hydra's search path."""
    conf = tmp_path / "extra-conf" / "dataset"
    conf.mkdir(parents=True)
    (conf / "arith-b.yaml").write_text(
        "name: arith-b\n"
        f"path: {ROOT / 'datasets' / 'demo-arith.jsonl'}\n"
        "id_field: id\ninput_field: question\nreference_field: answer\n"
        "user_template: 'Again: {input}'\ngrader: numeric\ngrader_options: {}\n"
        "limit: null\nshuffle: true\nseed: 7\n"
    )
    return conf.parent


def _sweep_dir(results: Path) -> Path:
    (sweep,) = [d for d in results.iterdir() if d.name.startswith("sweep-")]
    return sweep


def _job_sends_s(job_dirs: list[Path]) -> list[np.ndarray]:
    """Each job's first-attempt send times on the machine's monotonic clock (run.json's
    clock_origin_ns puts every job's stamps on one timeline)."""
    from lavabench.records.reader import read_records
    from lavabench.records.store import read_run_json

    out = []
    for job_dir in job_dirs:
        origin = read_run_json(job_dir)["clock_origin_ns"]
        rows = read_records(job_dir).to_pandas()
        out.append(np.sort((rows["first_send_ns"].to_numpy() + origin) / 1e9))
    return out


def _busy_rate(per_job: list[np.ndarray]) -> tuple[float, int]:
    """Sends per second while at least one job was sending, and the most jobs at once.

    Jobs start when their launcher gets to them (joblib workers start over ~2 s), and a
    limiter can only hold the rate while someone asks: so the rate is taken over the union
    of the jobs' [first send, last send] spans, not over gaps with no job running."""
    spans = sorted((s[0], s[-1]) for s in per_job)
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    sends = np.sort(np.concatenate(per_job))
    gaps = sum(int(np.count_nonzero((sends >= a) & (sends <= b))) - 1 for a, b in merged)
    busy_s = sum(b - a for a, b in merged)
    most = max(sum(1 for a, b in spans if a <= t <= b) for t, _ in spans)
    return gaps / busy_s, most


def test_joblib_sweep_3x2_keeps_the_global_rate_and_reads_as_one_run(
    zero_delay_sim, second_dataset, tmp_path
) -> None:
    rate = 50.0
    results = tmp_path / "results"
    # three joblib workers run the six jobs, two each: still three jobs sending at once
    # (asserted below), and half the interpreter start-ups of one worker per job
    proc = run_cli(
        ["run", "-m", f"model={MODELS}", "dataset=demo,arith-b", "dataset.limit=20",
         "runner.repeats=2",
         f"endpoint.base_url={zero_delay_sim}", f"results_dir={results}",
         f"limits.rate={rate}", "runner.concurrency=8",
         "hydra/launcher=joblib", "hydra.launcher.n_jobs=3",
         f"hydra.searchpath=[file://{second_dataset}]"],
        timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = _sweep_dir(results)

    # six hive partitions, one per model x dataset, each an ordinary run directory
    parts = sorted(p.relative_to(sweep).parts[:2] for p in sweep.glob("model=*/dataset=*/job=*"))
    assert parts == sorted(
        (f"model={m}", f"dataset={d}") for m in MODELS.split(",") for d in ("demo-arith", "arith-b")
    )
    manifest = json.loads((sweep / "manifest.json").read_text())
    assert manifest["finished"] and manifest["status_counts"] == {"completed": 6}
    assert manifest["launched_by"]["pid"] not in {job["pid"] for job in manifest["jobs"]}
    assert all(job["rows"] == 40 for job in manifest["jobs"])

    # the account-wide rate held across parallel processes, measured from the clients' own
    # send stamps (not from the limiter's bookkeeping)
    job_dirs = expand_run_dirs([sweep])
    per_job = _job_sends_s(job_dirs)
    sends = np.sort(np.concatenate(per_job))
    assert len(sends) == 240
    achieved, most_at_once = _busy_rate(per_job)
    assert most_at_once >= 3, "the jobs never ran in parallel: the test proves nothing"
    assert abs(achieved - rate) / rate <= 0.05, achieved
    # never above it by more than 5% over any one-second window (+1 for the window's edge)
    window_counts = np.searchsorted(sends, sends + 1.0) - np.arange(len(sends))
    assert window_counts.max() <= rate * 1.05 + 1, window_counts.max()
    # every row says which limits it was sent under
    from lavabench.records.reader import read_records

    rows = read_records(job_dirs[0]).to_pandas()
    assert set(rows["limit_shared_rate_rps"]) == {rate}
    assert manifest["limits"]["rate_per_s"] == rate
    assert manifest["limiter_stats"]["permits"] == 240

    # report reads the sweep directory as one run: all six model x dataset cells
    report = cli_in_process(["report", str(sweep)])
    assert report.returncode == 0, report.stderr[-3000:]
    summary = json.loads((sweep / "report" / "summary.json").read_text())
    cells = {(row["model"], row["dataset"]) for row in summary["cells"]}
    assert cells == {(m, d) for m in MODELS.split(",") for d in ("demo-arith", "arith-b")}
    assert all(row["requests"] == 40 for row in summary["cells"])
    assert "### Per model x dataset" in (sweep / "report" / "summary.md").read_text()


def test_a_failed_job_is_in_the_manifest_and_the_others_still_run(zero_delay_sim, tmp_path) -> None:
    results = tmp_path / "results"
    proc = run_cli(
        ["run", "-m", "model=gpt-oss-20b,gpt-oss-21b,glm-5", "dataset.limit=5",
         f"endpoint.base_url={zero_delay_sim}", f"results_dir={results}"],
        timeout=180,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    manifest = json.loads((_sweep_dir(results) / "manifest.json").read_text())
    by_num = {job["num"]: job for job in manifest["jobs"]}
    assert [by_num[n]["status"] for n in (0, 1, 2)] == ["completed", "failed", "completed"]
    assert "gpt-oss-21b" in by_num[1]["error"] and "did you mean" in by_num[1]["error"]
    assert by_num[0]["rows"] == by_num[2]["rows"] == 5
    assert "failed" in proc.stdout and "job   1" in proc.stdout


def test_compare_accepts_a_sweep_directory(zero_delay_sim, tmp_path) -> None:
    results = tmp_path / "results"
    common = [f"endpoint.base_url={zero_delay_sim}", f"results_dir={results}", "dataset.limit=10"]
    base = run_cli(["run", "model=[gpt-oss-20b,glm-5]", "run_id=base", *common])
    assert base.returncode == 0, base.stderr[-2000:]
    sweep = run_cli(["run", "-m", "model=gpt-oss-20b,glm-5", *common])
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    out = tmp_path / "compare.json"
    proc = cli_in_process(["compare", "--baseline", str(results / "base"),
                           "--current", str(_sweep_dir(results)), "--json", str(out),
                           "--allow-invalid"])  # fmt: skip  # zero delays saturate the client
    assert proc.returncode in (0, 1, 4), proc.stderr[-2000:]  # 4: too few requests to see
    rows = json.loads(out.read_text())["rows"]
    assert {row["model"] for row in rows} == {"gpt-oss-20b", "glm-5"}


@pytest.mark.slow
@pytest.mark.ray  # ~30 s with Ray installed: `make test` (CI) runs it, see pyproject markers
@pytest.mark.timeout(300)
def test_ray_launcher_sweep_on_a_local_ray_instance(zero_delay_sim, tmp_path) -> None:
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install lavabench[ray]")
    results = tmp_path / "results"
    proc = run_cli(
        ["run", "-m", "model=gpt-oss-20b,glm-5", "dataset.limit=10",
         f"endpoint.base_url={zero_delay_sim}", f"results_dir={results}", "limits.rate=30",
         "hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
         "+hydra.launcher.ray.init.include_dashboard=false"],
        env={"RAY_USAGE_STATS_ENABLED": "0"},
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((_sweep_dir(results) / "manifest.json").read_text())
    assert manifest["status_counts"] == {"completed": 2}
    # the jobs ran in Ray's worker processes, not in the process that launched the sweep
    assert manifest["launched_by"]["pid"] not in {job["pid"] for job in manifest["jobs"]}


# --- the limiter's bookkeeping ---------------------------------------------------------


def test_rate_slots_are_one_interval_apart_whoever_asks() -> None:
    state = LimiterState(rate_per_s=10.0, budget_pico=None)
    slots = [state.slot(now_s=0.0) for _ in range(5)]
    assert slots == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert state.slot(now_s=2.0) == 2.0  # idle: no burst is saved up


def test_budget_waits_while_others_may_settle_and_refuses_when_nothing_is_in_flight() -> None:
    state = LimiterState(rate_per_s=None, budget_pico=100)
    assert state.try_reserve("a", 60) is True
    assert state.try_reserve("b", 60) is None  # might fit once "a" settles
    state.settle("a", 30)
    assert state.try_reserve("b", 60) is True
    assert state.try_reserve("c", 20) is None
    state.settle("b", 60)  # spent 90 of 100: 20 can never fit now
    assert state.try_reserve("c", 20) is False
    state.abandon("")  # nothing held: abandoning changes nothing
    assert state.stats.spent_pico == 90


def test_a_client_that_disconnects_leaves_its_holds_counted_as_spent() -> None:
    state = LimiterState(rate_per_s=None, budget_pico=100)
    state.try_reserve("c1/x", 40)
    state.try_reserve("c2/y", 10)
    state.abandon("c1/")
    assert (state.stats.spent_pico, state.stats.reserved_pico) == (40, 10)


def test_two_clients_share_one_schedule_over_tcp() -> None:
    """Two connections asking at once get interleaved slots 1/rate apart, not 2x the rate."""

    async def main(address: str) -> list[float]:
        a, b = await SharedLimits.connect(address), await SharedLimits.connect(address)
        loop = asyncio.get_running_loop()
        times: list[float] = []

        async def ask(limits: SharedLimits) -> None:
            for _ in range(10):
                await limits.permit()
                times.append(loop.time())

        await asyncio.gather(ask(a), ask(b))
        await a.aclose()
        await b.aclose()
        return sorted(times)

    with serve_limits(50.0, None) as server:
        times = asyncio.run(main(server.address))
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert achieved == pytest.approx(50.0, rel=0.1)
    assert server.final_stats is not None and server.final_stats["permits"] == 20


# --- the manifest ------------------------------------------------------------------------


def test_manifest_marks_jobs_lost_or_never_started_once_the_sweep_is_over(tmp_path) -> None:
    planned = [{"num": n, "overrides": [f"model=m{n}"]} for n in range(3)]
    write_job_status(_job(tmp_path, 0), {"num": 0, "status": "completed", "exit_code": 0})
    write_job_status(_job(tmp_path, 1), {"num": 1, "status": "running"})
    going = build_manifest(tmp_path, planned)
    assert [j["status"] for j in going["jobs"]] == ["completed", "running", "pending"]
    assert sweep_exit_code(going) == 0
    over = build_manifest(tmp_path, planned, finished=True)
    assert [j["status"] for j in over["jobs"]] == ["completed", "lost", "not started"]
    assert sweep_exit_code(over) == 1


def _job(sweep: Path, num: int) -> Path:
    path = sweep / "model=m" / "dataset=d" / f"job={num}"
    path.mkdir(parents=True)
    return path
