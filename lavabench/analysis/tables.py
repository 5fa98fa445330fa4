"""Pure tables -> tables: per-model summary, percentiles, intervals, cost, frontier.

Conventions (shared/docs/statistics.md): warm-up rows are excluded; a failed request counts
as +inf latency (so errors push percentiles up instead of vanishing from them) and as not
correct; percentiles are over requests; cost is summed exactly from integer pico-USD.
Everything is vectorised over rows; Python loops run over models, never over requests.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats

from lavabench.analysis.intervals import accuracy_interval
from lavabench.catalog import PICO_PER_USD
from lavabench.records.reader import Runs

SUMMARY_COLUMNS = [
    "model",
    "n",
    "errors",
    "retried",
    "accuracy",
    "ttft_p50_s",
    "ttft_p90_s",
    "e2e_p50_s",
    "output_tokens_per_s_mean",
    "cost_usd",
]


def measured_rows(table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Rows that count for statistics: everything but warm-up requests."""
    df = table.to_pandas() if isinstance(table, pa.Table) else table
    return df[~df["is_warmup"].fillna(False).astype(bool)]


def latency_with_failures(df: pd.DataFrame, column: str) -> pd.Series:
    """`column` with failed requests set to +inf, as float."""
    values = df[column].astype("float64")
    return values.where(df["status"] == "ok", np.inf)


