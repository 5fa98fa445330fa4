"""Baseline vs current: per model x dataset, is tonight worse than noise allows?

Implements shared/docs/statistics.md exactly. Each row (model, dataset, metric) gets a test
suited to it and a practical threshold from `conf/compare.yaml`; it is flagged only when
both agree. Tests are one-sided in the regression direction; improvements are tested the
other way and shown, never gated.

- Percentiles (TTFT p50/p90/p99, E2E p50/p90, ITL p50): ratio current/baseline, z = ln ratio
  / sqrt(SEa^2 + SEb^2), SE(ln q) from the order statistics at np -/+ z*sqrt(np(1-p)) with z
  the test's own z (of alpha/M). With >= `min_history_nights` baseline nights: mean log
  percentile of the last 2 nights (tonight + the newest baseline night) against the older
  nights' mean, t bound from their night-to-night spread (drift is the real noise).
- Error rate: exact conditional binomial test; auth/billing errors are fatal, not statistics.
- Accuracy: McNemar mid-p on shared items (paired t on per-item means when items are
  answered more than once); no shared items: two-proportion score test.
- Output tok/s and cost per item: Mann-Whitney.
Gating rows form one family (Holm at alpha=0.005); others get Benjamini-Hochberg. Every row
carries its minimum detectable effect (MDE): a row without a flag whose MDE is above its
threshold reads "not measurable", never "ok". No bootstrap is used (order-statistic SEs), so
there is no resampling of autocorrelated requests to get wrong.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from lavabench.analysis.quality import mcnemar_mid_p
from lavabench.analysis.tables import prepare
from lavabench.errors import ConfigError
from lavabench.exit_codes import DECIDED_NO, OK

FATAL_ERRORS = ("auth_failed", "insufficient_balance")

# name -> (kind, column, quantile, higher_is_worse)
METRICS: dict[str, tuple[str, str, float, bool]] = {
    "ttft_p50": ("percentile", "_ttft", 0.5, True),
    "ttft_p90": ("percentile", "_ttft", 0.9, True),
    "ttft_p99": ("percentile", "_ttft", 0.99, True),
    "e2e_p50": ("percentile", "_e2e", 0.5, True),
    "e2e_p90": ("percentile", "_e2e", 0.9, True),
    "itl_p50": ("percentile", "itl_p50_s", 0.5, True),
    "output_tokens_per_s": ("mannwhitney", "output_tokens_per_s", 0.5, False),
    "error_rate": ("error_rate", "_error", 0.0, True),
    "accuracy": ("accuracy", "_correct", 0.0, False),
    "cost_per_item": ("mannwhitney", "_cost", 0.0, True),
}
NEVER_GATE = ("ttft_p99",)  # p99 needs >= 1,000 requests: report it, don't gate it


@dataclass(frozen=True)
class CompareConfig:
    """What `conf/compare.yaml` says: family alpha, FDR, power, gating set, thresholds."""

    alpha: float = 0.005
    fdr: float = 0.05
    power: float = 0.95
    min_history_nights: int = 5
    gating: tuple[str, ...] = ("ttft_p50", "ttft_p90", "e2e_p90", "error_rate", "accuracy")
    thresholds: dict[str, float] = field(default_factory=dict)

    def threshold(self, metric: str) -> float:
        """The practical threshold of `metric` (relative, or absolute for rates)."""
        default = {"error_rate": 0.01, "accuracy": 0.02}.get(metric, 0.10)
        return float(self.thresholds.get(metric, default))


def load_compare_config(path: Path | str) -> CompareConfig:
    """Read and check a compare YAML file (unknown metric names are errors, not ignored)."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(OmegaConf.load(Path(path)))
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping")
    known = {"alpha", "fdr", "power", "min_history_nights", "gating", "thresholds"}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{path}: unknown key {key!r} (known: {sorted(known)})")
    gating = tuple(str(g) for g in raw.get("gating") or ())
    thresholds = {str(k): float(v) for k, v in (raw.get("thresholds") or {}).items()}
    for name in (*gating, *thresholds):
        if name not in METRICS:
            raise ConfigError(f"{path}: unknown metric {name!r} (known: {sorted(METRICS)})")
    for name in gating:
        if name in NEVER_GATE:
            raise ConfigError(f"{path}: {name} cannot gate (needs >= 1,000 requests per model)")
    cfg = CompareConfig(
        alpha=float(raw.get("alpha", 0.005)),
        fdr=float(raw.get("fdr", 0.05)),
        power=float(raw.get("power", 0.95)),
        min_history_nights=int(raw.get("min_history_nights", 5)),
        gating=gating,
        thresholds=thresholds,
    )
    if not (0 < cfg.alpha < 1 and 0 < cfg.fdr < 1 and 0.5 <= cfg.power < 1):
        raise ConfigError(f"{path}: alpha, fdr in (0,1) and power in [0.5,1) required")
    return cfg


