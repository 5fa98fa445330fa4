"""Per-night statistics of record tables: what compare tests, computed once per night.

Pure: tables in, tables out. A "night" is one `run_id` (a sweep is one run: the command gives
all its jobs the sweep's id). For every night x model x dataset this keeps

- `stats`: each latency-like metric's value (the one `percentile` of analysis/tables.py, or a
  mean for cost), its log and the SE of that log. The SE holds under autocorrelated requests:
  the order-statistic SE of statistics.md times a batch-means inflation (consecutive requests
  in batches of ~sqrt(n); under AR(1) rho 0.5 the plain order-statistic SE is ~1.35x too small);
- `errors`: requests and errors per one-minute window of request start (errors come in
  bursts; compare estimates their over-dispersion from these windows);
- `items`: per item the number of answers and of correct ones (accuracy is paired on items).

Why a separate step: a nightly gate over 20 nights x 20 models reads ~500k rows; compare only
needs these few thousand numbers, and the calibration bench (bench/bench_compare_calibration.py)
reuses them across pipelines instead of re-reading rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lavabench.analysis.tables import percentile, prepare

FATAL_ERRORS = ("auth_failed", "insufficient_balance")
WINDOW_S = 60.0  # error-rate windows: one minute of request start times

# name -> (kind, column, quantile, higher_is_worse); kinds: percentile, mean, error_rate, accuracy
METRICS: dict[str, tuple[str, str, float, bool]] = {
    "ttft_p50": ("percentile", "_ttft", 0.5, True),
    "ttft_p90": ("percentile", "_ttft", 0.9, True),
    "ttft_p99": ("percentile", "_ttft", 0.99, True),
    "e2e_p50": ("percentile", "_e2e", 0.5, True),
    "e2e_p90": ("percentile", "_e2e", 0.9, True),
    "itl_p50": ("percentile", "itl_p50_s", 0.5, True),
    "output_tokens_per_s": ("percentile", "output_tokens_per_s", 0.5, False),
    "error_rate": ("error_rate", "_error", 0.0, True),
    "accuracy": ("accuracy", "_correct", 0.0, False),
    "cost_per_item": ("mean", "_cost", 0.0, True),
}
# Over successful requests only: ITL and speed do not exist for a failure.
OK_ONLY = ("itl_p50_s", "output_tokens_per_s")
LOG_METRICS = tuple(m for m, spec in METRICS.items() if spec[0] in ("percentile", "mean"))


@dataclass(frozen=True)
class Nights:
    """Per-night summaries of one side of a comparison (see the module docstring)."""

    stats: pd.DataFrame  # night, model, dataset, metric, value, log, log_se, n
    errors: pd.DataFrame  # night, model, dataset, window, n, errors
    items: pd.DataFrame  # night, model, dataset, item_id, dataset_sha256, answers, correct
    order: pd.DataFrame  # night, started: newest first
    fatal: list[str]

    def nights(self) -> list[str]:
        return list(self.order["night"])

    def with_night(self, night: str) -> Nights:
        """The same summaries with every night renamed to `night` (one side = one night)."""
        order = pd.DataFrame({"night": [night], "started": [self.order["started"].max()]})
        return Nights(
            stats=self.stats.assign(night=night),
            errors=self.errors.assign(night=night),
            items=self.items.assign(night=night),
            order=order,
            fatal=self.fatal,
        )


def concat_nights(parts: list[Nights]) -> Nights:
    """Several nights' summaries as one side (the bench builds pipelines from parts)."""
    order = pd.concat([p.order for p in parts], ignore_index=True)
    order = order.drop_duplicates("night").sort_values(["started", "night"], ascending=False)
    return Nights(
        stats=pd.concat([p.stats for p in parts], ignore_index=True),
        errors=pd.concat([p.errors for p in parts], ignore_index=True),
        items=pd.concat([p.items for p in parts], ignore_index=True),
        order=order.reset_index(drop=True),
        fatal=[f for p in parts for f in p.fatal],
    )


# --- the SE of a log percentile ---------------------------------------------------------------


def batch_means_inflation(values: np.ndarray) -> float:
    """Variance inflation of a mean of `values` (in request order) from batch means, >= 1.

    Batches of ~sqrt(n) consecutive requests: long-run variance = batch size x variance of
    the batch means. Below 10 batches there is no estimate and 1.0 is returned (noted by the
    caller through n). Floored at 1 so independent requests are not made to look tighter.
    """
    v = np.asarray(values, dtype="float64")
    n = len(v)
    size = max(10, round(math.sqrt(n)))
    batches = n // size
    if batches < 10:
        return 1.0
    iid = float(v.var())
    if iid == 0:
        return 1.0
    means = v[: batches * size].reshape(batches, size).mean(axis=1)
    return max(1.0, size * float(means.var(ddof=1)) / iid)


def log_quantile_se(x: np.ndarray, q: float, z: float) -> float:
    """SE of ln(q-th percentile): order statistics at nq -/+ z*sqrt(nq(1-q)) (statistics.md),
    times sqrt(batch-means inflation) of the indicator x <= q-hat (x in request order).

    NaN (missing) values are left out. When only the upper order statistic is a failure
    (+inf), the lower half-interval stands for both; +inf when the percentile itself is a
    failure or the interval runs off the sample (too few requests).
    """
    x = np.asarray(x, dtype="float64")
    x = x[~np.isnan(x)]
    n = len(x)
    if n < 2:
        return math.inf
    s = np.sort(x)
    half = z * math.sqrt(n * q * (1 - q))
    lo, hi = math.floor(n * q - half), math.ceil(n * q + half)
    if lo < 1 or hi > n or not s[lo - 1] > 0:
        return math.inf
    qhat = percentile(s, q)
    if not math.isfinite(qhat):
        return math.inf
    if math.isfinite(s[hi - 1]):
        se = (math.log(s[hi - 1]) - math.log(s[lo - 1])) / (2 * z)
    else:
        se = (math.log(qhat) - math.log(s[lo - 1])) / z
    return se * math.sqrt(batch_means_inflation((x <= qhat).astype("float64")))


