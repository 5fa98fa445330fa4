"""`lavabench compare` on run directories: each defect of issue 16, reproduced before its fix.

Run directories are written with the records writer's table shape (tests/analysis
make_rows/write_run), not by the simulator: small, fast, and each night's drift, bursts and
failures are exactly what the test says.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lavabench.cli import main
from lavabench.records.history import add_run, read_history
from tests.analysis.test_analysis_frontier import write_run

START = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
PRICES = {"a": ("0.1", "0.2"), "b": ("0.1", "0.2")}


def night_rows(
    seed: int, *, models: tuple[str, ...] = ("a", "b"), n: int = 300, slow: float = 1.0,
    rho: float = 0.0, error_at: np.ndarray | None = None, empty_at: int | None = None,
    run_id: str = "r", start: datetime = START,
) -> pd.DataFrame:  # fmt: skip
    """One night: lognormal TTFT (sd 0.3, AR(1) `rho` in request order), model `a` slowed
    by `slow`, failures at `error_at`, one empty reply (no text chunk: NaN TTFT) at `empty_at`;
    requests one second apart."""
    rng = np.random.default_rng(seed)
    frames = []
    for model in models:
        e = rng.standard_normal(n)
        ar = np.empty(n)
        ar[0] = e[0]
        for i in range(1, n):
            ar[i] = rho * ar[i - 1] + np.sqrt(1 - rho * rho) * e[i]
        ttft = 0.3 * (slow if model == "a" else 1.0) * np.exp(0.3 * ar)
        error = np.zeros(n, dtype=bool)
        if error_at is not None and model == "a":
            error[error_at] = True
        if empty_at is not None and model == "a":
            ttft[empty_at] = np.nan
        ttft = np.where(error, np.nan, ttft)
        frames.append(pd.DataFrame({
            "run_id": run_id, "job_id": [f"{model}-{i}" for i in range(n)], "model": model,
            "dataset": "d", "item_id": [f"i{i:04d}" for i in range(n)], "repeat": 0,
            "is_warmup": False, "status": np.where(error, "error", "ok"),
            "error_type": np.where(error, "unavailable", None), "attempts": 1,
            "ttft_s": ttft, "e2e_s": ttft + 0.5, "itl_p50_s": np.where(error, np.nan, 0.01),
            "output_tokens_per_s": np.where(error, np.nan, 100.0),
            "prompt_tokens": 60.0, "completion_tokens": 30.0, "cost_pico_usd": 1000,
            "grader": np.where(error, None, "numeric"),
            "correct": np.where(error, None, rng.uniform(size=n) < 0.8),
            "response_cached": False,
            "started_at": [start + timedelta(seconds=i) for i in range(n)],
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def write_night(run_dir: Path, rows: pd.DataFrame, start: datetime = START) -> Path:
    write_run(run_dir, rows, PRICES)
    info = json.loads((run_dir / "run.json").read_text())
    info.update(run_id=run_dir.name, started_at=start.isoformat())
    (run_dir / "run.json").write_text(json.dumps(info))
    return run_dir


def compare_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    js = Path(args[args.index("--current") + 1]).parent / "compare.json"
    code = main(["compare", *args, "--json", str(js)])
    out = capsys.readouterr().out
    return code, json.loads(js.read_text()), out


def rows_of(result: dict, model: str, metric: str) -> dict:
    return next(r for r in result["rows"] if r["model"] == model and r["metric"] == metric)


def test_an_empty_reply_is_missing_not_a_regression(tmp_path: Path, capsys) -> None:
    base = write_night(tmp_path / "base", night_rows(1, n=600, run_id="base"))
    rows = night_rows(1, n=600, run_id="cur", empty_at=5)
    cur = write_night(tmp_path / "cur", rows, START + timedelta(minutes=20))
    code, result, _ = compare_cli(capsys, "--baseline", str(base), "--current", str(cur))
    for metric in ("ttft_p50", "ttft_p90", "ttft_p99"):
        row = rows_of(result, "a", metric)
        assert row["status"] != "regressed" and row["current"] != "inf", row
    assert code != 1


def test_a_failure_driven_p90_rise_reads_regressed(tmp_path: Path, capsys) -> None:
    base = write_night(tmp_path / "base", night_rows(1, n=600, run_id="base"))
    fail = night_rows(2, n=600, run_id="cur", error_at=np.arange(0, 600, 6))  # 17% errors
    cur = write_night(tmp_path / "cur", fail, START + timedelta(minutes=20))
    code, result, _ = compare_cli(capsys, "--baseline", str(base), "--current", str(cur))
    assert rows_of(result, "a", "ttft_p90")["status"] == "regressed" and code == 1


def _history(tmp_path: Path, nights: int, drift: float = 0.05, outage: int | None = None) -> Path:
    rng = np.random.default_rng(5)
    hist = tmp_path / "history"
    for k in range(nights):
        start = START + timedelta(days=k)
        errors = np.arange(0, 300, 3) if k == outage else None
        rows = night_rows(
            10 + k, run_id=f"n{k:02d}", start=start, slow=float(np.exp(drift * rng.standard_normal())),
            error_at=errors,
        )  # fmt: skip
        add_run(write_night(tmp_path / f"n{k:02d}", rows, start), hist)
    return hist


def test_an_outage_night_is_left_out_of_the_reference(tmp_path: Path, capsys) -> None:
    hist = _history(tmp_path, 10, outage=5)
    tonight = START + timedelta(days=12)
    slow = [night_rows(40 + k, run_id=f"s{k}", start=tonight, slow=1.6) for k in range(3)]
    for k, rows in enumerate(slow[:2]):  # two slow nights already in the history
        when = START + timedelta(days=10 + k)
        add_run(write_night(tmp_path / f"s{k}", rows.assign(run_id=f"s{k}"), when), hist)
    cur = write_night(tmp_path / "s2", slow[2], tonight)
    code, result, out = compare_cli(capsys, "--baseline", "history[:12]", "--history-dir",
                                    str(hist), "--current", str(cur))  # fmt: skip
    row = rows_of(result, "a", "ttft_p90")
    assert row["status"] == "regressed", row
    assert any("outage" in n and "n05" in n for n in result["notes"]) and code == 1
    assert "BLIND" not in out.splitlines()[0] or code == 1


def test_a_missing_model_gets_rows_and_blinds_the_verdict(tmp_path: Path, capsys) -> None:
    base = write_night(tmp_path / "base", night_rows(1, run_id="base"))
    only_a = night_rows(2, models=("a",), run_id="cur")
    cur = write_night(tmp_path / "cur", only_a, START + timedelta(minutes=20))
    code, result, out = compare_cli(capsys, "--baseline", str(base), "--current", str(cur))
    missing = [r for r in result["rows"] if r["model"] == "b"]
    assert missing and all(r["status"] == "missing" for r in missing)
    assert result["missing_tonight"] == ["b/d"] and code == 4 and "b/d" in out.splitlines()[0]


def _sweep(tmp_path: Path, name: str, start: datetime, seed: int) -> Path:
    sweep = tmp_path / name
    for j, model in enumerate(("a", "b")):
        job = sweep / f"model={model}" / "dataset=d" / f"job={j}"
        rows = night_rows(seed + j, models=(model,), run_id=f"{name}-j{j}", start=start)
        write_night(job, rows, start)
        info = json.loads((job / "run.json").read_text())
        (job / "run.json").write_text(json.dumps({**info, "run_id": f"{name}-j{j}"}))
        (job / "job.json").write_text(json.dumps({"status": "completed", "num": j}))
    (sweep / "manifest.json").write_text(json.dumps({"jobs": []}))
    return sweep


def test_a_sweep_is_one_night_and_never_its_own_baseline(tmp_path: Path, capsys) -> None:
    hist = tmp_path / "history"
    for k in range(3):
        sweep = _sweep(tmp_path, f"sweep-{k}", START + timedelta(days=k), 100 + 10 * k)
        for job in sorted(sweep.glob("model=*/dataset=*/job=*")):
            add_run(job, hist)
    assert set(read_history(hist, nights=2)["night"]) == {"sweep-1", "sweep-2"}
    assert read_history(hist, nights=1)["model"].nunique() == 2  # both jobs of one night
    _, result, _ = compare_cli(capsys, "--baseline", "history[:2]", "--history-dir",
                                    str(hist), "--current", str(tmp_path / "sweep-2"))  # fmt: skip
    assert "2 night(s)" in result["baseline"] and result["missing_tonight"] == []
    row = rows_of(result, "a", "ttft_p90")
    assert row["nights"] == 2, row  # sweep-0 and sweep-1: the current sweep is not in it


def test_an_error_burst_is_one_event_not_a_regression(tmp_path: Path, capsys) -> None:
    base = write_night(tmp_path / "base", night_rows(1, n=900, run_id="base"))
    burst = night_rows(2, n=900, run_id="cur", error_at=np.arange(300, 325))  # 25 in 25 s
    cur = write_night(tmp_path / "cur", burst, START + timedelta(minutes=20))
    _, result, _ = compare_cli(capsys, "--baseline", str(base), "--current", str(cur))
    row = rows_of(result, "a", "error_rate")
    assert row["status"] != "regressed" and "over-dispersion" in row["test"], row
    spread = night_rows(2, n=900, run_id="cur", error_at=np.arange(0, 900, 36))  # 25, even
    cur2 = write_night(tmp_path / "cur2", spread, START + timedelta(minutes=20))
    _, result, _ = compare_cli(capsys, "--baseline", str(base), "--current", str(cur2))
    assert rows_of(result, "a", "error_rate")["status"] == "regressed"


def test_autocorrelated_requests_widen_the_one_run_test(tmp_path: Path, capsys) -> None:
    base = write_night(tmp_path / "base", night_rows(1, n=900, rho=0.7, run_id="base"))
    cur = write_night(tmp_path / "cur", night_rows(2, n=900, rho=0.7, run_id="cur"),
                      START + timedelta(minutes=20))  # fmt: skip
    _, bursty, _ = compare_cli(capsys, "--baseline", str(base), "--current", str(cur))
    base_i = write_night(tmp_path / "bi", night_rows(1, n=900, run_id="bi"))
    cur_i = write_night(tmp_path / "ci", night_rows(2, n=900, run_id="ci"),
                        START + timedelta(minutes=20))  # fmt: skip
    _, iid, _ = compare_cli(capsys, "--baseline", str(base_i), "--current", str(cur_i))
    ratio = rows_of(bursty, "a", "ttft_p90")["se"] / rows_of(iid, "a", "ttft_p90")["se"]
    assert ratio > 1.3, ratio  # batch means see the bursts; order statistics alone do not


def test_far_apart_one_run_baseline_warns_and_allows_drift(tmp_path: Path, capsys) -> None:
    base = write_night(tmp_path / "base", night_rows(1, run_id="base"))
    cur = write_night(tmp_path / "cur", night_rows(2, run_id="cur"), START + timedelta(days=1))
    _, result, out = compare_cli(capsys, "--baseline", str(base), "--current", str(cur))
    assert any(n.startswith("WARNING") and "24.0 h" in n for n in result["notes"])
    assert "drift allowance 5%" in rows_of(result, "a", "ttft_p90")["test"]
    assert "Gating rows: 10 =" in out and "can detect their target change" in out