@dataclass
class Row:
    """One compare row. `change` is relative (ratio-1) or absolute (rates); see `unit`."""

    model: str
    dataset: str
    metric: str
    test: str
    unit: str
    baseline: float
    current: float
    change: float
    n_baseline: int
    n_current: int
    threshold: float
    gating: bool
    p: float = math.nan
    p_improve: float = math.nan
    p_adjusted: float = math.nan
    mde: float = math.nan
    se: float = math.nan
    nights: int = 1
    status: str = "n/a"
    note: str = ""


@dataclass
class CompareResult:
    """All rows plus what the gate decided; `exit_code` is 1 when a gating row regressed."""

    rows: list[Row]
    config: CompareConfig
    baseline: str
    current: str
    verdicts: dict[str, str | None] = field(default_factory=dict)
    fatal: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.status == "regressed"]

    @property
    def exit_code(self) -> int:
        return DECIDED_NO if self.regressions or self.fatal else OK

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; NaN/inf become null or strings so the file is strict JSON."""
        return {
            "baseline": self.baseline,
            "current": self.current,
            "verdicts": self.verdicts,
            "config": asdict(self.config),
            "fatal": self.fatal,
            "regressed": [f"{r.model}/{r.dataset}/{r.metric}" for r in self.regressions],
            "exit_code": self.exit_code,
            "rows": [{k: _json_number(v) for k, v in asdict(r).items()} for r in self.rows],
        }


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


# --- statistics ------------------------------------------------------------------------------


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


def quantile(x: np.ndarray, q: float) -> float:
    """Percentile with failures as +inf (interpolating next to +inf gives +inf, not NaN)."""
    if len(x) == 0:
        return math.nan
    with np.errstate(invalid="ignore"):
        v = float(np.quantile(x, q))
    return math.inf if math.isnan(v) else v


def log_quantile_se(x: np.ndarray, q: float, z: float) -> float:
    """SE of ln(q-th percentile) from order statistics at nq -/+ z*sqrt(nq(1-q)) (statistics.md).

    +inf when the interval reaches a failure (+inf) or runs off the sample: too few requests.
    """
    x = np.sort(np.asarray(x, dtype="float64"))
    n = len(x)
    if n < 2:
        return math.inf
    half = z * math.sqrt(n * q * (1 - q))
    lo, hi = math.floor(n * q - half), math.ceil(n * q + half)
    if lo < 1 or hi > n:
        return math.inf
    a, b = x[lo - 1], x[hi - 1]
    if not (a > 0 and math.isfinite(b)):
        return math.inf
    return (math.log(b) - math.log(a)) / (2 * z)


def _percentile_row(
    row: Row, base: np.ndarray, cur: np.ndarray, q: float, z: float, zp: float
) -> None:
    row.baseline, row.current = quantile(base, q), quantile(cur, q)
    se = math.hypot(log_quantile_se(base, q, z), log_quantile_se(cur, q, z))
    row.se = se
    row.mde = math.exp((z + zp) * se) - 1 if math.isfinite(se) else math.inf
    if not (row.baseline > 0 and math.isfinite(row.baseline)) or not math.isfinite(se):
        row.change = row.current / row.baseline - 1 if row.baseline else math.nan
        row.note = "too few requests (or failures) for this percentile's interval"
        return
    ratio = row.current / row.baseline
    row.change = ratio - 1
    if not math.isfinite(ratio):
        row.p, row.p_improve = 0.0, 1.0
        return
    stat = math.log(ratio) / se if se > 0 else math.copysign(math.inf, math.log(ratio) or 1)
    row.p, row.p_improve = float(stats.norm.sf(stat)), float(stats.norm.cdf(stat))


def _nightly_percentile_row(
    row: Row, nights_base: list[np.ndarray], cur: np.ndarray, q: float, alpha_m: float, power: float
) -> None:
    """Mean log percentile of the last 2 nights vs the older nights, t bound from their spread."""
    logs = [
        math.log(quantile(x, q)) if 0 < quantile(x, q) < math.inf else math.nan for x in nights_base
    ]
    c = quantile(cur, q)
    recent = [math.log(c) if 0 < c < math.inf else math.nan, logs[0]]
    ref = np.array(logs[1:])
    row.baseline, row.current = math.exp(float(np.nanmean(ref))), c
    row.nights = len(ref)
    if np.isnan(recent).any() or np.isnan(ref).any() or len(ref) < 2:
        row.note = "a night's percentile is not finite"
        row.change = row.current / row.baseline - 1
        return
    diff = float(np.mean(recent) - ref.mean())
    sd = float(ref.std(ddof=1))
    dof = len(ref) - 1
    se = sd * math.sqrt(1 / 2 + 1 / len(ref))
    row.se, row.change = se, math.exp(diff) - 1
    row.mde = math.exp((stats.t.isf(alpha_m, dof) + stats.t.isf(1 - power, dof)) * se) - 1
    if se == 0:
        row.p, row.p_improve = (0.0, 1.0) if diff > 0 else (1.0, 0.0 if diff < 0 else 1.0)
        return
    row.p, row.p_improve = float(stats.t.sf(diff / se, dof)), float(stats.t.cdf(diff / se, dof))
    row.note = f"nightly t test: last 2 nights vs {len(ref)} older nights"


def _error_row(
    row: Row, base: pd.DataFrame, cur: pd.DataFrame, alpha_m: float, zsum: float
) -> None:
    e_b, n_b = int(base["_error"].sum()), len(base)
    e_c, n_c = int(cur["_error"].sum()), len(cur)
    row.baseline, row.current = e_b / n_b, e_c / n_c
    row.change = row.current - row.baseline
    frac = n_c / (n_c + n_b)
    if e_b + e_c == 0:
        row.p = row.p_improve = 1.0
    else:
        row.p = float(stats.binomtest(e_c, e_b + e_c, frac, alternative="greater").pvalue)
        row.p_improve = float(stats.binomtest(e_c, e_b + e_c, frac, alternative="less").pvalue)
    pooled = (e_b + e_c) / (n_b + n_c)
    normal = zsum * math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n_b + 1 / n_c))
    k_min = math.ceil(math.log(alpha_m) / math.log(frac))  # errors needed with none in baseline
    row.mde = max(normal, k_min / n_c)


def _accuracy_row(
    row: Row, base: pd.DataFrame, cur: pd.DataFrame, alpha_m: float, z: float, zp: float
) -> None:
    kb = base.groupby(["item_id", "dataset_sha256"], observed=True)["_correct"].agg(
        ["mean", "size"]
    )
    kc = cur.groupby(["item_id", "dataset_sha256"], observed=True)["_correct"].agg(["mean", "size"])
    shared = kb.add_suffix("_b").join(kc.add_suffix("_c"), how="inner")
    row.baseline, row.current = float(base["_correct"].mean()), float(cur["_correct"].mean())
    n = len(shared)
    if n >= 2 and (shared["size_b"] == 1).all() and (shared["size_c"] == 1).all():
        xb, xc = shared["mean_b"].astype(bool), shared["mean_c"].astype(bool)
        b, c = int((xb & ~xc).sum()), int((~xb & xc).sum())
        row.test, row.n_baseline, row.n_current = "McNemar mid-p", n, n
        row.baseline, row.current = float(xb.mean()), float(xc.mean())
        row.p, row.p_improve = mcnemar_mid_p(b, c), mcnemar_mid_p(c, b)
        row.mde = _mcnemar_mde(n, max((b + c) / n, 1 / n), z, zp)
        row.note = f"b={b} c={c} shared items={n}"
    elif n >= 2:
        d = (shared["mean_b"] - shared["mean_c"]).to_numpy()
        sd, dof = float(d.std(ddof=1)), n - 1
        row.test, row.n_baseline, row.n_current = "paired t (per-item means)", n, n
        row.baseline, row.current = float(shared["mean_b"].mean()), float(shared["mean_c"].mean())
        if sd == 0:
            row.p = 0.0 if d.mean() > 0 else 1.0
            row.p_improve = 0.0 if d.mean() < 0 else 1.0
        else:
            tstat = float(d.mean()) / (sd / math.sqrt(n))
            row.p, row.p_improve = float(stats.t.sf(tstat, dof)), float(stats.t.cdf(tstat, dof))
        row.mde = (stats.t.isf(alpha_m, dof) + zp) * max(sd, 1 / math.sqrt(n)) / math.sqrt(n)
        row.note = f"shared items={n}"
    else:
        kb_, nb, kc_, nc = (
            int(base["_correct"].sum()),
            len(base),
            int(cur["_correct"].sum()),
            len(cur),
        )
        pooled = (kb_ + kc_) / (nb + nc)
        se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / nb + 1 / nc))
        stat = (kb_ / nb - kc_ / nc) / se
        row.test = "two-proportion score test"
        row.p, row.p_improve = float(stats.norm.sf(stat)), float(stats.norm.cdf(stat))
        row.mde = (z + zp) * se
        row.note = "no shared items"
    row.change = row.current - row.baseline


def _mcnemar_mde(n: int, psi: float, z: float, zp: float) -> float:
    """Smallest drop d with n >= ((z*sqrt(psi) + zp*sqrt(psi - d^2)) / d)^2 (statistics.md)."""
    lo, hi = 1e-6, math.sqrt(psi)

    def needed(d: float) -> float:
        return ((z * math.sqrt(psi) + zp * math.sqrt(max(psi - d * d, 0.0))) / d) ** 2

    if needed(hi) > n:
        return hi
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if needed(mid) > n else (lo, mid)
    return hi


def _mannwhitney_row(
    row: Row, base: np.ndarray, cur: np.ndarray, higher_worse: bool, z: float, zp: float
) -> None:
    use_mean = row.metric == "cost_per_item"
    agg = np.mean if use_mean else np.median
    row.baseline = float(agg(base)) if len(base) else math.nan
    row.current = float(agg(cur)) if len(cur) else math.nan
    if len(base) < 2 or len(cur) < 2 or not row.baseline:
        row.note = "too few rows"
        return
    row.change = row.current / row.baseline - 1
    worse, better = ("less", "greater") if higher_worse else ("greater", "less")
    row.p = float(stats.mannwhitneyu(base, cur, alternative=worse).pvalue)
    row.p_improve = float(stats.mannwhitneyu(base, cur, alternative=better).pvalue)
    if use_mean:
        spread = math.sqrt(base.var(ddof=1) / len(base) + cur.var(ddof=1) / len(cur))
        row.mde = (z + zp) * spread / row.baseline
    else:
        lb, lc = np.log(base[base > 0]), np.log(cur[cur > 0])
        spread = math.sqrt(lb.var(ddof=1) / len(lb) + lc.var(ddof=1) / len(lc)) / math.sqrt(
            3 / math.pi
        )
        row.mde = 1 - math.exp(-(z + zp) * spread)


# --- the comparison --------------------------------------------------------------------------


def _prepared(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.reset_index(drop=True)
    out = prepare(rows)
    out["run_id"] = rows.loc[out.index, "run_id"].astype(str)
    out["started"] = rows.loc[out.index, "run_started_at"] if "run_started_at" in rows else ""
    for c in ("model", "dataset", "item_id", "dataset_sha256"):
        out[c] = out[c].astype(str)
    return out


def compare(
    baseline_rows: pd.DataFrame,
    current_rows: pd.DataFrame,
    config: CompareConfig,
    *,
    baseline_label: str = "baseline",
    current_label: str = "current",
    verdicts: dict[str, str | None] | None = None,
) -> CompareResult:
    """Compare two record tables (rows as read from run dirs or history; `run_id` column
    tells nights apart, `run_started_at` orders them). Pure: no files, no network."""
    base_all, cur_all = _prepared(baseline_rows), _prepared(current_rows)
    fatal = [
        f"{m}: {int(n)} {t} error(s) - fix credentials/balance, this is not statistics"
        for (m, t), n in cur_all[cur_all["error_type"].isin(FATAL_ERRORS)]
        .groupby(["model", "error_type"], observed=True)
        .size()
        .items()
        if n
    ]
    base_all = base_all[~base_all["error_type"].isin(FATAL_ERRORS)]
    cur_all = cur_all[~cur_all["error_type"].isin(FATAL_ERRORS)]
    groups = sorted(
        set(map(tuple, cur_all[["model", "dataset"]].drop_duplicates().to_numpy()))
        & set(map(tuple, base_all[["model", "dataset"]].drop_duplicates().to_numpy()))
    )
    gating = [m for m in config.gating if m not in NEVER_GATE]
    m_family = max(1, len(groups) * len(gating))
    alpha_m = config.alpha / m_family
    z, zp = float(stats.norm.isf(alpha_m)), float(stats.norm.isf(1 - config.power))
    rows: list[Row] = []
    for model, dataset in groups:
        base = base_all[(base_all["model"] == model) & (base_all["dataset"] == dataset)]
        cur = cur_all[(cur_all["model"] == model) & (cur_all["dataset"] == dataset)]
        nights = _nights(base)
        for metric, (kind, column, q, higher_worse) in METRICS.items():
            row = Row(
                model=model, dataset=dataset, metric=metric, test="", unit="relative",
                baseline=math.nan, current=math.nan, change=math.nan,
                n_baseline=0, n_current=0, threshold=config.threshold(metric),
                gating=metric in gating, nights=len(nights),
            )  # fmt: skip
            if kind == "percentile":
                tb, tc = base[base["_timed"]], cur[cur["_timed"]]
                if column == "itl_p50_s":
                    tb, tc = tb[np.isfinite(tb[column])], tc[np.isfinite(tc[column])]
                xb, xc = tb[column].to_numpy("float64"), tc[column].to_numpy("float64")
                row.n_baseline, row.n_current = len(xb), len(xc)
                if len(nights) >= config.min_history_nights:
                    row.test = "nightly t on log percentile"
                    per_night = [
                        tb.loc[tb["run_id"] == r, column].to_numpy("float64") for r in nights
                    ]
                    _nightly_percentile_row(row, per_night, xc, q, alpha_m, config.power)
                elif len(xb) and len(xc):
                    row.test = "log percentile ratio (order-statistic SE)"
                    _percentile_row(row, xb, xc, q, z, zp)
            elif kind == "error_rate":
                row.test, row.unit = "exact conditional binomial", "points"
                row.n_baseline, row.n_current = len(base), len(cur)
                if len(base) and len(cur):
                    _error_row(row, base, cur, alpha_m, z + zp)
            elif kind == "accuracy":
                row.unit = "points"
                ab, ac = base[base["_in_accuracy"]], cur[cur["_in_accuracy"]]
                row.n_baseline, row.n_current = len(ab), len(ac)
                if len(ab) and len(ac):
                    _accuracy_row(row, ab, ac, alpha_m, z, zp)
            else:
                row.test = "Mann-Whitney U"
                tb, tc = base[base["_timed"]], cur[cur["_timed"]]
                if column == "output_tokens_per_s":
                    tb, tc = tb[~tb["_error"]], tc[~tc["_error"]]
                xb = tb[column].to_numpy("float64")
                xc = tc[column].to_numpy("float64")
                xb, xc = xb[np.isfinite(xb)], xc[np.isfinite(xc)]
                row.n_baseline, row.n_current = len(xb), len(xc)
                _mannwhitney_row(row, xb, xc, higher_worse, z, zp)
            rows.append(row)
    _decide(rows, config)
    return CompareResult(
        rows=rows,
        config=config,
        baseline=baseline_label,
        current=current_label,
        verdicts=dict(verdicts or {}),
        fatal=fatal,
    )


def _nights(base: pd.DataFrame) -> list[str]:
    """Baseline run ids, newest first (by start time when known)."""
    runs = base[["run_id", "started"]].drop_duplicates("run_id")
    return list(runs.sort_values(["started", "run_id"], ascending=False)["run_id"])


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
    """Holm over the gating family, BH over the rest; then each row's status."""
    for family, adjust, level in (
        ([r for r in rows if r.gating], holm, config.alpha),
        ([r for r in rows if not r.gating], bh, config.fdr),
    ):
        for r in family:
            if math.isnan(r.p) and (r.n_baseline and r.n_current):
                r.status = "not measurable"
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
            elif not (r.mde <= r.threshold):
                r.status = "not measurable"
            else:
                r.status = "ok"
