"""`lavabench compare`: read the baseline and current runs, gate them, print and write the result.

The statistics are analysis/compare.py (tables in, rows out); the Markdown and JSON are
report/compare.py; this module reads the sides (a run, or `history[:N]`) and wires them.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lavabench.config import CONF_DIR
from lavabench.errors import ConfigError
from lavabench.exit_codes import EXIT_ERROR
from lavabench.records.history import read_history, run_verdict
from lavabench.records.reader import read_runs
from lavabench.records.sweep_dirs import expand_run_dirs, is_sweep_dir
from lavabench.records.verdict import severity

HISTORY_SPEC = re.compile(r"^history(?:\[:(\d+)\])?$")


@dataclass
class Side:
    """One side of a comparison: its rows, a label and the verdict of each run in it."""

    rows: pd.DataFrame
    label: str
    verdicts: dict[str, str | None]


def load_run(run_dir: Path | str) -> Side:
    """A run directory's rows (with run_started_at so nights can be ordered).

    A sweep directory is one run: every job's rows under the sweep's id, its earliest start,
    and its worst measurement verdict (one invalid job makes the sweep invalid to gate on).
    """
    runs = read_runs(expand_run_dirs([run_dir]))
    rows = runs.rows.copy()
    for c in ("run_id", "model", "dataset", "item_id", "dataset_sha256", "status", "error_type"):
        if c in rows:
            rows[c] = rows[c].astype("string").astype(object)
    started = min(str(info.get("started_at") or "") for info in runs.infos)
    rows["run_started_at"] = started
    verdict = max((run_verdict(i) for i in runs.infos), key=severity)
    if is_sweep_dir(run_dir):
        run_id = Path(run_dir).name
        rows["run_id"] = run_id
        return Side(rows, f"sweep {run_id}", {run_id: verdict})
    run_id = str(runs.infos[0].get("run_id") or Path(run_dir).name)
    return Side(rows, f"run {run_id}", {run_id: verdict})


def load_baseline(spec: str, history_dir: Path | str, exclude_run_ids: tuple[str, ...]) -> Side:
    """`spec` is a run directory, `history` (all nights) or `history[:N]` (last N nights)."""
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
    return Side(rows, f"history ({len(verdicts)} nights from {history_dir})", verdicts)


# --- rendering -------------------------------------------------------------------------------


def main(args: list[str]) -> int:
    """Baseline vs current with the gates of statistics.md; exit 1 when a gating row regressed."""
    from lavabench.analysis.compare import compare, load_compare_config
    from lavabench.commands.compare import load_baseline, load_run
    from lavabench.report.compare import to_json, to_markdown

    parser = argparse.ArgumentParser(
        prog="lavabench compare",
        description="Regression gates of the current run against a baseline (statistics.md). "
        "Exit 0 no regression, 1 regressed, 2 invalid run or error.",
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
    baseline = load_baseline(opts.baseline, opts.history_dir, tuple(current.verdicts))
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
    )
    markdown = to_markdown(result)
    print(markdown)
    if opts.markdown is not None:
        with opts.markdown.open("a") as fh:
            fh.write(markdown)
    if opts.json is not None:
        opts.json.write_text(to_json(result))
    return result.exit_code
