"""Pure: the one accuracy interval (Wilson), and its version for items answered K > 1 times.

Every accuracy bound in lavabench (tables, report, pick, quality summaries) comes from here,
so the report and `pick` can never disagree about a model's interval (statistics.md).

- One answer per item: the Wilson score interval. It is written in closed form, identical to
  `scipy.stats.binomtest(k, n).proportion_ci(method="wilson")` for integer k (a test checks),
  because the repeat case below needs it at a fractional k (the sum of item means).
- K > 1 answers per item: answers to one item are correlated, so the unit is the item. The
  item-cluster t bound (mean of item means ± t·sd/√items) collapses when item means have no
  spread (3 items, all right: sd 0, bound 1.0), so the bound used is the *weaker* of that and
  the Wilson bound on the item means (n = items): never tighter than answering each item once.
- Nothing graded (n = 0): NaN, not [0, 1]. An interval of [0, 1] reads like a measurement in a
  table; NaN reads as "no data", and `pick` rejects a model whose bound is NaN.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Literal

import numpy as np

Alternative = Literal["two-sided", "greater", "less"]


def _z(confidence: float, alternative: Alternative) -> float:
    tail = 1 - confidence if alternative != "two-sided" else (1 - confidence) / 2
    # the stdlib's normal quantile (scipy's norm.isf to ~1e-15): the end-of-run table needs
    # no scipy, whose import costs about a second in every `lavabench run` process
    return NormalDist().inv_cdf(1 - tail)


def wilson_interval(
    k: float, n: float, confidence: float = 0.95, alternative: Alternative = "two-sided"
) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (k may be fractional); NaNs at n=0.

    `alternative="greater"` gives the one-sided lower bound (high = 1), "less" the upper."""
    if n <= 0:
        return (math.nan, math.nan)
    z = _z(confidence, alternative)
    p = min(max(k / n, 0.0), 1.0)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = max(0.0, centre - half) if alternative != "less" else 0.0
    high = min(1.0, centre + half) if alternative != "greater" else 1.0
    return (low, high)


def t_ppf(q: float, dof: float) -> float:
    """The t quantile: `scipy.stats.t.ppf(q, dof)` to the last bit (its `stdtrit(dof, q)`;
    a test checks), from scipy.special, whose import is ~0.3 s against ~1.3 s for
    scipy.stats (issue 21: the report on 1M rows)."""
    from scipy.special import stdtrit  # only repeats and paired differences need it

    return float(stdtrit(dof, q))


def cluster_t_interval(
    item_means: np.ndarray, confidence: float = 0.95, alternative: Alternative = "two-sided"
) -> tuple[float, float]:
    """Mean of item means ± t·sd/√items; (0, 1) with fewer than two items."""
    means = np.asarray(item_means, dtype="float64")
    m = len(means)
    if m < 2:
        return (0.0, 1.0)
    tail = 1 - confidence if alternative != "two-sided" else (1 - confidence) / 2
    t_isf = -t_ppf(tail, m - 1)  # scipy.stats.t.isf(tail, m - 1) is -stdtrit(m - 1, tail)
    half = t_isf * float(means.std(ddof=1)) / math.sqrt(m)
    centre = float(means.mean())
    low = max(0.0, centre - half) if alternative != "less" else 0.0
    high = min(1.0, centre + half) if alternative != "greater" else 1.0
    return (low, high)


def repeated_interval(
    item_means: np.ndarray, confidence: float = 0.95, alternative: Alternative = "two-sided"
) -> tuple[float, float]:
    """Items answered K > 1 times: the weaker of the cluster-t and the items' Wilson bounds."""
    means = np.asarray(item_means, dtype="float64")
    if len(means) == 0:
        return (math.nan, math.nan)
    t_lo, t_hi = cluster_t_interval(means, confidence, alternative)
    w_lo, w_hi = wilson_interval(float(means.sum()), len(means), confidence, alternative)
    return (min(t_lo, w_lo), max(t_hi, w_hi))


REPEATED_METHOD = "min(cluster-t, wilson on items)"


def accuracy_interval(
    item_means: np.ndarray,
    answers: int,
    confidence: float = 0.95,
    alternative: Alternative = "two-sided",
) -> tuple[float, float, str]:
    """(low, high, method) for one group: Wilson when each item was answered once (`answers`
    = total graded answers = items), else `repeated_interval`."""
    means = np.asarray(item_means, dtype="float64")
    if answers == len(means):
        low, high = wilson_interval(round(float(means.sum())), answers, confidence, alternative)
        return low, high, "wilson"
    low, high = repeated_interval(means, confidence, alternative)
    return low, high, REPEATED_METHOD
