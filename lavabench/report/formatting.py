"""Pure: numbers as people read them, one definition for the page, summary.md and the card.

Seconds under 10 show as milliseconds (`6.2 ms`), shares as percent (`68.3 %`), dollars with
enough significant digits to tell models apart (`$0.0141`); a missing value is `—` and an
unknown cost is `unknown`, never 0. Each model-table column has a label, a unit and a
format; the page also gets the raw number of each cell to sort on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

MISSING = "—"
UNKNOWN = "unknown"
# analysis.cost_table's `cost_basis`: what a model's cost rests on
ESTIMATED_BASES = ("estimate", "estimated", "partly estimated")


def _number(value: Any) -> float | None:
    """A float, or None when the value is missing (None, NaN, pd.NA)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return float(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def usd(value: Any, sig: int = 3, *, trim: bool = False) -> str:
    """`$0.0141`, `$1.23`, `$1,234`: `sig` significant digits, at least cents above $1."""
    x = _number(value)
    if x is None:
        return MISSING
    if math.isinf(x):
        return "∞"
    if x == 0:
        return "$0"
    magnitude = math.floor(math.log10(abs(x)))
    digits = max(0 if abs(x) >= 100 else 2 if abs(x) >= 1 else 0, sig - 1 - magnitude)
    text = f"{abs(x):,.{digits}f}"
    if trim and "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{'-' if x < 0 else ''}${text}"


def usd_tick(value: float, _pos: Any = None) -> str:
    """A cost axis tick: `$0.02`, `$0.5`, `$3` (matplotlib FuncFormatter signature)."""
    return usd(value, sig=2, trim=True)


def ms(seconds: Any) -> str:
    """Seconds as `6.2 ms`, `158 ms`, `1.53 s`; +inf (failures in a percentile) as `∞`."""
    x = _number(seconds)
    if x is None:
        return MISSING
    if math.isinf(x):
        return "∞"
    if x >= 10:
        return f"{x:.1f} s"
    if x >= 1:
        return f"{x:.2f} s"
    value = x * 1000
    return (
        f"{value:.0f} ms"
        if value >= 100
        else f"{value:.1f} ms"
        if value >= 1
        else f"{value:.2f} ms"
    )


def percent(share: Any) -> str:
    """A share 0..1 as `68.3 %` (`0 %` exactly when none)."""
    x = _number(share)
    if x is None:
        return MISSING
    return "0 %" if x == 0 else f"{100 * x:.1f} %"


def count(value: Any) -> str:
    x = _number(value)
    return MISSING if x is None else f"{x:,.0f}"


def rate(value: Any) -> str:
    """Tokens per second (or any rate) with 3 significant digits."""
    x = _number(value)
    return MISSING if x is None else f"{x:.3g}" if x < 1000 else f"{x:,.0f}"


def yes(value: Any) -> str:
    return "yes" if value is True or value is np.True_ else ""


def cost_text(value: Any, basis: Any = None, sig: int = 3) -> str:
    """A cost cell: `unknown` when missing (never $0), `est.` when it rests on estimates."""
    if _number(value) is None:
        return UNKNOWN
    return usd(value, sig) + (" est." if str(basis) in ESTIMATED_BASES else "")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    fmt: Callable[[Any], str]
    cost: bool = False  # an unknown value reads "unknown", an estimate "est."


# The model table, left to right; a column shows when analysis returned it.
COLUMNS = (
    Column("dataset", "dataset", str),
    Column("model", "model", str),
    Column("requests", "requests", count),
    Column("accuracy", "accuracy", percent),
    Column("acc_lo", "acc 95% lo", percent),
    Column("acc_hi", "acc 95% hi", percent),
    Column("usd_per_1k_items", "$ / 1k items", usd, cost=True),
    Column("cost_usd", "total $", usd, cost=True),
    Column("judge_cost_usd", "judge $", usd, cost=True),
    Column("blended_usd_per_mtok", "blended $ / 1M tok", usd),
    Column("ttft_p50_s", "TTFT p50", ms),
    Column("ttft_p90_s", "TTFT p90", ms),
    Column("ttft_p99_s", "TTFT p99", ms),
    Column("e2e_p50_s", "E2E p50", ms),
    Column("e2e_p90_s", "E2E p90", ms),
    Column("e2e_p99_s", "E2E p99", ms),
    Column("itl_p50_s", "ITL p50", ms),
    Column("tok_s_p50", "out tok/s p50", rate),
    Column("error_rate", "errors", percent),
    Column("retry_rate", "retried", percent),
    Column("unparsed_rate", "unparsed", percent),  # tool-call / json format failures
    Column("on_frontier", "frontier", yes),
)


def sort_key(value: Any) -> str:
    """What a cell sorts by: its text, or its number (`Infinity` for failures); missing: ""."""
    if isinstance(value, str):
        return value
    x = _number(float(value) if isinstance(value, Decimal) else value)
    if x is None:
        return ""
    return repr(x) if not math.isinf(x) else ("Infinity" if x > 0 else "-Infinity")


# summary.md's narrower table (GitHub's renderer scrolls past ~12 columns); the page has all
COMPACT = ("dataset", "model", "requests", "accuracy", "acc_lo", "usd_per_1k_items", "cost_usd",
           "judge_cost_usd", "ttft_p50_s", "ttft_p90_s", "e2e_p90_s", "error_rate", "on_frontier")  # fmt: skip


def display_cells(
    table: pd.DataFrame, keys: tuple[str, ...] | None = None
) -> list[tuple[Column, list[tuple[str, str]]]]:
    """Per shown column: (column, [(text, sort key) per row]). Text carries the unit."""
    basis = table["cost_basis"] if "cost_basis" in table else pd.Series([None] * len(table))
    out = []
    for column in COLUMNS:
        if column.key not in table or (keys is not None and column.key not in keys):
            continue
        values = list(table[column.key])
        if column.cost:
            texts = [cost_text(v, b) for v, b in zip(values, basis, strict=True)]
        else:
            texts = [column.fmt(v) for v in values]
        out.append((column, [(t, sort_key(v)) for t, v in zip(texts, values, strict=True)]))
    return out


def notes_for(table: pd.DataFrame) -> list[str]:
    """What the reader must know to read the cost cells: unknown and estimated costs."""
    notes = []
    unknown = [
        str(m)
        for m, v in zip(table["model"], table.get("usd_per_1k_items", []), strict=False)
        if _number(v) is None
    ]
    if unknown:
        notes.append(
            f"Cost unknown for {', '.join(unknown)}: some answers came back without usage, so "
            "the total would be a guess; it is shown as unknown, never as $0, and the model is "
            "not ranked by cost."
        )
    if "cost_basis" in table and table["cost_basis"].astype(str).isin(ESTIMATED_BASES).any():
        notes.append(
            "est. = the cost rests partly on estimated tokens (list price x tokens counted "
            "from the text), not on the server's usage."
        )
    if "unparsed_rate" in table:
        notes.append(
            "unparsed = answers not in the grader's format (tool-call arguments, JSON), apart "
            "from wrong answers; — = no grader checked the format."
        )
    if "judge_cost_usd" in table:
        notes.append(
            "judge $ = what the LLM judge's own requests cost, kept apart from the models' cost."
        )
    return notes
