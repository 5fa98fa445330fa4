"""Pure: where each row's grade, cost and completeness came from, for rows of any schema.

The request path records provenance (`grade_status`, `cost_source`, `usage_source`,
`truncated`, schema 4-5); older records lack those columns, so each is derived here once
from what older rows do have. The rules, which README states to users:

- Grade: `graded` when `correct` is set; `grade_error` when the grader raised; `ungraded`
  when a grader ran (or was configured) but gave no verdict (judge outage, unsupported
  IFEval prompt); `no_reference` when there was nothing to grade against; null (NA) when
  there was no answer (failed request). Ungraded answers are *never* counted as wrong.
- Cost of a row: the recorded `cost_pico_usd` (server usage, or a labelled estimate) plus
  billed retries (`retry_cost_pico_usd`). An answered row without a cost is *unknown*
  (NaN), never 0. A failed request without a cost got no tokens (an HTTP error): nothing
  was billed, so its cost is 0; a billed partial stream carries an estimate. A cached
  answer carries the cost the model charged when it was first recorded (`cost_source`
  `cached`): it counts in cost per item (so "cheapest" does not depend on which answers
  happened to be cached) but not in this run's spend. An older cached row without a cost
  is left out of cost per item (neither numerator nor denominator).
- Truncated: `truncated`, else `finish_reason == "length"` (older rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GRADE_STATUSES = ("graded", "ungraded", "grade_error", "no_reference")


def column(df: pd.DataFrame, name: str) -> pd.Series:
    """`df[name]`, or an all-null column when this table predates it."""
    if name in df:
        return df[name]
    return pd.Series([None] * len(df), index=df.index, dtype="object")


def _labelled(
    recorded: pd.Series, derived: np.ndarray, labels: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(codes, names): per row the recorded value where there is one, else `derived` (codes
    into `labels`); `names[code]` is the value (`labels` first, then any other recorded
    value; code -1 is None). Codes, not strings: a million rows of Python strings cost ~0.5 s
    per column to build and compare (issue 21, the report on 1M rows)."""
    cat = recorded.array if isinstance(recorded.dtype, pd.CategoricalDtype) else None
    cat = pd.Categorical(recorded) if cat is None else cat
    names = [*labels, *[c for c in cat.categories if c not in labels]]
    lookup = np.array([*names, None], dtype=object)  # code -1: None
    if len(cat.categories) == 0:
        return derived, lookup
    remap = np.array([names.index(c) for c in cat.categories])
    recorded_codes = np.asarray(cat.codes)
    return np.where(recorded_codes >= 0, remap[recorded_codes], derived), lookup


def grade_status(df: pd.DataFrame) -> pd.Series:
    """Each row's grade status (see the module docstring); NA for rows without an answer."""
    ok = (df["status"] == "ok").to_numpy()
    correct = column(df, "correct").notna().to_numpy()
    error = column(df, "grade_error").notna().to_numpy()
    grader = column(df, "grader").notna().to_numpy()
    graded, ungraded, grade_error, no_reference = range(4)  # GRADE_STATUSES' order
    derived = np.select([correct, error, grader], [graded, grade_error, ungraded], no_reference)
    codes, names = _labelled(column(df, "grade_status"), derived, GRADE_STATUSES)
    # A recorded "graded" without a verdict cannot be trusted as one; a failed request has
    # no answer to grade.
    codes = np.where((codes == graded) & ~correct, ungraded, codes)
    codes[~ok] = -1
    return pd.Series(names[codes], index=df.index, dtype="object")


def truncated(df: pd.DataFrame) -> np.ndarray:
    """True where the answer was cut at max_tokens."""
    flag = column(df, "truncated")
    by_reason = (column(df, "finish_reason").astype("object") == "length").to_numpy()
    return np.where(flag.isna().to_numpy(), by_reason, flag.fillna(False).astype(bool))


def cost_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Per row: `_cost` (pico-USD as float, NaN = unknown, the row's price for cost per
    item), `_cost_source`, `_in_cost` (counts in cost per item), `_spent` (pico-USD this
    run paid, known part) and `_judge_cost` (NaN = a judge ran but its cost is unknown)."""
    ok = (df["status"] == "ok").to_numpy()
    cached = column(df, "response_cached").fillna(False).astype(bool).to_numpy()
    cost = column(df, "cost_pico_usd").astype("float64").to_numpy()
    retry = column(df, "retry_cost_pico_usd").astype("float64").fillna(0.0).to_numpy()
    known = ~np.isnan(cost)
    labels = ("cached", "server_usage", "unknown", "none (failed, not billed)")
    derived = np.select([known & cached, known, cached], [0, 1, 0], 2)  # codes into labels
    codes, names = _labelled(column(df, "cost_source"), derived, labels)
    base = np.where(known, cost, np.where(ok, np.nan, 0.0))
    # a categorical: a million strings as pandas' str column cost ~0.1 s to build
    source = pd.Categorical.from_codes(np.where(~known & ~ok, 3, codes), names[:-1])
    row_cost = np.where(cached, base, base + retry)
    in_cost = ~(cached & ~known)
    spent = np.where(cached, 0.0, np.nan_to_num(base, nan=0.0) + retry)
    judge = column(df, "judge_cost_pico_usd").astype("float64").to_numpy()
    judged = column(df, "judge_model").notna().to_numpy()
    # A judge request that failed got no tokens: not billed. One that answered without
    # usage has an unknown cost.
    # per distinct error text, not per row (1M rows of str.startswith: ~0.2 s)
    errors = pd.Categorical(column(df, "grade_error"))
    failed_text = [
        isinstance(e, str) and e.startswith("judge request failed") for e in errors.categories
    ]
    failed = np.array([*failed_text, False])[np.asarray(errors.codes)]  # code -1: no error
    judge_cost = np.where(~np.isnan(judge), judge, np.where(judged & ~failed, np.nan, 0.0))
    return pd.DataFrame(
        {
            "_cost": row_cost,
            "_cost_source": source,
            "_in_cost": in_cost,
            "_spent": spent,
            "_judge_cost": judge_cost,
        },
        index=df.index,
    )
