"""analysis.intervals: one Wilson for every consumer, and repeats that never certify more
than answering each item once would."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from lavabench.analysis import quality
from lavabench.analysis.intervals import repeated_interval, t_ppf, wilson_interval
from lavabench.analysis.pick import pick_model
from lavabench.analysis.tables import accuracy_table, cost_table, prepare
from tests.analysis.test_analysis_frontier import make_rows


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize(("k", "n"), [(0, 1), (0, 10), (3, 3), (40, 50), (7, 200), (199, 200)])
def test_wilson_is_scipys_wilson(k: int, n: int, alternative: str) -> None:
    ci = stats.binomtest(k, n, alternative=alternative).proportion_ci(0.9, method="wilson")
    low, high = wilson_interval(k, n, 0.9, alternative)  # type: ignore[arg-type]
    assert low == pytest.approx(ci.low, abs=1e-12) and high == pytest.approx(ci.high, abs=1e-12)


def test_nothing_graded_is_nan_everywhere() -> None:
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    acc = quality.accuracy(pd.Series([None, None], dtype="object"))
    assert acc.n == 0 and math.isnan(acc.low) and math.isnan(acc.high)


def test_three_items_answered_twice_all_right_do_not_certify_95() -> None:
    df = prepare(make_rows({"a": {"acc": 1.0, "pico": 1}}, items=3, repeats=2))
    table = accuracy_table(df).iloc[0]
    assert (table["items"], table["answers_per_item"], table["accuracy"]) == (3, 2, 1.0)
    # cluster-t alone gives [1, 1]; answering 3 items once cannot show more than Wilson(3, 3)
    assert table.acc_lo == pytest.approx(wilson_interval(3, 3)[0])
    result = pick_model(df, cost_table(df), min_quality=0.95)
    assert result.pick is None
    (a,) = result.candidates
    assert a.accuracy == 1.0 and a.accuracy_lower < 0.6
    assert a.accuracy_lower == pytest.approx(wilson_interval(3, 3, 0.95, "greater")[0])


@given(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=1, max_size=30))
def test_repeats_are_never_tighter_than_items_answered_once(means: list[float]) -> None:
    arr = np.array(means)
    low, high = repeated_interval(arr)
    w_low, w_high = wilson_interval(arr.sum(), len(arr))
    assert low <= w_low + 1e-12 and high >= w_high - 1e-12


def test_t_quantile_from_scipy_special_is_scipy_stats_to_the_last_bit() -> None:
    """intervals.t_ppf (scipy.special, cheap to import) is what scipy.stats.t.ppf returns,
    and its negation at the tail is t.isf: the intervals did not move by a bit."""
    dofs = [*range(1, 400), 1_000, 4_999, 49_999]
    for q in (0.975, 0.95, 0.995, 1 - 0.05 / 17):
        assert [t_ppf(q, d) for d in dofs] == [float(stats.t.ppf(q, d)) for d in dofs]
    for tail in (0.025, 0.05, 0.05 / 20, 1e-4):
        assert [-t_ppf(tail, d) for d in dofs] == [float(stats.t.isf(tail, d)) for d in dofs]
