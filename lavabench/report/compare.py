"""`lavabench compare` output: Markdown for $GITHUB_STEP_SUMMARY and JSON; computes nothing."""

from __future__ import annotations

import json
import math
from typing import Any

from lavabench.analysis.compare import CompareResult, Row

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