def _log_stat(kind: str, x: np.ndarray, q: float, z: float) -> tuple[float, float, int]:
    """(value, SE of its log, n) of one night's values in request order."""
    x = x[~np.isnan(x)]
    if kind == "mean":
        x = x[np.isfinite(x)]
        if len(x) < 2 or x.mean() <= 0:
            return (float(x.mean()) if len(x) else math.nan, math.inf, len(x))
        f = batch_means_inflation(x)
        return float(x.mean()), float(x.std(ddof=1) / x.mean() * math.sqrt(f / len(x))), len(x)
    return percentile(x, q), log_quantile_se(x, q, z), len(x)


# --- summarising ------------------------------------------------------------------------------


def _prepared(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.reset_index(drop=True)
    out = prepare(rows)
    idx = out.index
    out["night"] = rows.loc[idx, "run_id"].astype(str).to_numpy()
    started = rows["run_started_at"] if "run_started_at" in rows else pd.Series("", rows.index)
    out["started"] = started.loc[idx].fillna("").astype(str).to_numpy()
    if "started_at" in rows:
        t = pd.to_datetime(rows.loc[idx, "started_at"], utc=True, errors="coerce")
        out["_t"] = (t - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    else:
        out["_t"] = np.nan
    for c in ("model", "dataset", "item_id", "dataset_sha256"):
        out[c] = out[c].astype(str)
    return out.reset_index(drop=True)


def _windows(t: np.ndarray) -> np.ndarray:
    """One-minute windows of request start; without start times, 60 consecutive requests."""
    if len(t) and np.isfinite(t).all():
        return ((t - t.min()) // WINDOW_S).astype("int64")
    return np.arange(len(t), dtype="int64") // 60


def _group_stats(cols: dict[str, np.ndarray], z: float) -> tuple[list[tuple], list[tuple]]:
    """Stats rows and error-window rows of one night x model x dataset (arrays in order)."""
    timed = cols["_timed"]
    ok = timed & ~cols["_error"]
    stats_rows = []
    for metric in LOG_METRICS:
        kind, column, q, _ = METRICS[metric]
        x = cols[column]
        x = x if kind == "mean" else x[ok if column in OK_ONLY else timed]
        if column in OK_ONLY:
            x = x[np.isfinite(x)]
        value, se, n = _log_stat(kind, x, q, z)
        # +inf stays +inf (a failure-driven percentile); 0 or missing has no log: NaN
        log = math.log(value) if value > 0 else math.nan
        stats_rows.append((metric, value, log, se, n))
    windows = _windows(cols["_t"])
    n_w = np.bincount(windows)
    e_w = np.bincount(windows, weights=cols["_error"].astype("float64"))
    keep = np.flatnonzero(n_w > 0)
    error_rows = list(zip(keep, n_w[keep], e_w[keep].astype("int64"), strict=True))
    return stats_rows, error_rows


_COLUMNS = ("_timed", "_error", "_t", "_ttft", "_e2e", "itl_p50_s", "output_tokens_per_s", "_cost")


def summarise(rows: pd.DataFrame, z: float) -> Nights:
    """Per-night summaries of a record table (`run_id` tells nights apart,
    `run_started_at` orders them, `started_at` of each request gives its minute). `z` is the
    z of the tests that will use the order-statistic SEs (statistics.md: their own z)."""
    p = _prepared(rows)
    is_fatal = p["error_type"].isin(FATAL_ERRORS).to_numpy()
    fatal = [
        f"{m}: {int(n)} {t} error(s) - fix credentials/balance, this is not statistics"
        for (m, t), n in p[is_fatal].groupby(["model", "error_type"], observed=True).size().items()
        if n
    ]
    p = p[~is_fatal]
    codes, keys = pd.MultiIndex.from_frame(p[["night", "model", "dataset"]]).factorize()
    order = np.lexsort((np.nan_to_num(p["_t"].to_numpy("float64")), codes))
    arrays = {c: p[c].to_numpy()[order] for c in _COLUMNS}
    for c in ("_ttft", "_e2e", "itl_p50_s", "output_tokens_per_s", "_cost", "_t"):
        arrays[c] = arrays[c].astype("float64")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    stats_rows, error_rows = [], []
    starts = np.r_[0, bounds] if len(order) else np.array([], dtype="int64")
    for lo, hi in zip(starts, np.r_[bounds, len(order)][: len(starts)], strict=True):
        night, model, dataset = keys[codes[order[lo]]]
        s, e = _group_stats({c: a[lo:hi] for c, a in arrays.items()}, z)
        stats_rows += [(night, model, dataset, *r) for r in s]
        error_rows += [(night, model, dataset, *r) for r in e]
    graded = p[p["_in_accuracy"].to_numpy()]
    keys = ["night", "model", "dataset", "item_id", "dataset_sha256"]
    items = graded.groupby(keys, sort=False)["_correct"].agg(answers="size", correct="sum")
    nights = p[["night", "started"]].drop_duplicates("night")
    return Nights(
        stats=pd.DataFrame(
            stats_rows,
            columns=["night", "model", "dataset", "metric", "value", "log", "log_se", "n"],
        ),
        errors=pd.DataFrame(
            error_rows, columns=["night", "model", "dataset", "window", "n", "errors"]
        ),
        items=items.reset_index(),
        order=nights.sort_values(["started", "night"], ascending=False).reset_index(drop=True),
        fatal=fatal,
    )
