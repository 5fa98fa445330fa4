"""Baseline vs current: per model x dataset, is tonight worse than noise allows, and could we see?

Implements shared/docs/statistics.md ("Latency gate", "Nightly gate: what it can see",
"Autocorrelation"). Each row (model, dataset, metric) gets a test and a practical threshold
from `conf/compare.yaml`; it is flagged only when both agree. One-sided in the regression
direction; improvements are tested the other way and shown, never gated.

Latency-like rows (percentiles, median tok/s, mean cost) are tested on the log of the
per-night statistic (analysis/nights.py), in one of two ways:
- nightly: with >= `recent_nights - 1 + min_reference_nights` baseline nights from history,
  the mean log of the last K nights (tonight included) against the older nights' mean, t
  bound from the night-to-night spread pooled over the models of the compare (drift is the
  real noise; one model's own 5-20 nights leave t crit at 5-11). The practical threshold
  (flag from +10 %) applies to that same mean, the row counts as measurable when its MDE
  reaches `nightly.detect` (+20 %: what the last-3-nights mean can see at 5 % drift), so printed change = tested change; tonight alone against the
  reference is a `suspect` warning that never fails. A model whose own spread is
  significantly above the pool (F test at 1 %) uses its own.
- with fewer nights (or a run-dir baseline): tonight against the baseline nights' mean with a
  stated drift allowance (`nightly.drift_allowance`), raised to the measured spread when the
  history shows more; a one-run baseline started within `same_session_hours` assumes no drift
  (labelled). Never a drift-blind test between nights.
Error rate: exact conditional binomial on counts deflated by their over-dispersion between
one-minute windows (bursts). Accuracy: McNemar mid-p on shared items (paired t on per-item
means when items have several answers); no shared items: two-proportion score test.
Reference nights where a model's error share exceeds `outage_error_share` are left out of
that model's reference (noted): their failures were judged by that night's error-rate row.

Gating rows form one family (Holm at alpha); others get Benjamini-Hochberg. Every row carries
its minimum detectable effect (MDE): a row without a flag whose MDE is above its threshold
reads "not measurable", never "ok", and the verdict counts them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from lavabench.analysis.compare_config import NEVER_GATE, CompareConfig
from lavabench.analysis.compare_rows import (
    Row,
    Setting,
    SideIndex,
    accuracy_row,
    error_row,
    latency_rows,
    missing_rows,
    outage_nights,
)
from lavabench.analysis.nights import LOG_METRICS, METRICS, Nights, summarise
from lavabench.exit_codes import DECIDED_NO, NOT_MEASURED, OK

__all__ = ["METRICS", "CompareConfig", "CompareResult", "Row", "compare", "compare_nights"]


@dataclass
class CompareResult:
    """All rows plus what the gate decided (`verdict`, `exit_code`)."""

    rows: list[Row]
    config: CompareConfig
    baseline: str
    current: str
    verdicts: dict[str, str | None] = field(default_factory=dict)
    fatal: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing_tonight: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.status == "regressed"]

    @property
    def gating_rows(self) -> list[Row]:
        return [r for r in self.rows if r.gating]

    def counts(self) -> dict[str, int]:
        """Gating rows by outcome: regressed / ok (improved included) / not measurable / missing."""
        out = {"regressed": 0, "ok": 0, "not measurable": 0, "missing": 0}
        for r in self.gating_rows:
            key = "ok" if r.status == "improved" else r.status
            out[key if key in out else "not measurable"] += 1
        return out

    @property
    def blind(self) -> bool:
        """Most gating rows could not see their threshold, or a model is missing tonight."""
        c, total = self.counts(), len(self.gating_rows)
        unseen = c["not measurable"] + c["missing"]
        return bool(self.missing_tonight) or total == 0 or unseen > self.config.blind_share * total

    @property
    def verdict(self) -> str:
        if self.regressions or self.fatal:
            return "regression"
        return "blind" if self.blind else "no regression"

    @property
    def exit_code(self) -> int:
        return {"regression": DECIDED_NO, "blind": NOT_MEASURED}.get(self.verdict, OK)

    def need(self) -> tuple[int | None, float | None]:
        """The most nights and the largest request/item factor any blind gating row needs."""
        blind = [r for r in self.gating_rows if r.status == "not measurable"]
        nights = [r.need_nights for r in blind if r.need_nights is not None]
        factors = [r.need_factor for r in blind if r.need_factor is not None]
        return (max(nights) if nights else None, max(factors) if factors else None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; NaN/inf become null or strings so the file is strict JSON."""
        need_nights, need_factor = self.need()
        return {
            "baseline": self.baseline,
            "current": self.current,
            "verdict": self.verdict,
            "verdicts": self.verdicts,
            "config": asdict(self.config),
            "fatal": self.fatal,
            "notes": self.notes,
            "missing_tonight": self.missing_tonight,
            "gating_counts": self.counts(),
            "gating_rows": len(self.gating_rows),
            "gating_can_detect": sum(r.can_detect for r in self.gating_rows),
            "need_nights": need_nights,
            "need_requests_factor": _json_number(need_factor),
            "regressed": [f"{r.model}/{r.dataset}/{r.metric}" for r in self.regressions],
            "suspect": [f"{r.model}/{r.dataset}/{r.metric}" for r in self.rows if r.warning],
            "exit_code": self.exit_code,
            "rows": [
                {**{k: _json_number(v) for k, v in asdict(r).items()}, "can_detect": r.can_detect}
                for r in self.rows
            ],
        }


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


