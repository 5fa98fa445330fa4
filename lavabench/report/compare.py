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


def headline(result: CompareResult) -> str:
    """The verdict in one line: what regressed, or that the gate could not see, or a pass
    that says how much of the gate it covers."""
    c, total = result.counts(), len(result.gating_rows)
    unseen = c["not measurable"] + c["missing"]
    detect = sum(r.can_detect for r in result.gating_rows)
    if result.verdict == "regression":
        return f"REGRESSION: {c['regressed']} of {total} gating rows regressed"
    if result.verdict == "blind":
        nights, factor = result.need()
        needs = [f"{nights} more night(s)" if nights is not None else "",
                 f"~{factor:.1f}x the requests/items" if factor is not None else ""]  # fmt: skip
        need = " or ".join(n for n in needs if n)
        missing = (
            f"; missing tonight: {', '.join(result.missing_tonight)}"
            if result.missing_tonight
            else ""
        )
        return (
            f"BLIND: {unseen} of {total} gating rows cannot detect their target change"
            + (f"; need {need}" if need else "")
            + missing
        )
    return f"no regression in the {total - unseen} of {total} gating rows that can see ({detect} can detect their target change)"


def counts_line(result: CompareResult) -> str:
    c, total = result.counts(), len(result.gating_rows)
    detect = sum(r.can_detect for r in result.gating_rows)
    share = f"{detect / total:.0%}" if total else "-"
    return (
        f"Gating rows: {total} = {c['regressed']} regressed / {c['ok']} ok / "
        f"{c['not measurable']} not measurable / {c['missing']} missing; "
        f"{detect} of {total} ({share}) can detect their target change (MDE <= target)."
    )


def to_markdown(result: CompareResult) -> str:
    """Headline, counts, notes and warnings, then one table row per (model, dataset, metric)."""
    reg = result.regressions
    lines = [
        f"## lavabench compare: {headline(result)}\n",
        f"{counts_line(result)}  \nExit code {result.exit_code}. "
        f"Baseline: {result.baseline}  \nCurrent: {result.current}  \n"
        f"Gating family: Holm at alpha={result.config.alpha}; others BH at {result.config.fdr}; "
        f"MDE at {result.config.power:.0%} power.\n",
    ]
    if result.verdicts:
        shown = ", ".join(f"{k}: {v or 'unknown'}" for k, v in result.verdicts.items())
        lines.append(f"Measurement verdicts: {shown}\n")
    lines += [f"- {n}" for n in result.notes]
    lines += [f"**Fatal:** {f}\n" for f in result.fatal]
    if reg:
        lines.append(
            "**Regressed:** " + ", ".join(f"{r.model}/{r.dataset} {r.metric}" for r in reg) + "\n"
        )
    lines += [
        f"- **{r.model}/{r.dataset} {r.metric}** {r.warning}" for r in result.rows if r.warning
    ]
    lines.append(
        "\n| model | dataset | metric | gate | baseline | current | change | threshold | MDE / target "
        "| p (adj) | status | test | note |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in result.rows:
        status = _SIGN.get(r.status, r.status)
        if r.status in ("regressed",):
            status = f"**{status}**"
        note = "; ".join(x for x in (r.note, r.need if r.status == "not measurable" else "") if x)
        lines.append(
            f"| {r.model} | {r.dataset} | {r.metric} | {'yes' if r.gating else 'no'} "
            f"| {_value(r, r.baseline)} | {_value(r, r.current)} | {_change(r)} "
            f"| {_limit(r, r.threshold)} | {_limit(r, r.mde)} / {_limit(r, r.target)} "
            f"| {_p(r.p_adjusted)} "
            f"| {status} | {r.test} (n={r.n_baseline}/{r.n_current}) | {note} |"
        )
    lines.append(
        "\n`not measurable`: no flag, but the smallest change this sample could detect (MDE) "
        "is above the row's target (its threshold; against history, `nightly.detect` for "
        "latency): more nights, requests or items are needed to call it a pass. "
        "Nightly rows: baseline = the reference nights' geometric mean, current = the last "
        f"{result.config.recent_nights} nights' (tonight included): the tested change."
    )
    return "\n".join(lines) + "\n"


def to_json(result: CompareResult) -> str:
    """Strict JSON (no NaN) of every row and the decision."""
    data: dict[str, Any] = result.to_dict()
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
