"""`lavabench compare`: read the baseline and current runs, gate them, print and write the result.

The statistics are analysis/compare.py (tables in, rows out); the Markdown and JSON are
report/compare.py; this module reads the sides (a run, or `history[:N]`) and wires them.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from lavabench.config import CONF_DIR
from lavabench.errors import ConfigError
from lavabench.exit_codes import EXIT_ERROR
from lavabench.records.history import read_history, run_verdict
from lavabench.records.reader import read_columns, read_runs
from lavabench.records.sweep_dirs import expand_run_dirs, is_sweep_dir
from lavabench.records.verdict import severity

HISTORY_SPEC = re.compile(r"^history(?:\[:(\d+)\])?$")


@dataclass
class Side:
    """One side of a comparison: its rows, a label, each run's verdict, the run ids and
    nights it covers (so the current run is never its own baseline) and its earliest start."""

    rows: pd.DataFrame
    label: str
    verdicts: dict[str, str | None]
    run_ids: tuple[str, ...] = ()
    started: str = ""


def _request_starts(run_dirs: list[Path]) -> pd.Series:
    """Each request's start time, in read_runs' row order (error-rate minute windows)."""
    parts = [read_columns(d, ["started_at"]).column("started_at").to_pandas() for d in run_dirs]
    return pd.concat(parts, ignore_index=True) if parts else pd.Series([], dtype=object)


def load_run(run_dir: Path | str) -> Side:
    """A run directory's rows (with run_started_at so nights can be ordered).

    A sweep directory is one run: every job's rows under the sweep's id, its earliest start,
    and its worst measurement verdict (one invalid job makes the sweep invalid to gate on).
    """
    dirs = expand_run_dirs([run_dir])
    runs = read_runs(dirs)
    rows = runs.rows.copy()
    for c in ("run_id", "model", "dataset", "item_id", "dataset_sha256", "status", "error_type"):
        if c in rows:
            rows[c] = rows[c].astype("string").astype(object)
    rows["started_at"] = _request_starts(dirs).to_numpy()
    started = min(str(info.get("started_at") or "") for info in runs.infos)
    rows["run_started_at"] = started
    verdict = max((run_verdict(i) for i in runs.infos), key=severity)
    job_ids = tuple(sorted({str(r) for r in rows["run_id"].dropna().unique()}))
    if is_sweep_dir(run_dir):
        run_id = Path(run_dir).name
        rows["run_id"] = run_id
        return Side(rows, f"sweep {run_id}", {run_id: verdict}, (run_id, *job_ids), started)
    run_id = str(runs.infos[0].get("run_id") or Path(run_dir).name)
    return Side(rows, f"run {run_id}", {run_id: verdict}, (run_id, *job_ids), started)


def load_baseline(spec: str, history_dir: Path | str, exclude_run_ids: tuple[str, ...]) -> Side:
    """`spec` is a run directory, `history` (all nights) or `history[:N]` (last N nights; a
    sweep's jobs of one night are one night). `exclude_run_ids` (the current run's ids and
    night) never enter the baseline."""
    match = HISTORY_SPEC.match(spec)
    if match is None:
        return load_run(spec)
    nights = int(match.group(1)) if match.group(1) else None
    if nights is not None and nights < 1:
        raise ConfigError(f"--baseline {spec}: N must be >= 1")
    rows = read_history(history_dir, nights=nights, exclude_run_ids=exclude_run_ids)
    verdicts = {
        str(r): (None if pd.isna(v) else str(v))
        for r, v in rows.drop_duplicates("run_id")[["run_id", "verdict"]].to_numpy()
    }
    run_ids = tuple(sorted(set(rows["run_id"].astype(str))))
    # one night = one baseline unit: a sweep's jobs share their sweep's night and first start
    rows["run_id"] = rows["night"]
    rows["run_started_at"] = rows.groupby("night")["run_started_at"].transform("min")
    n = rows["night"].nunique()
    label = f"history ({n} night(s) from {history_dir})"
    return Side(rows, label, verdicts, run_ids, str(rows["run_started_at"].min()))


def hours_between(a: str, b: str) -> float | None:
    """Hours from start `a` to start `b` (ISO strings), None when either is unknown."""
    try:
        ta, tb = datetime.fromisoformat(a), datetime.fromisoformat(b)
    except ValueError:
        return None
    ta = ta if ta.tzinfo else ta.replace(tzinfo=UTC)
    tb = tb if tb.tzinfo else tb.replace(tzinfo=UTC)
    return (tb - ta).total_seconds() / 3600


# --- rendering -------------------------------------------------------------------------------


def main(args: list[str]) -> int:
    """Baseline vs current with the gates of statistics.md: exit 0 no regression among the
    rows that can see, 1 a gating row regressed, 4 blind (most gating rows not measurable, or
    a model missing tonight)."""
    from lavabench.analysis.compare import compare
    from lavabench.analysis.compare_config import load_compare_config
    from lavabench.commands.compare import load_baseline, load_run
    from lavabench.report.compare import to_json, to_markdown

    parser = argparse.ArgumentParser(
        prog="lavabench compare",
        description="Regression gates of the current run against a baseline (statistics.md). "
        "Exit 0 no regression, 1 regressed, 2 invalid run or error, 4 blind (most gating rows "
        "cannot detect their threshold, or a model is missing tonight).",
    )
    parser.add_argument("--baseline", required=True, help="RUN_DIR, history or history[:N]")
    parser.add_argument("--current", required=True, type=Path, help="RUN_DIR")
    parser.add_argument(
        "--history-dir", type=Path, default=Path("results/history"), help="for --baseline history"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=CONF_DIR / "compare.yaml",
        help="the gates (conf/compare.yaml)",
    )
    parser.add_argument("--markdown", type=Path, default=None, help="also write (append) here")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON here")
    parser.add_argument(
        "--allow-invalid", action="store_true", help="compare even a run whose verdict is invalid"
    )
    opts = parser.parse_args(args)
    config = load_compare_config(opts.config)
    current = load_run(opts.current)
    baseline = load_baseline(opts.baseline, opts.history_dir, current.run_ids)
    verdicts = {**baseline.verdicts, **current.verdicts}
    invalid = [run for run, v in verdicts.items() if v == "invalid"]
    if invalid and not opts.allow_invalid:
        print(
            f"lavabench: compare refused: run(s) {', '.join(invalid)} have measurement verdict "
            "'invalid' (see run.json health); fix the setup or pass --allow-invalid",
            file=sys.stderr,
        )
        return EXIT_ERROR
    result = compare(
        baseline.rows,
        current.rows,
        config,
        baseline_label=baseline.label,
        current_label=current.label,
        verdicts=verdicts,
        history=HISTORY_SPEC.match(opts.baseline) is not None,
        hours_apart=hours_between(baseline.started, current.started),
    )
    markdown = to_markdown(result)
    print(markdown)
    if opts.markdown is not None:
        with opts.markdown.open("a") as fh:
            fh.write(markdown)
    if opts.json is not None:
        opts.json.write_text(to_json(result))
    return result.exit_code
