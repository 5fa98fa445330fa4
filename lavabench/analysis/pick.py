"""The decision: the cheapest model whose quality and latency are good enough, with reasons.

Rules (shared/docs/statistics.md, "Pick"): candidates are the models with graded answers
(K of them); a model qualifies when its one-sided accuracy lower bound at alpha/K (Wilson,
or the item-cluster t bound when items were answered more than once) is >= the threshold
and the one-sided 95% upper bound of each limited p90 latency (`quantile_test`, failures as
+inf) is under its limit. "Cheapest" is the observed cost per item in these runs (exact
pico-USD sums / requests), not list price: it includes each model's real token usage.
A model whose cost is unknown (answers without usage) is never ranked: it cannot be picked
on the strength of missing data, and the output says what is missing. An estimated cost
ranks, labelled `est`. Accuracy is over graded answers; ungraded ones and answers cut at
max_tokens are reported beside it (truncation with the advice to raise runner.max_tokens).
Every cheaper model is printed with why it was rejected and its paired difference to the
pick on shared items, since overlapping intervals are not a test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lavabench.analysis.intervals import t_ppf
from lavabench.analysis.slo import Attainment, Slo, attainment
from lavabench.analysis.tables import accuracy_lower_bound, p90_upper_bound
from lavabench.records.verdict import verdict_lines

ALPHA = 0.05
# What pick_model reads of each model's rows (prepare's columns; the SLOs' in analysis.slo)
_PER_MODEL_COLUMNS = [
    "model", "_in_accuracy", "_correct", "_timed", "_ttft", "_e2e", "_first_answer", "_error",
    "_truncated", "_ungraded", "max_tokens",
]  # fmt: skip


@dataclass(frozen=True)
class Paired:
    """Accuracy difference (model - pick) on shared items, mean ± t·sd/√n, and McNemar."""

    items: int
    diff: float
    lo: float
    hi: float
    b: int  # items only this model got right
    c: int  # items only the pick got right
    mcnemar_mid_p: float  # one-sided: this model better than the pick


@dataclass(frozen=True)
class Candidate:
    model: str
    usd_per_1k_items: float
    accuracy: float
    accuracy_lower: float
    ttft_p90_upper_s: float
    e2e_p90_upper_s: float
    qualifies: bool
    reasons: tuple[str, ...]
    paired: Paired | None = None
    cost_basis: str = "server"
    cost_unknown: int = 0
    graded: int = 0
    ungraded: int = 0
    truncated: int = 0
    truncation_rate: float = math.nan
    max_tokens: float = math.nan
    first_answer_p90_upper_s: float = math.nan
    slo: tuple[Attainment, ...] = ()

    @property
    def cost_known(self) -> bool:
        return self.cost_basis != "unknown" and not math.isnan(self.usd_per_1k_items)


@dataclass(frozen=True)
class PickResult:
    min_quality: float
    max_p90_ttft_s: float | None
    max_p90_e2e_s: float | None
    alpha: float
    dataset: str | None
    candidates: list[Candidate] = field(default_factory=list)
    cost_includes_grading: bool = False
    max_p90_first_answer_s: float | None = None
    slos: tuple[Slo, ...] = ()

    @property
    def pick(self) -> Candidate | None:
        return next((c for c in self.candidates if c.qualifies), None)

    @property
    def runner_up(self) -> Candidate | None:
        return next(iter([c for c in self.candidates if c.qualifies][1:]), None)

    @property
    def rejected_cheaper(self) -> list[Candidate]:
        """Models cheaper than the pick (all models of known cost when none qualifies)."""
        out = []
        for c in self.candidates:
            if c.qualifies or not c.cost_known:
                break
            out.append(c)
        return out

    @property
    def cost_unknown(self) -> list[Candidate]:
        """Models not ranked because their cost is unknown (listed last)."""
        return [c for c in self.candidates if not c.cost_known]


def pick_model(
    prepared: pd.DataFrame,
    costs: pd.DataFrame,
    *,
    min_quality: float,
    max_p90_ttft_s: float | None = None,
    max_p90_e2e_s: float | None = None,
    alpha: float = ALPHA,
    dataset: str | None = None,
    cost_includes_grading: bool = False,
    max_p90_first_answer_s: float | None = None,
    slos: tuple[Slo, ...] = (),
) -> PickResult:
    """Decide over `prepared` rows (analysis.prepare) and `costs` (analysis.cost_table;
    `cost_includes_grading` says it was made with include_grading, for the headline)."""
    df = prepared if dataset is None else prepared[prepared["dataset"] == dataset]
    graded_models = df.loc[df["_in_accuracy"], "model"].astype(str).unique()
    by_model = {str(r["model"]): r for r in costs.to_dict("records")}

    def cost_of(model: str) -> float:
        value = float(by_model.get(model, {}).get("usd_per_1k_items", math.nan))
        return math.inf if math.isnan(value) else value

    order = sorted(graded_models, key=lambda m: (cost_of(m), m))
    k = max(1, len(order))
    candidates = []
    # each model's rows of only the columns read below, split once: a boolean filter per
    # model copied every column of every row (issue 21: ~1.5 s of a 1M-row report)
    narrow = df[[c for c in _PER_MODEL_COLUMNS if c in df]]
    positions = narrow.groupby("model", observed=True, sort=False).indices
    for model in order:
        rows = narrow.take(positions[model]) if model in positions else narrow.iloc[:0]
        graded = rows[rows["_in_accuracy"]]
        accuracy = float(graded["_correct"].mean())
        lower = accuracy_lower_bound(df, model, alpha / k)
        timed = rows[rows["_timed"]]
        ttft_up = p90_upper_bound(timed["_ttft"].to_numpy()) if max_p90_ttft_s else math.nan
        e2e_up = p90_upper_bound(timed["_e2e"].to_numpy()) if max_p90_e2e_s else math.nan
        cost = by_model.get(model, {})
        reasons = []
        if math.isinf(cost_of(model)):
            reasons.append(
                f"cost unknown: {int(cost.get('cost_unknown', 0) or 0)} answers carried no "
                "usage and no estimate, so it cannot be ranked by cost"
            )
        if not lower >= min_quality:
            reasons.append(
                f"accuracy {accuracy:.3f}, lower bound {lower:.3f} (alpha/K={alpha / k:.4f})"
                f" < {min_quality}"
            )
        if max_p90_ttft_s is not None and not ttft_up < max_p90_ttft_s:
            reasons.append(f"TTFT p90 upper bound {ttft_up:.3f} s >= {max_p90_ttft_s} s")
        if max_p90_e2e_s is not None and not e2e_up < max_p90_e2e_s:
            reasons.append(f"E2E p90 upper bound {e2e_up:.3f} s >= {max_p90_e2e_s} s")
        fa_up, met, slo_reasons = _service_levels(timed, max_p90_first_answer_s, slos, alpha / k)
        reasons += slo_reasons
        answered = int((~rows["_error"]).sum())
        cut = int(rows["_truncated"].sum())
        candidates.append(
            Candidate(
                model=model,
                usd_per_1k_items=float(cost.get("usd_per_1k_items", math.nan)),
                accuracy=accuracy,
                accuracy_lower=lower,
                ttft_p90_upper_s=ttft_up,
                e2e_p90_upper_s=e2e_up,
                qualifies=not reasons,
                reasons=tuple(reasons),
                cost_basis=str(cost.get("cost_basis", "unknown")),
                cost_unknown=int(cost.get("cost_unknown", 0) or 0),
                graded=len(graded),
                ungraded=int(rows["_ungraded"].sum()),
                truncated=cut,
                truncation_rate=cut / answered if answered else math.nan,
                max_tokens=float(rows["max_tokens"].max()),
                first_answer_p90_upper_s=fa_up,
                slo=met,
            )
        )
    chosen = next((c for c in candidates if c.qualifies), None)
    if chosen is not None:
        # the graded rows' pairing columns once, not all of every row per cheaper model
        # (1M rows, 20 models: 17 full copies were ~2.5 s of `lavabench report`)
        pairing = ["model", "dataset", "dataset_sha256", "item_id", "_correct", "_in_accuracy"]
        graded = df.loc[df["_in_accuracy"].to_numpy(), pairing]
        candidates = [
            c
            if c.qualifies or not c.usd_per_1k_items <= chosen.usd_per_1k_items
            else _with_paired(c, paired_difference(graded, c.model, chosen.model))
            for c in candidates
        ]
    return PickResult(
        min_quality, max_p90_ttft_s, max_p90_e2e_s, alpha, dataset, candidates,
        cost_includes_grading, max_p90_first_answer_s, tuple(slos),
    )  # fmt: skip


def _service_levels(
    timed: pd.DataFrame, max_p90_first_answer_s: float | None, slos: tuple[Slo, ...], alpha: float
) -> tuple[float, tuple[Attainment, ...], list[str]]:
    """First-answer p90 bound and SLO attainments (bounds at alpha = alpha/K), with reasons."""
    reasons = []
    fa_up = math.nan
    if max_p90_first_answer_s is not None:
        fa_up = p90_upper_bound(timed["_first_answer"].fillna(np.inf).to_numpy())
        if not fa_up < max_p90_first_answer_s:
            reasons.append(
                f"first-answer p90 upper bound {fa_up:.3f} s >= {max_p90_first_answer_s} s"
            )
    met = tuple(attainment(timed, slo, alpha) for slo in slos)
    reasons += [f"SLO {a.slo}: {a.describe()}" for a in met if not a.meets]
    return fa_up, met, reasons


def _with_paired(c: Candidate, paired: Paired | None) -> Candidate:
    return Candidate(**{**c.__dict__, "paired": paired})


def paired_difference(df: pd.DataFrame, model_a: str, model_b: str) -> Paired | None:
    """Per-item accuracy difference A - B on items both answered (same dataset hash)."""
    keys = ["dataset", "dataset_sha256", "item_id"]
    graded = df[df["_in_accuracy"]]
    per_item = {
        m: graded[graded["model"] == m].groupby(keys, observed=True)["_correct"].mean()
        for m in (model_a, model_b)
    }
    joined = pd.concat(per_item, axis=1, join="inner").dropna()
    n = len(joined)
    if n == 0:
        return None
    a, b_ = joined[model_a].to_numpy(), joined[model_b].to_numpy()
    d = a - b_
    half = t_ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n) if n > 1 else math.inf
    only_a = int(np.sum((a >= 0.5) & (b_ < 0.5)))
    only_b = int(np.sum((b_ >= 0.5) & (a < 0.5)))
    # here: a report without a pick needs no scipy.stats (quality imports it)
    from lavabench.analysis.quality import mcnemar_mid_p

    mid_p = mcnemar_mid_p(only_a, only_b)
    mean = float(d.mean())
    return Paired(n, mean, mean - half, mean + half, only_a, only_b, mid_p)


def format_pick(result: PickResult) -> str:
    """The decision as plain text: the pick, the runner-up, why each cheaper model lost."""
    limits = [f"accuracy lower bound >= {result.min_quality}"]
    if result.max_p90_ttft_s is not None:
        limits.append(f"TTFT p90 < {result.max_p90_ttft_s} s")
    if result.max_p90_e2e_s is not None:
        limits.append(f"E2E p90 < {result.max_p90_e2e_s} s")
    if result.max_p90_first_answer_s is not None:
        limits.append(f"first-answer p90 < {result.max_p90_first_answer_s} s")
    limits += [f"SLO {slo} (lower bound)" for slo in result.slos]
    scope = f" on {result.dataset}" if result.dataset else ""
    k = len(result.candidates)
    lines = [f"pick{scope}: cheapest model with {', '.join(limits)} (K={k}, alpha={result.alpha})"]
    if result.cost_includes_grading:
        lines.append("  cost per item includes grading (the LLM judge's requests)")
    pick, runner_up = result.pick, result.runner_up
    if pick is None:
        lines.append("no model qualifies")
    else:
        lines.append(f"  pick:      {_describe(pick)}")
        lines.append(
            f"  runner-up: {_describe(runner_up)}" if runner_up else "  runner-up: none qualifies"
        )
    for c in result.rejected_cheaper:
        line = f"  rejected:  {c.model} ({_price(c)}): {'; '.join(c.reasons)}{_caveats(c)}"
        if c.paired is not None:
            p = c.paired
            line += (
                f"; vs pick on {p.items} shared items: {p.diff:+.3f} "
                f"[{p.lo:+.3f}, {p.hi:+.3f}], McNemar b={p.b} c={p.c} mid-p={p.mcnemar_mid_p:.3g}"
            )
        lines.append(line)
    for c in result.cost_unknown:
        would = "" if len(c.reasons) > 1 else " (it would pass the quality and latency limits)"
        lines.append(
            f"  not ranked: {c.model}: {c.reasons[0]}{would}; accuracy {c.accuracy:.3f} "
            f"(lower bound {c.accuracy_lower:.3f}){_caveats(c)}"
        )
    return "\n".join(lines)


def _price(c: Candidate) -> str:
    if not c.cost_known:
        return "cost unknown"
    est = " est" if c.cost_basis in ("estimate", "partly estimated") else ""
    return f"${c.usd_per_1k_items:.4g}/1k items{est}"


def _caveats(c: Candidate) -> str:
    """Ungraded answers and truncation, said wherever the model's accuracy is."""
    out = ""
    if c.ungraded:
        out += f"; {c.ungraded} answers ungraded (accuracy over {c.graded} graded)"
    if c.truncated:
        limit = "" if math.isnan(c.max_tokens) else f"={int(c.max_tokens)}"
        out += (
            f"; {c.truncation_rate:.0%} of answers cut at max_tokens{limit}: "
            "raise runner.max_tokens"
        )
    return out


