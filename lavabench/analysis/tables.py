"""Pure tables -> tables: per-model summary, percentiles, intervals, cost, frontier.

Conventions (shared/docs/statistics.md): warm-up rows are excluded; a failed request counts
as +inf latency (so errors push percentiles up instead of vanishing from them) and as not
correct; percentiles are over requests; cost is summed exactly from integer pico-USD.
Everything is vectorised over rows; Python loops run over models, never over requests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from lavabench.analysis.intervals import accuracy_interval
from lavabench.analysis.provenance import column, cost_columns, grade_status, truncated
from lavabench.catalog import PICO_PER_USD
from lavabench.records.reader import Runs

SUMMARY_COLUMNS = [
    "model",
    "n",
    "errors",
    "retried",
    "accuracy",
    "graded",
    "ungraded",
    "truncated",
    "truncation_rate",
    "max_tokens",
    "ttft_p50_s",
    "ttft_p90_s",
    "e2e_p50_s",
    "output_tokens_per_s_mean",
    "cost_usd",
    "cost_known_usd",
    "cost_basis",
    "cost_unknown",
    "judge_cost_usd",
]
# Ungraded answers above this share of a model's answers get a warning beside accuracy: the
# graded ones may not be a random sample (a judge that fails on long answers, say).
UNGRADED_WARN_SHARE = 0.05


def measured_rows(table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Rows that count for statistics: everything but warm-up requests."""
    df = table.to_pandas() if isinstance(table, pa.Table) else table
    warmup = df["is_warmup"].fillna(False).astype(bool).to_numpy()
    # most runs have no warm-up rows: filtering anyway copied every row (1M rows: ~0.5 s)
    return df[~warmup] if warmup.any() else df


def latency_with_failures(df: pd.DataFrame, column: str) -> pd.Series:
    """`column` with failed requests set to +inf, as float."""
    values = df[column].astype("float64")
    return values.where(df["status"] == "ok", np.inf)


# What per_model_summary reads (the rest of ANALYSIS_COLUMNS is identity and workload
# detail): a reader for the end-of-run table reads only these (bench_memory: every column of
# 100,000 rows as pandas was most of a run's peak, at its very end).
SUMMARY_INPUTS = [
    "model", "dataset", "item_id", "is_warmup", "status", "error_type", "attempts", "ttft_s",
    "e2e_s", "first_answer_s", "itl_p50_s", "output_tokens_per_s", "prompt_tokens",
    "completion_tokens", "max_tokens", "cost_pico_usd", "retry_cost_pico_usd", "cost_source",
    "grader", "correct", "grade_error", "grade_status", "format_ok", "response_cached",
    "finish_reason", "truncated", "judge_model", "judge_cost_pico_usd",
]  # fmt: skip


