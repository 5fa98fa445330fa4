"""Compare: A/A passes, injected regressions are flagged, gates follow statistics.md."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lavabench.analysis.compare import CompareConfig, compare, holm, load_compare_config
from lavabench.config import CONF_DIR
from tests.conftest import run_cli

CFG = load_compare_config(CONF_DIR / "compare.yaml")


def synthetic(
    seed: int, n: int = 400, ttft_factor: float = 1.0, skill: float = 0.7, run_id: str = "r",
    errors: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """Rows drawn like the simulator: lognormal TTFT (jitter 0.15), shared item difficulty."""
    rng = np.random.default_rng(seed)
    difficulty = np.random.default_rng(0).uniform(0, 1, n)  # same items every run
    frames = []
    for model in ("a", "b"):
        ttft = 0.3 * ttft_factor * np.exp(0.15 * rng.standard_normal(n))
        p = 1 / (1 + np.exp(-(skill - difficulty) / 0.08))
        status = np.array(["ok"] * n, dtype=object)
        status[:errors] = "error"
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
        result = compare(synthetic(2 * seed), synthetic(2 * seed + 1), CFG)
        assert result.exit_code == 0, [
            (r.model, r.metric, r.p_adjusted) for r in result.regressions
        ]
        assert not any(r.status == "changed" for r in result.rows)


def test_injected_latency_and_accuracy_regressions_are_flagged() -> None:
    result = compare(synthetic(1), synthetic(2, ttft_factor=1.3, skill=0.6), CFG)
    assert result.exit_code == 1
    flagged = {(r.model, r.metric) for r in result.regressions}
    assert {("a", "ttft_p90"), ("b", "ttft_p90"), ("a", "accuracy"), ("b", "accuracy")} <= flagged
    acc = next(r for r in result.rows if r.metric == "accuracy")
    assert acc.test == "McNemar mid-p" and acc.change < -0.02


def test_improvement_is_shown_never_gated() -> None:
    result = compare(synthetic(1), synthetic(2, ttft_factor=0.7), CFG)
    assert result.exit_code == 0
    assert next(r for r in result.rows if r.metric == "ttft_p90").status == "improved"


def test_significant_but_small_change_is_not_flagged() -> None:
    # +5% at n=20,000 is significant, but below the 10% practical threshold
    result = compare(synthetic(1, n=20_000), synthetic(2, n=20_000, ttft_factor=1.05), CFG)
    row = next(r for r in result.rows if r.metric == "ttft_p50")
    assert row.p_adjusted < CFG.alpha and row.status == "ok"


def test_small_sample_reads_not_measurable_not_pass() -> None:
    result = compare(synthetic(1, n=20), synthetic(2, n=20), CFG)
    statuses = {r.metric: r.status for r in result.rows if r.model == "a"}
    assert statuses["accuracy"] == "not measurable"
    assert statuses["error_rate"] == "not measurable"


def test_error_rate_gate_and_p99_never_gates() -> None:
    result = compare(synthetic(1), synthetic(2, errors=40), CFG)
    assert ("a", "error_rate") in {(r.model, r.metric) for r in result.regressions}
    assert all(not r.gating for r in result.rows if r.metric == "ttft_p99")


def test_nightly_mode_uses_spread_of_nights() -> None:
    nights = pd.concat(
        [synthetic(s, run_id=f"n{s}").assign(run_started_at=f"2026-01-0{s}") for s in range(1, 7)]
    )
    cfg = CompareConfig(gating=CFG.gating, thresholds=CFG.thresholds)
    aa = compare(nights, synthetic(9, run_id="t"), cfg)
    row = next(r for r in aa.rows if r.metric == "ttft_p90")
    assert row.test.startswith("nightly") and row.nights == 5 and aa.exit_code == 0
    bad = compare(nights, synthetic(9, run_id="t", ttft_factor=1.6), cfg)
    assert ("a", "ttft_p90") in {(r.model, r.metric) for r in bad.regressions}


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
    aa = run_cli(["compare", "--baseline", str(sim_runs / "base"), "--current",
                  str(sim_runs / "aa"), "--markdown", str(md), "--json", str(js)])  # fmt: skip
    assert aa.returncode == 0, aa.stdout + aa.stderr
    assert "| gpt-oss-20b |" in md.read_text()
    assert json.loads(js.read_text())["exit_code"] == 0
    bad = run_cli(["compare", "--baseline", str(sim_runs / "base"), "--current",
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
        refused = run_cli(["compare", "--baseline", str(sim_runs / "base"),
                           "--current", str(sim_runs / "aa")])  # fmt: skip
        assert refused.returncode == 2 and "invalid" in refused.stderr
        allowed = run_cli(["compare", "--baseline", str(sim_runs / "base"),
                           "--current", str(sim_runs / "aa"), "--allow-invalid"])  # fmt: skip
        assert allowed.returncode == 0 and "aa: invalid" in allowed.stdout
    finally:
        run_json.write_text(original)
