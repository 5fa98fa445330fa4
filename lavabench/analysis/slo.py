"""Pure: latency service levels. "95 % of answers start within 1.5 s", with a lower bound.

statistics.md, "SLO attainment": the share of requests meeting a latency target, failures
counted as misses, with a one-sided Wilson lower bound at alpha/K like accuracy (the one
Wilson of analysis.intervals). A model meets an SLO when that *bound* is >= the stated share,
so a lucky small sample does not pass.

Metrics: `ttft` (first reasoning or answer token), `first_answer` (first answer token: what
a user of a reasoning model waits for), `e2e` (last byte). Which requests count: measured ones
(`_timed`: cached answers are no measurement). A failed request is +inf (prepare), a request
whose metric is missing (an ok reply that never sent an answer token, for `first_answer`) is
a miss too: the user never got that token, so it did not arrive within the target.

Spelled on the command line as METRIC:SECONDS:SHARE, e.g. `--slo ttft:1.5:0.95`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lavabench.analysis.intervals import wilson_interval

COLUMNS = {"ttft": "_ttft", "first_answer": "_first_answer", "e2e": "_e2e"}
LABELS = {"ttft": "TTFT", "first_answer": "first answer token", "e2e": "E2E"}
FORM = "METRIC:SECONDS:SHARE, e.g. ttft:1.5:0.95 (METRIC one of ttft, first_answer, e2e)"


@dataclass(frozen=True)
class Slo:
    metric: str  # a key of COLUMNS
    target_s: float
    share: float  # of requests, strictly between 0 and 1

    def __str__(self) -> str:
        return f"{self.share * 100:g} % of {LABELS[self.metric]} <= {self.target_s:g} s"


def parse_slo(text: str) -> Slo:
    """`ttft:1.5:0.95` -> Slo; ValueError naming the text and the expected form."""
    parts = text.split(":")
    try:
        metric, target, share = parts[0].strip().lower(), float(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        raise ValueError(f"--slo {text!r}: expected {FORM}") from None
    if len(parts) != 3 or metric not in COLUMNS:
        raise ValueError(f"--slo {text!r}: expected {FORM}")
    if not (target > 0 and math.isfinite(target)) or not 0 < share < 1:
        raise ValueError(f"--slo {text!r}: SECONDS must be > 0 and SHARE between 0 and 1")
    return Slo(metric, target, share)


@dataclass(frozen=True)
class Attainment:
    slo: Slo
    met: int
    n: int  # measured requests, failures included
    lower: float  # one-sided lower bound at the level used; NaN when n = 0

    @property
    def share(self) -> float:
        return self.met / self.n if self.n else math.nan

    @property
    def meets(self) -> bool:
        return self.lower >= self.slo.share  # NaN (no request) never meets

    def describe(self) -> str:
        return (
            f"{LABELS[self.slo.metric]} <= {self.slo.target_s:g} s on {self.met}/{self.n} "
            f"({self.share:.1%}, lower bound {self.lower:.1%})"
        )


def attainment_lower_bound(met: int, n: int, alpha: float) -> float:
    """One-sided lower bound at level 1 - alpha of the share met; NaN when n = 0."""
    return wilson_interval(met, n, 1 - alpha, "greater")[0]


def attainment(timed: pd.DataFrame, slo: Slo, alpha: float) -> Attainment:
    """The SLO over `timed` rows (prepare's columns; failures +inf): met, n, lower bound."""
    column = COLUMNS[slo.metric]
    if column not in timed:
        values = np.full(len(timed), np.nan)
    else:
        values = timed[column].to_numpy(dtype="float64")
    met = int(np.sum(values <= slo.target_s))  # NaN and +inf compare False: misses
    n = len(values)
    return Attainment(slo, met, n, attainment_lower_bound(met, n, alpha))