def per_model_summary(table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """The end-of-run table: one row per model, from the same tables as report and pick.

    Accuracy over graded answers (failed requests as wrong), the ungraded count beside it;
    truncation; cost spent with its basis (`unknown` makes the total unknown, never 0)."""
    if isinstance(table, pa.Table):  # only what it reads becomes pandas
        table = table.select([c for c in SUMMARY_INPUTS if c in table.column_names])
    return _summary_of_prepared(prepare(table))


def per_model_summary_of_batches(batches: Iterable[pa.Table]) -> pd.DataFrame:
    """`per_model_summary` of the rows of `batches` taken together, each batch turned into
    pandas and `prepare`d on its own (every derived column is per row), so the source
    columns of only one batch are held at a time: the end of a long run reads its rows
    this way (bench_memory, 100,000 rows: +70 MB read whole, see commands/run/info)."""
    chunks: dict[str, list[Any]] = {}
    for batch in batches:
        narrow = batch.select([c for c in SUMMARY_INPUTS if c in batch.column_names])
        del batch
        frame = prepare(narrow.to_pandas(split_blocks=True, self_destruct=True))
        del narrow
        for name in frame.columns:
            chunks.setdefault(name, []).append(_owned(frame[name]))
        del frame  # its blocks: each column above is a copy or an array of its own
    if not chunks:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    return _summary_of_prepared(join_columns(chunks))


def _owned(series: pd.Series) -> Any:
    """A column's values in an array of their own (a numpy column of a 2-D block is a view
    that keeps the whole block alive); categoricals and other extension arrays own theirs."""
    values = series.array
    return (
        series.to_numpy(copy=True) if isinstance(values, pd.arrays.NumpyExtensionArray) else values
    )


def join_columns(chunks: dict[str, list[Any]]) -> pd.DataFrame:
    """One frame from each column's chunks (consumed: a column's chunks are let go as it is
    joined, so the rows are held about once, not twice). A categorical column stays
    categorical, its categories united in order of appearance, where pd.concat would turn
    categories that differ between chunks into one Python object per row."""
    from pandas.api.types import union_categoricals

    columns: dict[str, Any] = {}
    for name in list(chunks):
        parts = chunks.pop(name)
        if all(isinstance(p, pd.Categorical) for p in parts):
            if len({p.categories.dtype for p in parts}) > 1:  # an all-null chunk: no strings
                parts = [pd.Categorical.from_codes(p.codes, p.categories.astype(object))
                         for p in parts]  # fmt: skip
            columns[name] = union_categoricals(parts) if len(parts) > 1 else parts[0]
        else:
            # dtype kept: pandas 3 would infer `str` from an object column of strings
            series = [pd.Series(p, dtype=p.dtype, copy=False) for p in parts]
            columns[name] = pd.concat(series, ignore_index=True)
        del parts
    return pd.DataFrame(columns, copy=False)


def _summary_of_prepared(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    grouped = df.groupby("model", observed=True, sort=False)
    out = pd.DataFrame(
        {
            "n": grouped.size(),
            "errors": grouped["_error"].sum(),
            "retried": grouped["_retried"].sum(),
            "output_tokens_per_s_mean": grouped["output_tokens_per_s"].mean(),
        }
    ).reset_index()
    lat = latency_percentiles(df, qs=(0.5, 0.9))[["model", "ttft_p50_s", "ttft_p90_s", "e2e_p50_s"]]
    acc = accuracy_table(df)[["model", "accuracy", "graded", "ungraded"]]
    rel = reliability_table(df)[["model", "truncated", "truncation_rate", "max_tokens"]]
    cost = cost_table(df)[
        ["model", "cost_usd", "cost_known_usd", "cost_basis", "cost_unknown", "judge_cost_usd"]
    ]
    for extra in (lat, acc, rel, cost):
        out = out.merge(extra, on="model", how="left")
    out["model"] = out["model"].astype(str)
    return out[SUMMARY_COLUMNS]


# --- per-request derived columns ------------------------------------------------------------


def prepare(table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Measured rows with the derived columns every statistic uses (vectorised).

    `_ttft`/`_e2e`: +inf for failures; `_correct`: failures are wrong; `_in_accuracy`:
    graded or failed (never ungraded: analysis.provenance); `_ungraded`: answered, a grader
    ran, no verdict; `_truncated`: cut at max_tokens; `_cost`/`_in_cost`/`_spent`/
    `_judge_cost`: provenance.cost_columns (NaN = unknown); `_timed`: rows whose timings are
    a measurement (cached answers are not).
    """
    df = measured_rows(table)
    error = (df["status"] != "ok").to_numpy()
    cached = column(df, "response_cached").fillna(False).astype(bool).to_numpy()
    out = pd.DataFrame(
        {
            "model": df["model"],
            "dataset": df.get("dataset", ""),
            "item_id": df.get("item_id", ""),
            "dataset_sha256": df.get("dataset_sha256", ""),
        },
        index=df.index,
    )
    out["_error"] = error
    out["_retried"] = (column(df, "attempts").astype("float64").fillna(1) > 1).to_numpy()
    out["_ttft"] = np.where(error, np.inf, df["ttft_s"].astype("float64"))
    out["_e2e"] = np.where(error, np.inf, df["e2e_s"].astype("float64"))
    # first answer (content) token: the latency a reasoning model's user waits for (SLOs)
    out["_first_answer"] = np.where(error, np.inf, column(df, "first_answer_s").astype("float64"))
    out["_timed"] = ~cached
    status = grade_status(df)
    out["_grade_status"] = status
    graded = (status == "graded").to_numpy()
    out["_ungraded"] = status.isin(["ungraded", "grade_error"]).to_numpy()
    out["_in_accuracy"] = graded | error
    out["_correct"] = column(df, "correct").fillna(False).astype(bool).to_numpy() & ~error
    out["_truncated"] = truncated(df) & ~error
    out = out.join(cost_columns(df))
    numeric = ("itl_p50_s", "output_tokens_per_s", "prompt_tokens", "completion_tokens")
    for c in (*numeric, "max_tokens"):
        out[c] = column(df, c).astype("float64")
    out["error_type"] = column(df, "error_type")
    # the grader's format check (tool calls, json): null = no format rule, kept as unknown
    out["_format_checked"] = df["format_ok"].notna().to_numpy() if "format_ok" in df else False
    out["_unparsed"] = (df["format_ok"] == False).to_numpy() if "format_ok" in df else False  # noqa: E712
    return out


# --- percentiles and intervals --------------------------------------------------------------

PERCENTILES = (0.5, 0.9, 0.99)


def percentile(values: np.ndarray | pd.Series, q: float) -> float:
    """The one percentile of lavabench (every table, compare, pick and the report use it).

    NaN is missing and left out (an empty reply has no first text chunk: no TTFT was
    measured); +inf is a value (a failure counts as +inf latency). Linear interpolation, except
    that interpolating towards +inf gives +inf (numpy gives NaN there, or +inf when the weight
    is 0). All values missing: NaN.
    """
    x = np.asarray(values, dtype="float64")
    x = np.sort(x[~np.isnan(x)])
    if len(x) == 0:
        return math.nan
    pos = q * (len(x) - 1)
    lo, frac = math.floor(pos), pos - math.floor(pos)
    if frac == 0.0:
        return float(x[lo])
    a, b = float(x[lo]), float(x[lo + 1])
    return math.inf if math.isinf(b) else a + (b - a) * frac


def _rows(df: pd.DataFrame, mask: pd.Series | np.ndarray, columns: list[str]) -> pd.DataFrame:
    """`df[mask]` of only `columns`, and no copy when every row is kept: a boolean filter
    copies every column of every row it keeps (1M prepared rows: ~0.1 s each time)."""
    keep = np.asarray(mask, dtype=bool)
    narrow = df[list(dict.fromkeys(columns))]
    return narrow if keep.all() else narrow[keep]


def latency_percentiles(
    df: pd.DataFrame, by: list[str] | None = None, qs: tuple[float, ...] = PERCENTILES
) -> pd.DataFrame:
    """TTFT and E2E percentiles per group over requests, failures included as +inf
    (`percentile`: empty replies are missing, not +inf)."""
    by = by or ["model"]
    timed = _rows(df, df["_timed"], [*by, "_ttft", "_e2e"])
    grouped = timed.groupby(by, observed=True, sort=False)
    cols: dict[str, pd.Series] = {"requests": grouped.size()}
    for metric in ("_ttft", "_e2e"):
        for q in qs:
            cols[f"{metric[1:]}_p{round(q * 100)}_s"] = grouped[metric].agg(percentile, q)
    return pd.DataFrame(cols).reset_index()


def p90_upper_bound(x: np.ndarray, confidence: float = 0.95) -> float:
    """One-sided upper confidence bound of the 90th percentile (distribution-free).

    `scipy.stats.quantile_test(..., alternative="less").confidence_interval()`: an order
    statistic, so +inf (a failure) is a valid value and a small sample gives +inf.
    """
    x = np.asarray(x, dtype="float64")
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.inf
    from scipy import stats  # imported here: the end-of-run table needs no scipy

    ci = stats.quantile_test(x, q=0, p=0.9, alternative="less").confidence_interval(confidence)
    return float(ci.high)


def accuracy_table(
    df: pd.DataFrame, by: list[str] | None = None, confidence: float = 0.95
) -> pd.DataFrame:
    """Accuracy with its 95% interval per group, recorded with k, n, K and the method.

    One answer per item: Wilson. K>1 answers per item: answers to one item are correlated,
    so average per item; the interval is the weaker of mean ± t·sd/√items and the Wilson
    interval on the items (analysis.intervals; naive counting covers 82-84%).
    """
    by = by or ["model"]
    # Failed requests count as wrong, but only where answers were graded at all: a group
    # with no graded answer has no accuracy (not 0 from its failures alone).
    is_graded = (df["_grade_status"] == "graded").to_numpy(dtype=bool)
    with_grades = df[by].assign(_g=is_graded).groupby(by, observed=True, sort=False)["_g"]
    keys = [*by, "dataset", "item_id"] if "dataset" not in by else [*by, "item_id"]
    in_group = with_grades.transform("any").astype(bool)  # a NaN key: kept, as before
    graded = _rows(df, df["_in_accuracy"] & in_group, [*keys, "_correct"])
    per_item = graded.groupby(keys, observed=True, sort=False)["_correct"].agg(["mean", "size"])
    per_item = per_item.reset_index()
    rows = []
    for key, g in per_item.groupby(by, observed=True, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        n = int(g["size"].sum())
        k = round(float((g["mean"] * g["size"]).sum()))
        answers_per_item = int(g["size"].max())
        items = len(g)
        lo, hi, method = accuracy_interval(g["mean"].to_numpy(), n, confidence)
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "k": k,
                "n": n,
                "items": items,
                "answers_per_item": answers_per_item,
                "accuracy": k / n if n else math.nan,
                "acc_lo": lo,
                "acc_hi": hi,
                "method": method,
            }
        )
    columns = [*by, "k", "n", "items", "answers_per_item", "accuracy", "acc_lo", "acc_hi"]
    table = pd.DataFrame(rows, columns=[*columns, "method"])
    return _with_ungraded(table, df, by)


def _with_ungraded(table: pd.DataFrame, df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """`graded` (= n: graded answers and failed requests), `ungraded` (answers a grader could
    not grade, not in n) and their share, for every group that has either."""
    counts = (
        df.assign(_u=df["_ungraded"].astype(int))
        .groupby(by, observed=True, sort=False)["_u"]
        .sum()
        .rename("ungraded")
        .reset_index()
    )
    counts = counts[counts["ungraded"] > 0]
    table = table.merge(counts, on=by, how="outer") if len(counts) else table.assign(ungraded=0)
    table["ungraded"] = table["ungraded"].fillna(0).astype(int)
    table["n"] = table["n"].fillna(0).astype(int)
    table["graded"] = table["n"]
    total = table["graded"] + table["ungraded"]
    table["ungraded_share"] = np.where(total > 0, table["ungraded"] / total.where(total > 0, 1), 0)
    return table


def accuracy_lower_bound(df: pd.DataFrame, model: str, alpha: float) -> float:
    """One-sided lower bound at level 1-alpha of one model's accuracy (`accuracy_interval`:
    Wilson, or with repeats never tighter than answering each item once); NaN if ungraded."""
    # only the three columns it groups: a full-width copy per model was most of its time
    g = df.loc[((df["model"] == model) & df["_in_accuracy"]).to_numpy(),
               ["dataset", "item_id", "_correct"]]  # fmt: skip
    if g.empty:
        return math.nan
    per_item = g.groupby(["dataset", "item_id"], observed=True)["_correct"].mean()
    return accuracy_interval(per_item.to_numpy(), len(g), 1 - alpha, "greater")[0]


# --- cost, tokens, reliability -----------------------------------------------------------------

BLENDED_INPUT_WEIGHT = 3  # blended price = (3 x input + 1 x output) / 4, the common convention


def blended_usd_per_mtok(input_usd: Decimal, output_usd: Decimal) -> Decimal:
    """One list price per model for a price axis: 3:1 input:output weighting (exact)."""
    w = BLENDED_INPUT_WEIGHT
    return (w * input_usd + output_usd) / (w + 1)


def cost_table(
    df: pd.DataFrame, by: list[str] | None = None, *, include_grading: bool = False
) -> pd.DataFrame:
    """Cost per group: spent this run, cost per item, and what the figures rest on.

    Cost per item = row costs / rows in cost (analysis.provenance: failed requests included
    at their cost, cached answers at their original cost, unknown never 0). Any answered row
    of unknown cost makes the group's cost per item and total unknown (NaN / None):
    `cost_unknown` says how many, `cost_known_usd` is the part that is known. `cost_basis`:
    `server` (every cost from server usage), `estimate` / `partly estimated` (list price x
    estimated tokens, labelled), `unknown`. `include_grading` adds the judge's cost per item.
    """
    by = by or ["model"]
    d = df.assign(
        _unknown=df["_in_cost"] & np.isnan(df["_cost"]),
        _estimated=(df["_cost_source"] == "estimate") & df["_in_cost"],
        _cached=df["_cost_source"] == "cached",
        _judge_unknown=np.isnan(df["_judge_cost"]),
        _price=np.where(df["_in_cost"], df["_cost"], 0.0),
        _counted=df["_in_cost"].astype(int),
    )
    if include_grading:
        d["_price"] = d["_price"] + d["_judge_cost"]
    grouped = d.groupby(by, observed=True, sort=False)
    answered = ~d["_error"] & d["_timed"]
    tokens = ["prompt_tokens", "completion_tokens"]
    ok = _rows(d, answered, [*by, *tokens]).groupby(by, observed=True, sort=False)
    out = pd.DataFrame(
        {
            "requests": grouped.size(),
            "cost_known_pico_usd": grouped["_spent"].sum(),
            "cost_unknown": grouped["_unknown"].sum().astype(int),
            "cost_estimated": grouped["_estimated"].sum().astype(int),
            "cost_cached": grouped["_cached"].sum().astype(int),
            "judge_pico_usd": grouped["_judge_cost"].sum(min_count=1),
            "judge_unknown": grouped["_judge_unknown"].sum().astype(int),
            "_price_sum": grouped["_price"].sum(min_count=1),
            "_in_cost": grouped["_counted"].sum(),
            "prompt_tokens_per_item": ok["prompt_tokens"].mean(),
            "completion_tokens_per_item": ok["completion_tokens"].mean(),
        }
    ).reset_index()
    known = out["cost_unknown"].to_numpy() == 0
    if include_grading:
        known = known & (out["judge_unknown"].to_numpy() == 0)
    known_pico = out["cost_known_pico_usd"].round().astype("int64").to_numpy()
    out["cost_known_usd"] = [Decimal(int(v)) / PICO_PER_USD for v in known_pico]
    out["cost_pico_usd"] = pd.array(np.where(known, known_pico, 0), dtype="Int64")
    out.loc[~known, "cost_pico_usd"] = pd.NA
    out["cost_usd"] = [u if k else None for u, k in zip(out["cost_known_usd"], known, strict=True)]
    judge = out["judge_pico_usd"].to_numpy(dtype="float64")
    out["judge_cost_usd"] = np.where(out["judge_unknown"] > 0, np.nan, judge / PICO_PER_USD)
    per_item = out["_price_sum"].to_numpy(dtype="float64") / out["_in_cost"].where(
        out["_in_cost"] > 0
    ).to_numpy(dtype="float64")
    out["usd_per_item"] = np.where(known, per_item / PICO_PER_USD, np.nan)
    out["usd_per_1k_items"] = out["usd_per_item"] * 1000
    out["cost_basis"] = [
        _basis(u, e, c)
        for u, e, c in zip(out["cost_unknown"], out["cost_estimated"], out["_in_cost"], strict=True)
    ]
    return out.drop(columns=["_price_sum", "_in_cost"])


def _basis(unknown: int, estimated: int, counted: int) -> str:
    if unknown:
        return "unknown"
    if estimated:
        return "estimate" if estimated == counted else "partly estimated"
    return "server"


def reliability_table(df: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Error, retry and truncation rates per group, with the most common error kind.

    `truncation_rate` is over answered requests: answers cut at max_tokens (finish_reason
    `length`) may look like wrong answers while the model was still reasoning."""
    by = by or ["model"]
    # hand-built frames (tests, notebooks) may lack the truncation columns: unknown, not 0
    d = df.assign(
        _answered=~df["_error"],
        _truncated=df.get("_truncated", False),
        max_tokens=df.get("max_tokens", np.nan),
    )
    grouped = d.groupby(by, observed=True, sort=False)
    out = pd.DataFrame(
        {
            "requests": grouped.size(),
            "errors": grouped["_error"].sum(),
            "retried": grouped["_retried"].sum(),
            "truncated": grouped["_truncated"].sum().astype(int),
            "answered": grouped["_answered"].sum().astype(int),
            "max_tokens": grouped["max_tokens"].max(),
        }
    ).reset_index()
    out["error_rate"] = out["errors"] / out["requests"]
    out["retry_rate"] = out["retried"] / out["requests"]
    out["truncation_rate"] = out["truncated"] / out["answered"].where(out["answered"] > 0)
    if "_truncated" not in df:
        out["truncation_rate"] = np.nan
    # unparsed: answers not in the grader's format (tool-call arguments not JSON...), a
    # format failure apart from wrong answers; NaN (unknown, not 0) when no grader checks it
    checked = grouped["_format_checked"].sum().to_numpy() if "_format_checked" in df else 0
    unparsed = grouped["_unparsed"].sum().to_numpy() if "_unparsed" in df else 0
    out["unparsed"] = unparsed
    out["unparsed_rate"] = np.where(
        np.asarray(checked) > 0, unparsed / np.maximum(checked, 1), np.nan
    )
    kinds = df[df["_error"]].groupby([*by, "error_type"], observed=True).size()
    top = kinds.sort_values(ascending=False).reset_index().drop_duplicates(by)
    top = top.rename(columns={"error_type": "top_error"})[[*by, "top_error"]]
    return out.merge(top, on=by, how="left")


def speed_table(df: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Per group: median and p10/p90 of output tokens/s and TTFT over successful requests,
    median inter-token latency; enough for a speed-vs-TTFT plot at any row count."""
    by = by or ["model"]
    read = [*by, "output_tokens_per_s", "_ttft", "itl_p50_s"]
    ok = _rows(df, ~df["_error"] & df["_timed"], read).groupby(by, observed=True, sort=False)
    out = pd.DataFrame(
        {
            "tok_s_p10": ok["output_tokens_per_s"].quantile(0.1),
            "tok_s_p50": ok["output_tokens_per_s"].quantile(0.5),
            "tok_s_p90": ok["output_tokens_per_s"].quantile(0.9),
            "ttft_ok_p10_s": ok["_ttft"].quantile(0.1),
            "ttft_ok_p50_s": ok["_ttft"].quantile(0.5),
            "ttft_ok_p90_s": ok["_ttft"].quantile(0.9),
            "itl_p50_s": ok["itl_p50_s"].quantile(0.5),
        }
    )
    return out.reset_index()


def ecdf_points(
    df: pd.DataFrame, column: str, points: int = 201, by: str = "model"
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """ECDF per group as (values, probabilities) at `points` quantiles, never every row.

    Failures (+inf) stay out of the curve, which then tops out below 1: the gap is the
    failure share.
    """
    probs = np.linspace(0.0, 1.0, points)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    timed = df.loc[df["_timed"], [by, column]]  # two columns: the whole frame's copy cost ~1/3 s
    for name, g in timed.groupby(by, observed=True, sort=True):
        values = g[column].to_numpy(dtype="float64")
        values = values[~np.isnan(values)]
        finite = values[np.isfinite(values)]
        if len(finite) == 0:
            continue
        share = len(finite) / len(values)
        out[str(name)] = (np.quantile(finite, probs), probs * share)
    return out


# --- frontier and the per-model table -------------------------------------------------------------


def pareto_frontier(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """True where no other point is at most as expensive and at least as good, one strictly.

    Identical points do not dominate each other (both stay on the frontier); NaN points are
    never on it and dominate nothing. O(n²) over models, which number in the tens.
    """
    c = np.asarray(cost, dtype="float64")
    q = np.asarray(quality, dtype="float64")
    valid = ~(np.isnan(c) | np.isnan(q))
    cj, ci = c[None, :], c[:, None]
    qj, qi = q[None, :], q[:, None]
    dominates = (cj <= ci) & (qj >= qi) & ((cj < ci) | (qj > qi)) & valid[None, :]
    return valid & ~dominates.any(axis=1)


def model_table(
    runs: Runs, dataset: str | None = None, prepared: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per model: accuracy ± interval, latency percentiles, cost, reliability, prices,
    blended price, frontier membership. The table the report draws and pick reads.

    Pass `prepared` (from `prepare(runs.rows)`) to avoid preparing a large table twice.
    """
    df = prepare(runs.rows) if prepared is None else prepared
    if dataset is not None:
        inside = (df["dataset"] == dataset).to_numpy()
        if not inside.all():  # one dataset (the common case): no copy of every row
            df = df[inside]
    if df.empty:
        return pd.DataFrame()
    out = latency_percentiles(df)
    for extra in (cost_table(df), reliability_table(df), speed_table(df), accuracy_table(df)):
        out = out.merge(extra.drop(columns=["requests"], errors="ignore"), on="model", how="left")
    prices = runs.prices()
    out["input_usd_per_mtok"] = [float(prices[m][0]) if m in prices else np.nan for m in out.model]
    out["output_usd_per_mtok"] = [float(prices[m][1]) if m in prices else np.nan for m in out.model]
    out["blended_usd_per_mtok"] = [
        float(blended_usd_per_mtok(*prices[m])) if m in prices else np.nan for m in out.model
    ]
    out["on_frontier"] = pareto_frontier(
        out["usd_per_1k_items"].to_numpy(), out["accuracy"].to_numpy(dtype="float64")
    )
    out["on_frontier_blended"] = pareto_frontier(
        out["blended_usd_per_mtok"].to_numpy(), out["accuracy"].to_numpy(dtype="float64")
    )
    out["model"] = out["model"].astype(str)
    return out.sort_values("usd_per_1k_items", kind="stable").reset_index(drop=True)


def cell_table(
    runs: Runs, prepared: pd.DataFrame | None = None, whole: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per model x dataset: `model_table` within each dataset, with its name.

    What a sweep over models and datasets fills in; the frontier flags are per dataset.
    `whole`: `model_table` of the same rows, if the caller has it; when every row is of one
    dataset it is that dataset's table, so it is not computed twice (1M rows: ~1.5 s)."""
    df = prepare(runs.rows) if prepared is None else prepared
    datasets = sorted(str(d) for d in df["dataset"].dropna().unique())
    if whole is not None and len(datasets) == 1 and (df["dataset"] == datasets[0]).all():
        tables = [whole.assign(dataset=datasets[0])]
    else:
        tables = [model_table(runs, dataset=d, prepared=df).assign(dataset=d) for d in datasets]
    tables = [t for t in tables if not t.empty]
    if not tables:
        return pd.DataFrame()
    out = pd.concat(tables, ignore_index=True)
    return out[["dataset", *[c for c in out.columns if c != "dataset"]]]
