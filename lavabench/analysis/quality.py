"""Quality statistics: accuracy with a Wilson 95% interval per model x dataset, and a paired
McNemar mid-p comparison of two models on the same items (shared/docs/statistics.md).

Pure functions over a records DataFrame (columns model, dataset, item_id, correct, and
optionally grade_error / error_kind), used by the report and by `pick`. Wilson is used
rather than Wald because Wald covers far below 95% at n=50; with one answer per item the
items are independent draws, so the interval is binomial. Rows whose `correct` is null are
not in n: they are counted as `ungraded` (no reference, transport error, grading error).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from scipy import stats

from lavabench.analysis.intervals import wilson_interval

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Accuracy:
    """k of n graded items correct, with its Wilson interval (NaN when n is 0) and the
    ungraded count."""

    k: int
    n: int
    low: float
    high: float
    ungraded: int

    @property
    def accuracy(self) -> float:
        """k / n, or NaN when nothing was graded."""
        return self.k / self.n if self.n else float("nan")


def accuracy(correct: pd.Series) -> Accuracy:
    """Accuracy of one model on one dataset from its `correct` column (nulls ungraded)."""
    graded = correct.dropna().astype(bool)
    k, n = int(graded.sum()), len(graded)
    low, high = wilson_interval(k, n, CONFIDENCE)
    return Accuracy(k, n, low, high, int(correct.isna().sum()))


def quality_summary(
    records: pd.DataFrame, by: tuple[str, ...] = ("model", "dataset")
) -> pd.DataFrame:
    """One row per group: n, k, accuracy, ci_low, ci_high (Wilson 95%), ungraded; plus
    grade_errors when the records have a `grade_error` column."""
    rows = []
    for key, group in records.groupby(list(by), sort=True, dropna=False):
        acc = accuracy(group["correct"])
        keys = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, keys, strict=True))
        row.update(
            n=acc.n,
            k=acc.k,
            accuracy=acc.accuracy,
            ci_low=acc.low,
            ci_high=acc.high,
            ungraded=acc.ungraded,
            ci_method="wilson",
        )
        if "grade_error" in group:
            row["grade_errors"] = int(group["grade_error"].notna().sum())
        rows.append(row)
    return pd.DataFrame(rows)


def item_group(item_id: str) -> str:
    """The group of an id "<group>/<n>" (MMLU subject, BBH task, AGIEval subset), else ""."""
    return item_id.rsplit("/", 1)[0] if "/" in item_id else ""


@dataclass(frozen=True)
class PairedComparison:
    """McNemar on shared items: b = only A right, c = only B right; one-sided mid-p that A
    is better than B; `both`/`neither` complete the 2x2 table."""

    n: int
    b: int
    c: int
    both: int
    neither: int
    mid_p: float

    @property
    def difference(self) -> float:
        """Accuracy of A minus accuracy of B on the shared items."""
        return (self.b - self.c) / self.n if self.n else float("nan")


def mcnemar_mid_p(b: int, c: int) -> float:
    """One-sided mid-p for "A better than B": P(X >= b) - P(X = b)/2, X ~ Bin(b+c, 1/2)."""
    if b + c == 0:
        return 1.0
    exact = stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue
    return float(exact - 0.5 * stats.binom.pmf(b, b + c, 0.5))


def paired_comparison(a: pd.Series, b: pd.Series) -> PairedComparison:
    """Compare two models' `correct` Series indexed by item id, on the items both graded.
    With repeats, index by item and average beforehand (see statistics.md)."""
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    xa, xb = joined["a"].astype(bool), joined["b"].astype(bool)
    only_a, only_b = int((xa & ~xb).sum()), int((~xa & xb).sum())
    return PairedComparison(
        n=len(joined),
        b=only_a,
        c=only_b,
        both=int((xa & xb).sum()),
        neither=int((~xa & ~xb).sum()),
        mid_p=mcnemar_mid_p(only_a, only_b),
    )