def per_model_summary(table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """One row per model: n, errors, retried, accuracy, TTFT p50/p90, E2E p50, tok/s, cost."""
    df = measured_rows(table).copy()
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    df["_ttft"] = latency_with_failures(df, "ttft_s")
    df["_e2e"] = latency_with_failures(df, "e2e_s")
    df["_error"] = df["status"] != "ok"
    df["_retried"] = df["attempts"] > 1
    df["_correct"] = df["correct"].fillna(False).astype(bool) & ~df["_error"]
    # Accuracy counts graded answers and failed requests (as wrong) in the denominator.
    df["_in_accuracy"] = df["grader"].notna() | df["_error"]
    df["_cost"] = df["cost_pico_usd"].fillna(0).astype("int64")
    grouped = df.groupby("model", sort=False)
    out = pd.DataFrame(
        {
            "n": grouped.size(),
            "errors": grouped["_error"].sum(),
            "retried": grouped["_retried"].sum(),
            "ttft_p50_s": grouped["_ttft"].agg(percentile, 0.5),
            "ttft_p90_s": grouped["_ttft"].agg(percentile, 0.9),
            "e2e_p50_s": grouped["_e2e"].agg(percentile, 0.5),
            "output_tokens_per_s_mean": grouped["output_tokens_per_s"].mean(),
        }
    )
    accuracy = df[df["_in_accuracy"]].groupby("model", sort=False)["_correct"].mean()
    any_graded = grouped["grader"].count() > 0
    out["accuracy"] = accuracy.reindex(out.index).where(any_graded)
    out["cost_usd"] = [
        Decimal(int(v)) / PICO_PER_USD for v in grouped["_cost"].sum().reindex(out.index)
    ]
    out = out.reset_index()
    return out[SUMMARY_COLUMNS]


# --- reading several runs ----------------------------------------------------------------


# --- per-request derived columns ------------------------------------------------------------


def prepare(table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Measured rows with the derived columns every statistic uses (vectorised).

    `_ttft`/`_e2e`: +inf for failures; `_correct`: failures are wrong; `_in_accuracy`: graded
    or failed; `_cost`: integer pico-USD, 0 for cached answers (not a new request);
    `_timed`: rows whose timings are a measurement (cached answers are not).
    """
    df = measured_rows(table)
    error = (df["status"] != "ok").to_numpy()
    cached = df["response_cached"].fillna(False).astype(bool).to_numpy()
    out = pd.DataFrame(
        {
            "model": df["model"],
            "dataset": df["dataset"],
            "item_id": df["item_id"],
            "dataset_sha256": df.get("dataset_sha256", ""),
        },
        index=df.index,
    )
    out["_error"] = error
    out["_retried"] = (df["attempts"].fillna(1) > 1).to_numpy()
    out["_ttft"] = np.where(error, np.inf, df["ttft_s"].astype("float64"))
    out["_e2e"] = np.where(error, np.inf, df["e2e_s"].astype("float64"))
    out["_timed"] = ~cached
    graded = df["grader"].notna().to_numpy()
    out["_in_accuracy"] = graded | error
    out["_correct"] = df["correct"].fillna(False).astype(bool).to_numpy() & ~error
    out["_cost"] = np.where(cached, 0, df["cost_pico_usd"].fillna(0).astype("int64"))
    for c in ("itl_p50_s", "output_tokens_per_s", "prompt_tokens", "completion_tokens"):
        out[c] = df[c].astype("float64")
    out["error_type"] = df["error_type"]
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


def latency_percentiles(
    df: pd.DataFrame, by: list[str] | None = None, qs: tuple[float, ...] = PERCENTILES
) -> pd.DataFrame:
    """TTFT and E2E percentiles per group over requests, failures included as +inf
    (`percentile`: empty replies are missing, not +inf)."""
    by = by or ["model"]
    timed = df[df["_timed"]]
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
    graded = df[df["_in_accuracy"]]
    keys = [*by, "dataset", "item_id"] if "dataset" not in by else [*by, "item_id"]
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
    return pd.DataFrame(rows, columns=[*columns, "method"])


def accuracy_lower_bound(df: pd.DataFrame, model: str, alpha: float) -> float:
    """One-sided lower bound at level 1-alpha of one model's accuracy (`accuracy_interval`:
    Wilson, or with repeats never tighter than answering each item once); NaN if ungraded."""
    g = df[(df["model"] == model) & df["_in_accuracy"]]
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


def cost_table(df: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Exact total cost and observed cost per item (request) per group, plus tokens per item.

    Cost per item = sum of pico-USD / measured requests (failed ones included: they are part
    of what running the set costs). Cached answers count as requests but cost nothing.
    """
    by = by or ["model"]
    grouped = df.groupby(by, observed=True, sort=False)
    ok = df[~df["_error"] & df["_timed"]].groupby(by, observed=True, sort=False)
    out = pd.DataFrame(
        {
            "requests": grouped.size(),
            "cost_pico_usd": grouped["_cost"].sum().astype("int64"),
            "prompt_tokens_per_item": ok["prompt_tokens"].mean(),
            "completion_tokens_per_item": ok["completion_tokens"].mean(),
        }
    ).reset_index()
    pico = out["cost_pico_usd"].to_numpy()
    out["cost_usd"] = [Decimal(int(v)) / PICO_PER_USD for v in pico]
    out["usd_per_item"] = pico / PICO_PER_USD / out["requests"].to_numpy()
    out["usd_per_1k_items"] = out["usd_per_item"] * 1000
    return out


def reliability_table(df: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Error and retry rates per group, with the most common error kind."""
    by = by or ["model"]
    grouped = df.groupby(by, observed=True, sort=False)
    out = pd.DataFrame(
        {
            "requests": grouped.size(),
            "errors": grouped["_error"].sum(),
            "retried": grouped["_retried"].sum(),
        }
    ).reset_index()
    out["error_rate"] = out["errors"] / out["requests"]
    out["retry_rate"] = out["retried"] / out["requests"]
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
    ok = df[~df["_error"] & df["_timed"]].groupby(by, observed=True, sort=False)
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
    for name, g in df[df["_timed"]].groupby(by, observed=True, sort=True):
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
        df = df[df["dataset"] == dataset]
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


def cell_table(runs: Runs, prepared: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per model x dataset: `model_table` within each dataset, with its name.

    What a sweep over models and datasets fills in; the frontier flags are per dataset."""
    df = prepare(runs.rows) if prepared is None else prepared
    datasets = sorted(str(d) for d in df["dataset"].dropna().unique())
    tables = [model_table(runs, dataset=d, prepared=df).assign(dataset=d) for d in datasets]
    tables = [t for t in tables if not t.empty]
    if not tables:
        return pd.DataFrame()
    out = pd.concat(tables, ignore_index=True)
    return out[["dataset", *[c for c in out.columns if c != "dataset"]]]
