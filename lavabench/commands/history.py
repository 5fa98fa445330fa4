"""`lavabench history add|list`: the nightly Parquet history (records/history.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lavabench.records.sweep_dirs import (
    expand_run_dirs,
)


def main(args: list[str]) -> int:
    """`history add RUN_DIR` / `history list`: the nightly Parquet dataset (records/history.py)."""
    from lavabench.records.history import add_run, history_runs

    parser = argparse.ArgumentParser(
        prog="lavabench history",
        description="add: append runs to the nightly Parquet history (idempotent); "
        "list: one line per night.",
    )
    parser.add_argument("action", choices=["add", "list"])
    parser.add_argument("run_dirs", type=Path, nargs="*", help="run or sweep directories (add)")
    parser.add_argument(
        "--dir", type=Path, default=Path("results/history"), help="default: results/history"
    )
    opts = parser.parse_args(args)
    if opts.action == "list":
        print(history_runs(opts.dir).to_string(index=False))
        return 0
    if not opts.run_dirs:
        parser.error("history add needs RUN_DIR")
    for run_dir in expand_run_dirs(opts.run_dirs):
        files = add_run(run_dir, opts.dir)
        print(f"{run_dir}: {len(files)} partition file(s) in {opts.dir}")
    return 0
