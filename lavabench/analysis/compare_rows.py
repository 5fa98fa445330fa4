"""One compare row per (model, dataset, metric): its test, change, MDE and what it still needs.

Pure. The rules (which test when, and why) are in analysis/compare.py's docstring; this module
builds the rows from per-night summaries (analysis/nights.py); compare.py decides them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

from lavabench.analysis.compare_config import CompareConfig
from lavabench.analysis.nights import LOG_METRICS, Nights
from lavabench.analysis.quality import mcnemar_mid_p

MAX_NIGHTS = 365  # "need N nights" looks this far ahead


@dataclass
class Row:
    """One compare row. `change` is relative (ratio-1) or absolute (rates); see `unit`.

    For a nightly latency row, `baseline`/`current`/`change` are the tested quantities (the
    reference nights' and the last K nights' geometric means); `tonight`/`tonight_change` are
    tonight alone against the same reference (the `suspect` warning's numbers)."""

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
    target: float = math.nan  # the change the row must be able to detect (MDE <= target)
    p: float = math.nan
    p_improve: float = math.nan
    p_adjusted: float = math.nan
    mde: float = math.nan
    se: float = math.nan
    nights: int = 1
    status: str = "n/a"
    note: str = ""
    tonight: float = math.nan
    tonight_change: float = math.nan
    p_tonight: float = math.nan
    warning: str = ""
    need: str = ""
    need_nights: int | None = None
    need_factor: float | None = None

    @property
    def can_detect(self) -> bool:
        """The row's sample could detect its target change (MDE <= target; the target is
        the threshold, except `nightly.detect` for latency rows against history)."""
        return bool(self.mde <= self.target)


@dataclass(frozen=True)
class Setting:
    """What one compare knows about its sides, shared by every row."""

    config: CompareConfig
    alpha_m: float  # per-row level (family alpha / gating rows)
    z: float
    zp: float
    history: bool  # the baseline is nights of history (else one run directory)
    models: int  # model x dataset groups on both sides: the pool of the nightly spread
    same_session: bool  # a one-run baseline started within same_session_hours


def _row(setting: Setting, model: str, dataset: str, metric: str, **kw: str) -> Row:
    cfg = setting.config
    row = Row(
        model=model, dataset=dataset, metric=metric, test="", unit="relative",
        baseline=math.nan, current=math.nan, change=math.nan, n_baseline=0, n_current=0,
        threshold=cfg.threshold(metric), target=cfg.target(metric, nightly=setting.history),
        gating=metric in cfg.gating and metric != "ttft_p99",
    )  # fmt: skip
    for key, value in kw.items():
        setattr(row, key, value)
    return row


def missing_rows(setting: Setting, groups: list[tuple[str, str]], why: str) -> list[Row]:
    """A model (x dataset) on one side only: its gating rows, `missing`, never dropped."""
    return [
        _row(setting, m, d, metric, status="missing", note=why, test="-")
        for m, d in groups
        for metric in setting.config.gating
    ]


def outage_nights(base: Nights, share: float) -> dict[tuple[str, str], list[str]]:
    """Per (model, dataset): baseline nights whose error share is above `share`."""
    per = base.errors.groupby(["model", "dataset", "night"], sort=False)[["n", "errors"]].sum()
    bad = per[per["errors"] > share * per["n"]].reset_index()
    out: dict[tuple[str, str], list[str]] = {}
    for model, dataset, night in bad[["model", "dataset", "night"]].to_numpy():
        out.setdefault((str(model), str(dataset)), []).append(str(night))
    return out


def _p_one_sided(diff: float, se: float, dof: float) -> tuple[float, float]:
    """(p worse, p better) of diff/se against t(dof) (normal when dof is inf). scipy.special
    rather than scipy.stats: the same functions without ~100 us of argument checks per call."""
    if math.isinf(diff):
        return (0.0, 1.0) if diff > 0 else (1.0, 0.0)
    if se == 0:
        return (0.0 if diff > 0 else 1.0, 0.0 if diff < 0 else 1.0)
    x = diff / se
    if math.isinf(dof):
        return float(special.ndtr(-x)), float(special.ndtr(x))
    return float(special.stdtr(dof, -x)), float(special.stdtr(dof, x))


def _crit(alpha: float, dof: float | np.ndarray) -> float | np.ndarray:
    """Upper-alpha quantile of t(dof), normal where dof is inf."""
    if isinstance(dof, np.ndarray):
        return special.stdtrit(dof, 1 - alpha)
    return _crit_scalar(alpha, float(dof))


@functools.lru_cache(maxsize=4096)
def _crit_scalar(alpha: float, dof: float) -> float:
    return float(-special.ndtri(alpha) if math.isinf(dof) else special.stdtrit(dof, 1 - alpha))


# --- latency-like rows --------------------------------------------------------------------------


@dataclass
class _Series:
    """One row's nights: tonight and the baseline nights kept (newest first, finite logs)."""

    tonight: float
    tonight_se: float
    tonight_n: int
    logs: np.ndarray
    ses: np.ndarray
    ns: np.ndarray
    left_out: list[str]


_Stat = tuple[float, float, int]  # log, SE of the log, n


def stat_index(stats: pd.DataFrame) -> dict[tuple[str, str, str], dict[str, _Stat]]:
    """(model, dataset, metric) -> night -> (log, log SE, n): one pass, plain dicts (a
    pipeline of 20 nights x 20 models has ~3k of them; pandas per lookup cost seconds)."""
    out: dict[tuple[str, str, str], dict[str, _Stat]] = {}
    columns = ("night", "model", "dataset", "metric", "log", "log_se", "n")
    for night, model, dataset, metric, log, se, n in zip(
        *(stats[c].to_list() for c in columns), strict=True
    ):
        out.setdefault((model, dataset, metric), {})[night] = (log, se, n)
    return out


def _series(base: dict[str, _Stat], cur: dict[str, _Stat], kept: list[str]) -> _Series:
    t = next(iter(cur.values()), None)
    found = [(n, base[n]) for n in kept if n in base]
    left = [n for n, (log, _, _) in found if log == math.inf]
    good = [v for _, v in found if math.isfinite(v[0])]
    return _Series(
        tonight=float(t[0]) if t is not None else math.nan,
        tonight_se=float(t[1]) if t is not None else math.inf,
        tonight_n=int(t[2]) if t is not None else 0,
        logs=np.array([v[0] for v in good], dtype="float64"),
        ses=np.array([v[1] for v in good], dtype="float64"),
        ns=np.array([v[2] for v in good], dtype="int64"),
        left_out=left,
    )


def _nightly(setting: Setting, s: _Series) -> bool:
    cfg = setting.config
    return setting.history and len(s.logs) >= cfg.recent_nights - 1 + cfg.min_reference_nights


def _reference(setting: Setting, s: _Series) -> np.ndarray:
    return s.logs[setting.config.recent_nights - 1 :] if _nightly(setting, s) else s.logs


def latency_rows(
    setting: Setting,
    base: Nights,
    cur: Nights,
    groups: list[tuple[str, str]],
    outages: dict[tuple[str, str], list[str]],
) -> list[Row]:
    """Every latency-like row: the night-to-night spread pooled per metric over the models of
    this compare first (each model's reference nights), then each row's test."""
    gb, gc = stat_index(base.stats), stat_index(cur.stats)
    order = base.nights()
    series: dict[tuple[str, str, str], _Series] = {}
    pool: dict[str, list[float]] = {m: [0.0, 0.0, 0.0] for m in LOG_METRICS}  # ss, dof, rows
    for model, dataset in groups:
        kept = [n for n in order if n not in outages.get((model, dataset), [])]
        for metric in LOG_METRICS:
            key = (model, dataset, metric)
            s = series[key] = _series(gb.get(key, {}), gc.get(key, {}), kept)
            ref = _reference(setting, s)
            if len(ref) >= 2:
                pool[metric][0] += float(ref.var(ddof=1)) * (len(ref) - 1)
                pool[metric][1] += len(ref) - 1
                pool[metric][2] += 1
    rows = []
    for (model, dataset, metric), s in series.items():
        row = _row(setting, model, dataset, metric)
        ss, dof, members = pool[metric]
        spread = (ss / dof if dof else math.nan, dof, int(members))
        _latency_row(row, setting, s, spread)
        if s.left_out:
            row.note = f"left out (failure-driven value): {', '.join(s.left_out)}; " + row.note
        rows.append(row)
    return rows


def _latency_row(row: Row, setting: Setting, s: _Series, spread: tuple[float, float, int]) -> None:
    row.n_current = s.tonight_n
    row.tonight = math.exp(s.tonight) if not math.isnan(s.tonight) else math.nan
    if math.isnan(s.tonight) or not len(s.logs):
        row.test = "-"
        row.note = "no value tonight" if math.isnan(s.tonight) else "no finite baseline night"
        return
    if _nightly(setting, s):
        _nightly_row(row, setting, s, spread)
    else:
        _allowance_row(row, setting, s, spread)


def _spread_of(ref: np.ndarray, spread: tuple[float, float, int]) -> tuple[float, float, str]:
    """(variance, dof, how): the pool, or the model's own spread when it is only itself or
    significantly above the pool (F test at 1 %: one unstable model must not alarm)."""
    pool_var, pool_dof, members = spread
    own_var, own_dof = float(ref.var(ddof=1)), len(ref) - 1
    if members <= 1 or not pool_var > 0:
        return own_var, own_dof, "own spread"
    if own_var / pool_var > special.fdtri(own_dof, pool_dof, 0.99):  # = stats.f.isf(0.01, ...)
        return own_var, own_dof, "own spread (above the pool)"
    return pool_var, pool_dof, f"spread pooled over {members} models"


def _nightly_row(row: Row, setting: Setting, s: _Series, spread: tuple[float, float, int]) -> None:
    """Mean log of the last K nights vs the older nights' mean, t bound from their spread."""
    cfg = setting.config
    k = cfg.recent_nights
    recent, ref = np.array([s.tonight, *s.logs[: k - 1]]), s.logs[k - 1 :]
    var, dof, how = _spread_of(ref, spread)
    mean_ref = float(ref.mean())
    diff = float(recent.mean()) - mean_ref
    se = math.sqrt(var * (1 / k + 1 / len(ref)))
    row.test = f"last {k} nights vs {len(ref)} older (t, {how})"
    row.nights, row.se = len(ref), se
    row.n_baseline = int(s.ns[k - 1 :].sum())
    row.baseline, row.current = math.exp(mean_ref), math.exp(float(recent.mean()))
    row.change = math.exp(diff) - 1
    row.tonight_change = math.exp(s.tonight - mean_ref) - 1
    row.p, row.p_improve = _p_one_sided(diff, se, dof)
    row.p_tonight = _p_one_sided(s.tonight - mean_ref, math.sqrt(var * (1 + 1 / len(ref))), dof)[0]
    crit = float(_crit(setting.alpha_m, dof) + _crit(1 - cfg.power, dof))
    row.mde = math.exp(crit * se) - 1
    if not row.can_detect:
        members = max(1, spread[2]) if how.startswith("spread pooled") else 1
        _need_nights(row, setting, var, members, len(s.logs))


def _allowance_row(
    row: Row, setting: Setting, s: _Series, spread: tuple[float, float, int]
) -> None:
    """Tonight vs the baseline nights' mean; drift allowance (or the measured spread, if
    larger) on top of each side's sampling SE. A same-session one-run baseline: no drift."""
    cfg = setting.config
    n = len(s.logs)
    d = 0.0 if setting.same_session else cfg.drift_allowance
    sampling = s.tonight_se**2 + float(np.mean(s.ses**2)) / n
    var, dof = sampling + d * d * (1 + 1 / n), math.inf
    how = "assumes no drift" if d == 0 else f"drift allowance {d:.0%}"
    pool_var, pool_dof, members = spread
    if setting.history and pool_dof > 0 and pool_var * (1 + 1 / n) > var:
        var, dof, how = pool_var * (1 + 1 / n), pool_dof, f"measured spread ({members} models)"
    diff = s.tonight - float(s.logs.mean())
    row.test = f"tonight vs {n} night(s) ({how})" if setting.history else f"one run ({how})"
    row.nights, row.n_baseline = n, int(s.ns.sum())
    row.baseline, row.current = math.exp(float(s.logs.mean())), row.tonight
    row.change = math.exp(diff) - 1
    if math.isinf(s.tonight):
        row.p, row.p_improve = 0.0, 1.0
        row.mde = math.inf
        row.note = "tonight's value is a failure (+inf)"
        return
    if not math.isfinite(var):
        row.mde = math.inf
        row.note = "too few requests (or failures) for this percentile's interval"
        return
    row.se = math.sqrt(var)
    row.p, row.p_improve = _p_one_sided(diff, row.se, dof)
    crit = float(_crit(setting.alpha_m, dof) + _crit(1 - cfg.power, dof))
    row.mde = math.exp(crit * row.se) - 1
    if row.can_detect:
        return
    target = (math.log1p(row.target) / crit) ** 2
    drift_var = var - sampling
    if drift_var < target and sampling > 0:
        row.need_factor = sampling / (target - drift_var)
        row.need = f"~{row.need_factor:.1f}x the requests"
    if setting.history or d > 0:
        per_night = max(var - sampling, d * d) + s.tonight_se**2
        _need_nights(row, setting, per_night, setting.models, n)


def _need_nights(row: Row, setting: Setting, var: float, members: int, have: int) -> None:
    """Nights of history the nightly test needs for MDE <= target at this spread."""
    cfg = setting.config
    k, target = cfg.recent_nights, math.log1p(row.target)
    n_ref = np.arange(cfg.min_reference_nights, MAX_NIGHTS)
    dof = members * (n_ref - 1)
    crit = _crit(setting.alpha_m, dof) + _crit(1 - cfg.power, dof)
    enough = np.flatnonzero(crit * np.sqrt(var * (1 / k + 1 / n_ref)) <= target)
    if len(enough):
        row.need_nights = max(0, int(k - 1 + n_ref[enough[0]] - have))
        text = f"need {row.need_nights} more night(s)"
        row.need = f"{row.need} or {text}" if row.need else text
        return
    z = float(_crit(setting.alpha_m, math.inf) + _crit(1 - cfg.power, math.inf))
    floor = math.exp(z * math.sqrt(var / k)) - 1
    text = f"cannot see {row.target:.0%} at this drift (last-{k}-nights floor {floor:.0%})"
    row.need = f"{row.need}; {text}" if row.need else text


# --- error rate and accuracy --------------------------------------------------------------------


_Arrays = dict[str, np.ndarray]


class SideIndex:
    """Error windows and graded items of both sides as numpy arrays per (model, dataset),
    split once; items coded on one shared item key so per-item sums are bincounts (pandas
    per model cost ~50 ms each: seconds per 20-model compare)."""

    def __init__(self, base: Nights, cur: Nights) -> None:
        keys = pd.concat(
            [t["item_id"].astype(str) + "\x1f" + t["dataset_sha256"].astype(str)
             for t in (base.items, cur.items)]
        )  # fmt: skip
        codes, uniques = pd.factorize(keys)
        self.items_n = len(uniques)
        n_base = len(base.items)
        item_cols = ("night", "_code", "answers", "correct")
        self.items = [
            _split(base.items.assign(_code=codes[:n_base]), item_cols),
            _split(cur.items.assign(_code=codes[n_base:]), item_cols),
        ]
        error_cols = ("night", "n", "errors")
        self.errors = [_split(base.errors, error_cols), _split(cur.errors, error_cols)]


def _split(table: pd.DataFrame, columns: tuple[str, ...]) -> dict[tuple[str, str], _Arrays]:
    cols = {c: table[c].to_numpy() for c in columns}
    if "night" in cols:  # integer-coded nights: np.isin on strings costs ~10 ms per model
        cols["night"] = pd.Categorical(cols["night"]).codes.astype("int64")
        names = list(pd.Categorical(table["night"].to_numpy()).categories)
    groups = table.groupby(["model", "dataset"], sort=False, observed=True).indices
    out: dict[tuple[str, str], _Arrays] = {}
    for (model, dataset), idx in groups.items():
        arrays = {c: v[idx] for c, v in cols.items()}
        arrays["_names"] = np.array(names, dtype=object)
        out[(str(model), str(dataset))] = arrays
    return out


def _side(
    parts: dict[tuple[str, str], _Arrays], model: str, dataset: str, nights: list[str] | None
) -> _Arrays:
    arrays = parts.get((model, dataset))
    if arrays is None:
        empty = np.array([], dtype="float64")
        return {"night": np.array([], dtype=object), "n": empty, "errors": empty,
                "answers": empty, "correct": empty, "_code": np.array([], dtype="int64")}  # fmt: skip
    if nights is None:
        return arrays
    wanted = set(nights)
    codes = [i for i, name in enumerate(arrays["_names"]) if name in wanted]
    keep = np.isin(arrays["night"], np.array(codes, dtype="int64"))
    return {c: (v if c == "_names" else v[keep]) for c, v in arrays.items()}


def dispersion(w: _Arrays) -> float:
    """Over-dispersion of one side's error counts between one-minute windows (Pearson chi2 /
    dof around the side's rate), >= 1 (1 when there is nothing to estimate it from)."""
    n, e = w["n"].astype("float64"), w["errors"].astype("float64")
    p = e.sum() / n.sum() if n.sum() else 0.0
    if not (0 < p < 1 and len(n) > 1):
        return 1.0
    return max(1.0, float(((e - n * p) ** 2 / (n * p * (1 - p))).sum()) / (len(n) - 1))


def error_row(setting: Setting, index: SideIndex, model: str, dataset: str, kept: list[str]) -> Row:
    """Exact conditional binomial on error counts deflated by each side's own over-dispersion
    between one-minute windows (a burst of 25 errors in one minute is ~one event, not 25
    independent ones): effective counts e/phi of n/phi on each side. Pooling phi over both
    sides let a burst tonight hide in a long quiet history (3 of 4 A/A pipelines alarmed)."""
    row = _row(setting, model, dataset, "error_rate", test="exact conditional binomial")
    row.unit, row.nights = "points", len(kept)
    wb = _side(index.errors[0], model, dataset, kept)
    wc = _side(index.errors[1], model, dataset, None)
    e_b, n_b = int(wb["errors"].sum()), int(wb["n"].sum())
    e_c, n_c = int(wc["errors"].sum()), int(wc["n"].sum())
    row.n_baseline, row.n_current = n_b, n_c
    if not (n_b and n_c):
        row.note = "no requests on one side"
        return row
    phi_b, phi_c = dispersion(wb), dispersion(wc)
    row.baseline, row.current = e_b / n_b, e_c / n_c
    row.change = row.current - row.baseline
    frac = (n_c / phi_c) / (n_c / phi_c + n_b / phi_b)
    k_c, k_all = round(e_c / phi_c), round(e_c / phi_c + e_b / phi_b)
    if k_all == 0:
        row.p = row.p_improve = 1.0
    else:
        row.p = float(stats.binom.sf(k_c - 1, k_all, frac))
        row.p_improve = float(stats.binom.cdf(k_c, k_all, frac))
    pooled = (e_b + e_c) / (n_b + n_c)
    zsum = setting.z + setting.zp
    spread = max(pooled * (1 - pooled), 1e-12) * (phi_b / n_b + phi_c / n_c)
    k_min = math.ceil(math.log(setting.alpha_m) / math.log(frac)) if frac < 1 else 1
    row.mde = max(zsum * math.sqrt(spread), k_min * phi_c / n_c)
    row.test += (
        f" (over-dispersion {phi_c:.1f} tonight / {phi_b:.1f} baseline from "
        f"{len(wc['n'])} / {len(wb['n'])} one-minute windows)"
    )
    row.note = f"errors {e_c}/{n_c} vs {e_b}/{n_b}"
    if not row.can_detect:
        row.need_factor = (row.mde / row.target) ** 2
        row.need = f"~{row.need_factor:.1f}x the requests"
    return row


def _per_item(items: _Arrays, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(answers, correct) per item code."""
    codes = items["_code"].astype("int64")
    answers = np.bincount(codes, weights=items["answers"].astype("float64"), minlength=size)
    correct = np.bincount(codes, weights=items["correct"].astype("float64"), minlength=size)
    return answers, correct


def accuracy_row(
    setting: Setting, index: SideIndex, model: str, dataset: str, kept: list[str]
) -> Row:
    """McNemar mid-p on shared items; paired t on per-item means when items have several
    answers (history nights count as answers); no shared items: two-proportion score test."""
    row = _row(setting, model, dataset, "accuracy")
    row.unit, row.nights = "points", len(kept)
    ab, cb = _per_item(_side(index.items[0], model, dataset, kept), index.items_n)
    ac, cc = _per_item(_side(index.items[1], model, dataset, None), index.items_n)
    row.n_baseline, row.n_current = int(ab.sum()), int(ac.sum())
    if not (row.n_baseline and row.n_current):
        row.note = "no graded answers on one side"
        return row
    shared = (ab > 0) & (ac > 0)
    if shared.sum() >= 2:
        _paired_accuracy(row, setting, (ab[shared], cb[shared]), (ac[shared], cc[shared]))
    else:
        _unpaired_accuracy(row, setting, (ab.sum(), cb.sum()), (ac.sum(), cc.sum()))
    row.change = row.current - row.baseline
    if not row.can_detect:
        row.need_factor = (row.mde / row.target) ** 2
        row.need = f"~{row.need_factor:.1f}x the items (or answers per item)"
    return row


def _paired_accuracy(
    row: Row,
    setting: Setting,
    base: tuple[np.ndarray, np.ndarray],
    cur: tuple[np.ndarray, np.ndarray],
) -> None:
    (nb, kb), (nc, kc) = base, cur
    mean_b, mean_c = kb / nb, kc / nc
    n, z, zp = len(nb), setting.z, setting.zp
    row.baseline, row.current = float(mean_b.mean()), float(mean_c.mean())
    row.n_baseline, row.n_current = n, n
    if (nb == 1).all() and (nc == 1).all():
        xb, xc = mean_b.astype(bool), mean_c.astype(bool)
        b, c = int((xb & ~xc).sum()), int((~xb & xc).sum())
        row.test = "McNemar mid-p"
        row.p, row.p_improve = mcnemar_mid_p(b, c), mcnemar_mid_p(c, b)
        row.mde = _mcnemar_mde(n, max((b + c) / n, 1 / n), z, zp)
        row.note = f"b={b} c={c} shared items={n}"
        return
    d = mean_b - mean_c
    sd, dof = float(d.std(ddof=1)), n - 1
    row.test = "paired t (per-item means)"
    if sd == 0:
        row.p = 0.0 if d.mean() > 0 else 1.0
        row.p_improve = 0.0 if d.mean() < 0 else 1.0
    else:
        row.p, row.p_improve = _p_one_sided(float(d.mean()), sd / math.sqrt(n), dof)
    row.mde = (float(_crit(setting.alpha_m, dof)) + zp) * max(sd, 1 / math.sqrt(n)) / math.sqrt(n)
    row.note = f"shared items={n}"


def _unpaired_accuracy(
    row: Row, setting: Setting, base: tuple[float, float], cur: tuple[float, float]
) -> None:
    (nb, kb_), (nc, kc_) = base, cur
    pooled = (kb_ + kc_) / (nb + nc)
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / nb + 1 / nc))
    stat = (kb_ / nb - kc_ / nc) / se
    row.test = "two-proportion score test"
    row.baseline, row.current = kb_ / nb, kc_ / nc
    row.p, row.p_improve = float(stats.norm.sf(stat)), float(stats.norm.cdf(stat))
    row.mde = (setting.z + setting.zp) * se
    row.note = "no shared items"


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
