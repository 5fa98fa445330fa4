"""`lavabench compare` inputs and outputs: baseline specs, Markdown for $GITHUB_STEP_SUMMARY, JSON.

Kept apart from compare.py so the statistics stay pure (tables in, rows out).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lavabench.analysis import read_runs
from lavabench.compare import CompareResult, Row
from lavabench.errors import ConfigError
from lavabench.health import severity
from lavabench.history import read_history, run_verdict
from lavabench.manifest import expand_run_dirs, is_sweep_dir

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

_SIGN = {"regressed": "REGRESSED", "changed": "changed", "improved": "improved"}


def _value(row: Row, v: float) -> str:
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "inf"
    if row.metric in ("error_rate", "accuracy"):
        return f"{v:.1%}"
    if row.metric == "cost_per_item":
        return f"${v / 1e12:.6f}"
    if row.metric == "output_tokens_per_s":
        return f"{v:.1f}"
    return f"{v:.3f}s"


def _change(row: Row) -> str:
    if math.isnan(row.change):
        return "-"
    if math.isinf(row.change):
        return "inf"
    if row.unit == "points":
        return f"{row.change * 100:+.1f} pt"
    return f"{row.change:+.1%}"


def _limit(row: Row, v: float) -> str:
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "inf"
    return f"{v * 100:.1f} pt" if row.unit == "points" else f"{v:.0%}"


def _p(v: float) -> str:
    return "-" if math.isnan(v) else (f"{v:.1e}" if v < 0.001 else f"{v:.3f}")


def to_markdown(result: CompareResult) -> str:
    """A summary line, verdicts, then one table row per (model, dataset, metric)."""
    reg = result.regressions
    head = (
        f"## lavabench compare: {'REGRESSION' if result.exit_code else 'no regression'}\n\n"
        f"Baseline: {result.baseline}  \nCurrent: {result.current}  \n"
        f"Gating family: Holm at alpha={result.config.alpha}; others BH at {result.config.fdr}; "
        f"MDE at {result.config.power:.0%} power.\n"
    )
    lines = [head]
    if result.verdicts:
        shown = ", ".join(f"{k}: {v or 'unknown'}" for k, v in result.verdicts.items())
        lines.append(f"Measurement verdicts: {shown}\n")
    for f in result.fatal:
        lines.append(f"**Fatal:** {f}\n")
    if reg:
        lines.append(
            "**Regressed:** " + ", ".join(f"{r.model}/{r.dataset} {r.metric}" for r in reg) + "\n"
        )
    lines.append(
        "| model | dataset | metric | gate | baseline | current | change | threshold | MDE "
        "| p (adj) | status | test |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in result.rows:
        status = _SIGN.get(r.status, r.status)
        if r.status in ("regressed",):
            status = f"**{status}**"
        lines.append(
            f"| {r.model} | {r.dataset} | {r.metric} | {'yes' if r.gating else 'no'} "
            f"| {_value(r, r.baseline)} | {_value(r, r.current)} | {_change(r)} "
            f"| {_limit(r, r.threshold)} | {_limit(r, r.mde)} | {_p(r.p_adjusted)} "
            f"| {status} | {r.test} (n={r.n_baseline}/{r.n_current}) |"
        )
    lines.append(
        "\n`not measurable`: no flag, but the smallest change this sample could detect (MDE) "
        "is above the threshold: more requests or items are needed to call it a pass."
    )
    return "\n".join(lines) + "\n"


def to_json(result: CompareResult) -> str:
    """Strict JSON (no NaN) of every row and the decision."""
    data: dict[str, Any] = result.to_dict()
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