# --- multiplicity ----------------------------------------------------------------------------


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (statsmodels' method="holm", not its default "hs")."""
    p = np.asarray(p, dtype="float64")
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values for the non-gating rows."""
    p = np.asarray(p, dtype="float64")
    return stats.false_discovery_control(p) if len(p) else p


# --- the comparison --------------------------------------------------------------------------


def family_z(config: CompareConfig, groups: int) -> tuple[float, float]:
    """Per-row alpha (family alpha over the gating rows) and its z: the SEs use this z."""
    gating = [m for m in config.gating if m not in NEVER_GATE]
    alpha_m = config.alpha / max(1, groups * len(gating))
    return alpha_m, float(stats.norm.isf(alpha_m))


def compare(
    baseline_rows: pd.DataFrame,
    current_rows: pd.DataFrame,
    config: CompareConfig,
    *,
    baseline_label: str = "baseline",
    current_label: str = "current",
    verdicts: dict[str, str | None] | None = None,
    history: bool = True,
    hours_apart: float | None = None,
) -> CompareResult:
    """Compare two record tables. `run_id` tells baseline nights apart (`run_started_at`
    orders them, newest first); the current side is one night whatever its run ids.
    `history=False`: the baseline is one run directory, `hours_apart` between the starts.
    Pure: no files, no network."""
    keys = ["model", "dataset"]
    groups = pd.concat([baseline_rows[keys], current_rows[keys]]).astype(str).drop_duplicates()
    _, z = family_z(config, len(groups))
    base = summarise(baseline_rows, z)
    cur = summarise(current_rows, z).with_night("(current)")
    return compare_nights(
        base, cur, config, baseline_label=baseline_label, current_label=current_label,
        verdicts=verdicts, history=history, hours_apart=hours_apart,
    )  # fmt: skip


def compare_nights(
    base: Nights,
    cur: Nights,
    config: CompareConfig,
    *,
    baseline_label: str = "baseline",
    current_label: str = "current",
    verdicts: dict[str, str | None] | None = None,
    history: bool = True,
    hours_apart: float | None = None,
) -> CompareResult:
    """`compare` on per-night summaries (what `compare` calls; the bench calls it directly)."""
    g_base = set(map(tuple, base.stats[["model", "dataset"]].drop_duplicates().to_numpy()))
    g_cur = set(map(tuple, cur.stats[["model", "dataset"]].drop_duplicates().to_numpy()))
    both = sorted(g_base & g_cur)
    alpha_m, z = family_z(config, len(both))
    same_session = (not history) and hours_apart is not None
    same_session = same_session and abs(hours_apart or 0.0) <= config.same_session_hours
    setting = Setting(
        config=config, alpha_m=alpha_m, z=z, zp=float(stats.norm.isf(1 - config.power)),
        history=history, same_session=same_session, models=max(1, len(both)),
    )  # fmt: skip
    notes = _side_notes(setting, base, hours_apart)
    outages = outage_nights(base, config.outage_error_share)
    for (model, dataset), nights in sorted(outages.items()):
        if (model, dataset) in g_cur:
            notes.append(
                f"{model}/{dataset}: outage night(s) {', '.join(nights)} (error share > "
                f"{config.outage_error_share:.0%}) left out of the reference"
            )
    rows = latency_rows(setting, base, cur, both, outages)
    index = SideIndex(base, cur)
    for model, dataset in both:
        kept = [n for n in base.nights() if n not in outages.get((model, dataset), [])]
        rows.append(error_row(setting, index, model, dataset, kept))
        rows.append(accuracy_row(setting, index, model, dataset, kept))
    rows += missing_rows(setting, sorted(g_base - g_cur), "not in the current run")
    rows += missing_rows(setting, sorted(g_cur - g_base), "no baseline for it")
    order = {m: i for i, m in enumerate(METRICS)}
    rows.sort(key=lambda r: (r.model, r.dataset, order[r.metric]))
    _decide(rows, config)
    return CompareResult(
        rows=rows, config=config, baseline=baseline_label, current=current_label,
        verdicts=dict(verdicts or {}), fatal=list(cur.fatal), notes=notes,
        missing_tonight=[f"{m}/{d}" for m, d in sorted(g_base - g_cur)],
    )  # fmt: skip


def _side_notes(setting: Setting, base: Nights, hours_apart: float | None) -> list[str]:
    """What the baseline can and cannot say, in words (printed above the table)."""
    cfg = setting.config
    if setting.history:
        needed = cfg.recent_nights - 1 + cfg.min_reference_nights
        n = len(base.nights())
        if n < needed:
            return [
                f"history has {n} night(s); the nightly test needs {needed} (last "
                f"{cfg.recent_nights} vs >= {cfg.min_reference_nights} older): latency rows "
                f"use a drift allowance of {cfg.drift_allowance:.0%} instead"
            ]
        return []
    if setting.same_session:
        return [f"one-run baseline {hours_apart:.1f} h before the current run: assumes no drift"]
    apart = "an unknown time" if hours_apart is None else f"{hours_apart:.1f} h"
    return [
        f"WARNING: the baseline run started {apart} apart from the current run (more than "
        f"{cfg.same_session_hours:g} h): latency rows allow {cfg.drift_allowance:.0%} drift; "
        "for a nightly gate use --baseline history"
    ]


def _worse(row: Row) -> bool:
    """The change is at least the practical threshold in the bad direction."""
    higher_worse = METRICS[row.metric][3]
    change = row.change if higher_worse else -row.change
    return bool(change >= row.threshold)


def _better(row: Row) -> bool:
    higher_worse = METRICS[row.metric][3]
    change = -row.change if higher_worse else row.change
    return bool(change >= row.threshold)


def _decide(rows: list[Row], config: CompareConfig) -> None:
    """Holm over the gating family, BH over the rest; each row's status; suspects."""
    for family, adjust, level in (
        ([r for r in rows if r.gating], holm, config.alpha),
        ([r for r in rows if not r.gating], bh, config.fdr),
    ):
        for r in family:
            if math.isnan(r.p) and r.status != "missing":
                r.status = "not measurable" if r.gating else "n/a"
        tested = [r for r in family if not math.isnan(r.p)]
        if not tested:
            continue
        adj = adjust(np.array([r.p for r in tested]))
        adj_imp = adjust(np.array([r.p_improve for r in tested]))
        for r, a, ai in zip(tested, adj, adj_imp, strict=True):
            r.p_adjusted = float(a)
            if a < level and _worse(r):
                r.status = "regressed" if r.gating else "changed"
            elif ai < level and _better(r):
                r.status = "improved"
            elif not r.can_detect:
                r.status = "not measurable"
            else:
                r.status = "ok"
    suspects = [r for r in rows if r.gating and not math.isnan(r.p_tonight)]
    if suspects:
        adj = holm(np.array([r.p_tonight for r in suspects]))
        for r, a in zip(suspects, adj, strict=True):
            if a < config.alpha and r.tonight_change >= r.threshold and r.status != "regressed":
                r.warning = (
                    f"suspect: tonight {r.tonight_change:+.1%} vs the reference (adj p {a:.1e});"
                    f" flagged if it persists (mean of {config.recent_nights} nights)"
                )


__all__ += ["LOG_METRICS", "Setting", "bh", "family_z", "holm"]
