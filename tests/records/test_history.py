"""History: hive-partitioned by date and model, readable by pyarrow, appends idempotently."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from tests.conftest import cli_in_process, run_cli


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("hist-results")
    for run_id, seed in (("n1", 1), ("n2", 2)):
        proc = run_cli(
            ["run", "model=[gpt-oss-20b,glm-5]", "dataset.limit=6", f"results_dir={results}",
             f"run_id={run_id}", f"sim.seed={seed}", "sim.zero_delays=true"]
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    return results


def test_add_is_idempotent_and_partitioned(two_runs: Path, tmp_path: Path) -> None:
    from lavabench.records.history import add_run, read_history

    hist = tmp_path / "history"
    add_run(two_runs / "n1", hist)
    first = read_history(hist)
    add_run(two_runs / "n1", hist)  # again: replaces, never duplicates
    again = read_history(hist)
    assert len(first) == len(again) == 12
    assert again["job_id"].is_unique
    started = json.loads((two_runs / "n1" / "run.json").read_text())["started_at"][:10]
    folders = sorted(p.relative_to(hist).parent.as_posix() for p in hist.rglob("*.parquet"))
    assert folders == [f"date={started}/model=glm-5", f"date={started}/model=gpt-oss-20b"]
    add_run(two_runs / "n2", hist)
    table = ds.dataset(hist, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 24 and {"date", "model", "run_id"} <= set(table.column_names)
    assert set(read_history(hist, nights=1)["run_id"]) == {"n2"}  # newest night first
    assert set(read_history(hist, nights=5, exclude_run_ids=("n2",))["run_id"]) == {"n1"}


def test_history_cli_add_and_list(two_runs: Path, tmp_path: Path) -> None:
    hist = tmp_path / "h"
    for _ in range(2):
        proc = cli_in_process(["history", "add", str(two_runs / "n1"), "--dir", str(hist)])
        assert proc.returncode == 0, proc.stderr
    listing = cli_in_process(["history", "list", "--dir", str(hist)])
    assert listing.returncode == 0 and listing.stdout.count("n1") == 1


def test_empty_history_is_an_error(tmp_path: Path) -> None:
    from lavabench.errors import StoreError
    from lavabench.records.history import read_history

    with pytest.raises(StoreError, match="no history"):
        read_history(tmp_path)


def test_run_with_history_enabled_appends_itself(tmp_path) -> None:
    from lavabench.records.history import read_history
    from tests.conftest import run_cli

    history = tmp_path / "history"
    proc = run_cli(["run", "model=[gpt-oss-20b,glm-5]", "dataset.limit=5", f"results_dir={tmp_path}",
                    "run_id=h1", "history.enabled=true", f"history.dir={history}"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = read_history(history)
    assert sorted(set(table["model"])) == ["glm-5", "gpt-oss-20b"]
    assert len(table) == 10


def test_report_history_draws_trends_with_a_baseline_band(two_runs: Path, tmp_path: Path) -> None:
    from lavabench.records.history import add_run, read_history
    from lavabench.report.trends import trend_table, with_baseline_band

    third = run_cli(["run", "model=[gpt-oss-20b,glm-5]", "dataset.limit=6",
                     f"results_dir={tmp_path}", "run_id=n3", "sim.seed=3",
                     "sim.zero_delays=true"])  # fmt: skip
    assert third.returncode == 0, third.stderr
    history = tmp_path / "history"
    for run in (two_runs / "n1", two_runs / "n2", tmp_path / "n3"):
        add_run(run, history)
    trends = with_baseline_band(trend_table(read_history(history)))
    assert len(trends) == 6 and set(trends["model"]) == {"gpt-oss-20b", "glm-5"}
    last = trends.sort_values("night").groupby("model").tail(1)
    first = trends.sort_values("night").groupby("model").head(1)
    assert last["ttft_p50_s_lo"].notna().all() and last["accuracy_hi"].notna().all()
    assert first["ttft_p50_s_lo"].isna().all()  # no earlier nights: no band
    assert (trends["cost_per_item_usd"] > 0).all() and trends["accuracy"].between(0, 1).all()

    proc = cli_in_process(["report", str(tmp_path / "n3"), "--history", str(history)])
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "n3" / "report"
    assert (out / "trends.png").stat().st_size > 10_000 and (out / "trends.svg").exists()
    assert "Nightly trends" in (out / "index.html").read_text()
