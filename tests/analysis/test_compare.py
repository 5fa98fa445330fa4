"""Compare: A/A passes, injected regressions are flagged, gates follow statistics.md."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lavabench.analysis.compare import compare, holm
from lavabench.analysis.compare_config import load_compare_config
from lavabench.config import CONF_DIR
from tests.conftest import cli_in_process, run_cli

CFG = load_compare_config(CONF_DIR / "compare.yaml")
RUN = {"history": False, "hours_apart": 0.1}  # two runs minutes apart: no drift assumed


def synthetic(
    seed: int, n: int = 400, ttft_factor: float = 1.0, skill: float = 0.7, run_id: str = "r",
    errors: int = 0, burst: bool = False,
) -> pd.DataFrame:  # fmt: skip
    """Rows drawn like the simulator: lognormal TTFT (jitter 0.15), shared item difficulty."""
    rng = np.random.default_rng(seed)
    difficulty = np.random.default_rng(0).uniform(0, 1, n)  # same items every run
    frames = []
    for model in ("a", "b"):
        ttft = 0.3 * ttft_factor * np.exp(0.15 * rng.standard_normal(n))
        p = 1 / (1 + np.exp(-(skill - difficulty) / 0.08))
        status = np.array(["ok"] * n, dtype=object)
        # a burst: consecutive requests (one window); else spread evenly over the run
        at = np.arange(errors) if burst else np.linspace(0, n - 1, errors).astype(int)
        status[at] = "error"
        frames.append(pd.DataFrame({
            "run_id": run_id, "model": model, "dataset": "d",
            "item_id": [f"i{i}" for i in range(n)], "repeat": 0, "is_warmup": False,
            "status": status, "error_type": np.where(status == "ok", None, "unavailable"),
            "attempts": 1, "ttft_s": ttft, "e2e_s": ttft + 0.4 * np.exp(0.1 * rng.standard_normal(n)),
            "itl_p50_s": 0.01 * np.exp(0.1 * rng.standard_normal(n)),
            "output_tokens_per_s": 80 * np.exp(0.1 * rng.standard_normal(n)),
            "prompt_tokens": 50, "completion_tokens": 40, "cost_pico_usd": 1000, "grader": "x",
            "correct": rng.uniform(size=n) < p, "response_cached": False, "dataset_sha256": "s",
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_aa_pairs_pass() -> None:
    for seed in range(5):
        result = compare(synthetic(2 * seed), synthetic(2 * seed + 1), CFG, **RUN)
        assert result.exit_code != 1, [
            (r.model, r.metric, r.p_adjusted) for r in result.regressions
        ]
        assert not any(r.status == "changed" for r in result.rows)


def test_injected_latency_and_accuracy_regressions_are_flagged() -> None:
    result = compare(synthetic(1), synthetic(2, ttft_factor=1.3, skill=0.6), CFG, **RUN)
    assert result.exit_code == 1
    flagged = {(r.model, r.metric) for r in result.regressions}
    assert {("a", "ttft_p90"), ("b", "ttft_p90"), ("a", "accuracy"), ("b", "accuracy")} <= flagged
    acc = next(r for r in result.rows if r.metric == "accuracy")
    assert acc.test == "McNemar mid-p" and acc.change < -0.02


def test_improvement_is_shown_never_gated() -> None:
    result = compare(synthetic(1), synthetic(2, ttft_factor=0.7), CFG, **RUN)
    assert result.exit_code != 1
    assert next(r for r in result.rows if r.metric == "ttft_p90").status == "improved"


def test_significant_but_small_change_is_not_flagged() -> None:
    # +5% at n=20,000 is significant, but below the 10% practical threshold
    result = compare(synthetic(1, n=20_000), synthetic(2, n=20_000, ttft_factor=1.05), CFG, **RUN)
    row = next(r for r in result.rows if r.metric == "ttft_p50")
    assert row.p_adjusted < CFG.alpha and row.status == "ok"


def test_small_sample_reads_not_measurable_not_pass() -> None:
    result = compare(synthetic(1, n=20), synthetic(2, n=20), CFG, **RUN)
    statuses = {r.metric: r.status for r in result.rows if r.model == "a"}
    assert statuses["accuracy"] == "not measurable"
    assert statuses["error_rate"] == "not measurable"


def test_error_rate_gate_and_p99_never_gates() -> None:
    result = compare(synthetic(1), synthetic(2, errors=40), CFG, **RUN)
    assert ("a", "error_rate") in {(r.model, r.metric) for r in result.regressions}
    # the same 40 errors as one burst of consecutive requests: one event, not 40
    burst = compare(synthetic(1), synthetic(2, errors=40, burst=True), CFG, **RUN)
    row = next(r for r in burst.rows if r.metric == "error_rate" and r.model == "a")
    assert row.status != "regressed" and "over-dispersion" in row.test
    assert all(not r.gating for r in result.rows if r.metric == "ttft_p99")


def test_small_sample_verdict_is_blind_not_pass() -> None:
    result = compare(synthetic(1, n=20), synthetic(2, n=20), CFG, **RUN)
    assert result.verdict == "blind" and result.exit_code == 4
    assert result.counts()["not measurable"] > len(result.gating_rows) / 2


def _nights(count: int, drift: float = 0.05, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.concat(
        [
            synthetic(100 + s, ttft_factor=float(np.exp(drift * rng.standard_normal())),
                      run_id=f"n{s:02d}").assign(run_started_at=f"2026-01-{s + 1:02d}T03:00")
            for s in range(count)
        ]
    )  # fmt: skip


def test_nightly_mode_tests_the_last_k_nights_and_prints_what_it_tests() -> None:
    history = _nights(12)
    aa = compare(history, synthetic(9, run_id="t"), CFG)
    row = next(r for r in aa.rows if r.metric == "ttft_p90" and r.model == "a")
    assert row.test.startswith("last 3 nights vs 10 older") and row.nights == 10
    assert aa.exit_code in (0, 4) and not aa.regressions
    bad = compare(history, synthetic(9, run_id="t", ttft_factor=2.0), CFG)
    row = next(r for r in bad.rows if r.metric == "ttft_p90" and r.model == "a")
    # printed change = tested change: the last-3-nights mean vs the reference mean
    assert math.isclose(row.change, row.current / row.baseline - 1, rel_tol=1e-9)
    assert 0.2 < row.change < 0.3 and row.tonight_change > 0.8
    assert row.status == "regressed"


def test_one_night_step_is_suspect_then_regressed_within_k_nights() -> None:
    history = _nights(12)
    night1 = compare(history, synthetic(9, run_id="t1", ttft_factor=1.3), CFG)
    row = next(r for r in night1.rows if r.metric == "ttft_p90" and r.model == "a")
    assert row.status != "regressed" and row.warning.startswith("suspect")
    assert night1.exit_code != 1  # a warning never fails
    slow = synthetic(9, run_id="t1", ttft_factor=1.3).assign(run_started_at="2026-02-01")
    night2 = compare(pd.concat([history, slow]), synthetic(10, run_id="t2", ttft_factor=1.3), CFG)
    assert ("a", "ttft_p90") in {(r.model, r.metric) for r in night2.regressions}


def test_few_nights_use_a_drift_allowance_never_a_drift_blind_test() -> None:
    result = compare(_nights(2), synthetic(9, run_id="t"), CFG)
    row = next(r for r in result.rows if r.metric == "ttft_p90")
    assert "drift allowance 5%" in row.test and row.status == "not measurable"
    assert row.need and any("drift allowance" in n for n in result.notes)


def test_holm_matches_step_down_definition() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005])
    assert np.allclose(holm(p), [0.03, 0.06, 0.06, 0.02])


def test_config_rejects_p99_gate(tmp_path: Path) -> None:
    from lavabench.errors import ConfigError

    bad = tmp_path / "c.yaml"
    bad.write_text("gating: [ttft_p99]\n")
    with pytest.raises(ConfigError, match="cannot gate"):
        load_compare_config(bad)


# --- end to end with the real simulator --------------------------------------------------------


@pytest.fixture(scope="module")
def sim_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("cmp")
    base = ["run", "model=[gpt-oss-20b,glm-5]", "dataset.limit=30", f"results_dir={results}"]
    for run_id, extra in (
        ("base", ["sim.seed=11"]),
        ("aa", ["sim.seed=12"]),
        ("slow", ["sim.seed=13", "+sim.models.glm-5.latency_factor=1.6"]),
    ):
        proc = run_cli([*base, f"run_id={run_id}", *extra])
        assert proc.returncode == 0, proc.stderr
    return results


def test_cli_compare_aa_passes_and_regression_fails(sim_runs: Path, tmp_path: Path) -> None:
    md, js = tmp_path / "summary.md", tmp_path / "cmp.json"
    aa = cli_in_process(["compare", "--baseline", str(sim_runs / "base"), "--current",
                         str(sim_runs / "aa"), "--markdown", str(md), "--json", str(js)])  # fmt: skip
    # 30 requests per model cannot see a 10% change: the honest A/A verdict is "blind" (4)
    assert aa.returncode == 4, aa.stdout + aa.stderr
    assert "| gpt-oss-20b |" in md.read_text() and "BLIND" in md.read_text()
    assert json.loads(js.read_text())["exit_code"] == 4
    bad = cli_in_process(["compare", "--baseline", str(sim_runs / "base"), "--current",
                          str(sim_runs / "slow"), "--json", str(js)])  # fmt: skip
    assert bad.returncode == 1, bad.stdout + bad.stderr
    regressed = json.loads(js.read_text())["regressed"]
    assert "glm-5/demo-arith/ttft_p50" in regressed
    assert not any(r.startswith("gpt-oss-20b/") for r in regressed)


def test_cli_compare_refuses_invalid_run(sim_runs: Path) -> None:
    run_json = sim_runs / "aa" / "run.json"
    original = run_json.read_text()
    info = json.loads(original)
    info["health"] = {**(info.get("health") or {}), "verdict": {"status": "invalid"}}
    run_json.write_text(json.dumps(info))
    try:
        refused = cli_in_process(["compare", "--baseline", str(sim_runs / "base"),
                                  "--current", str(sim_runs / "aa")])  # fmt: skip
        assert refused.returncode == 2 and "invalid" in refused.stderr
        allowed = cli_in_process(["compare", "--baseline", str(sim_runs / "base"),
                                  "--current", str(sim_runs / "aa"), "--allow-invalid"])  # fmt: skip
        assert allowed.returncode == 4 and "aa: invalid" in allowed.stdout
    finally:
        run_json.write_text(original)


def test_log_quantile_se_covers_under_ar1_requests() -> None:
    """AR(1) rho 0.5, nominal 95%: the order-statistic SE alone covers 83% here, with the
    batch-means inflation 93%."""
    from lavabench.analysis.nights import log_quantile_se
    from lavabench.analysis.tables import percentile

    rng = np.random.default_rng(3)
    n, rho, reps = 1000, 0.5, 300
    e = rng.standard_normal((reps, n))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0]
    for i in range(1, n):
        x[:, i] = rho * x[:, i - 1] + math.sqrt(1 - rho * rho) * e[:, i]
    truth = 1.2815515655446004  # ln p90 of exp(N(0, 1)) is the normal's 90th percentile
    hits = 0
    for row in np.exp(x):
        se = log_quantile_se(row, 0.9, 1.96)
        hits += abs(math.log(percentile(row, 0.9)) - truth) <= 1.96 * se
    assert hits / reps >= 0.91, hits / reps