def _describe(c: Candidate) -> str:
    text = f"{c.model} {_price(c)}, accuracy {c.accuracy:.3f} (lower bound {c.accuracy_lower:.3f})"
    if not math.isnan(c.ttft_p90_upper_s):
        text += f", TTFT p90 <= {c.ttft_p90_upper_s:.3f} s"
    if not math.isnan(c.e2e_p90_upper_s):
        text += f", E2E p90 <= {c.e2e_p90_upper_s:.3f} s"
    if not math.isnan(c.first_answer_p90_upper_s):
        text += f", first-answer p90 <= {c.first_answer_p90_upper_s:.3f} s"
    text += "".join(f", SLO {a.describe()}" for a in c.slo)
    return text + _caveats(c)


def verdict_gate(
    infos: list[dict[str, Any]], run_names: list[str], *, allow_invalid: bool = False
) -> tuple[list[str], str | None]:
    """Each run's measurement verdict as lines, and why to refuse (exit 2), if so.

    A decision gated on an `invalid` run would rest on the client's own latency: refuse
    unless `--allow-invalid`. `suspect` runs are shown, not refused.
    """
    lines: list[str] = []
    invalid: list[str] = []
    for name, info in zip(run_names, infos, strict=True):
        health = info.get("health")
        lines += [f"{name}: {line}" for line in verdict_lines(health)]
        if (health or {}).get("verdict", {}).get("status") == "invalid":
            invalid.append(name)
    if invalid and not allow_invalid:
        return lines, (
            f"refusing to pick on invalid measurement(s): {', '.join(invalid)} (causes above); "
            "re-run with the remedies, or pass --allow-invalid"
        )
    return lines, None
