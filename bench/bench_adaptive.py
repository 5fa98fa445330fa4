"""Adaptive pick vs the full run on seeded simulations -> bench/results/adaptive.md.

100 simulations per scenario of 20 models with known skills (true accuracy per answer), theta
0.85, 1,319 items (GSM8K's test set). Answers are paired: each item has one difficulty shared by
all models (a Gaussian copula, correlation RHO), so a model's answer is right with exactly its
skill's probability and models agree on which items are hard (statistics.md, "Simulator truth").
Items are shuffled per simulation and sent in rounds of BATCH to the models `plan` asks for,
with the decisions of lavabench.analysis.adaptive (the code `lavabench pick --adaptive` uses).

Wrong pick (counted per simulation):
- the pick's true accuracy is below theta, or
- a cheaper model whose true accuracy is above theta was not picked (a model *at* theta is not
  "truly adequate": no test can tell it from theta, and accepting it is the error the test
  bounds at alpha/K).
The two halves are shown apart: "below the bar" is the error the test bounds (validity); a
missed cheaper adequate model is power (the "simulator" scenario has adequate models at 0.854
and 0.861 that no 1,319-item test certifies reliably, so the full run misses them too: its own
count is printed beside). "No pick" (nothing certified) is counted apart, like "pick differs
from the full run's". The full run = every model on every item, `pick`'s rule (one-sided Wilson
at alpha/K >= theta).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import stats

from lavabench.analysis.adaptive import ALPHA, Design, describe, run_rounds
from lavabench.analysis.intervals import wilson_interval

ROOT = Path(__file__).resolve().parent.parent
THETA, ITEMS, RHO = 0.85, 1319, 0.5
# USD per item, cheapest first (spread like the catalog's blended list prices x GSM8K tokens)
PRICES = np.geomspace(2e-5, 4e-3, 20)
SCENARIOS = {
    # no model at theta cheaper than the cheapest adequate one (statistics.md's setting)
    "clear": [0.30, 0.45, 0.55, 0.62, 0.70, 0.74, 0.78, 0.80, 0.93, 0.88,
              0.85, 0.95, 0.90, 0.85, 0.97, 0.92, 0.96, 0.98, 0.94, 0.97],
    # two models exactly at theta are cheaper than the cheapest adequate one
    "at-threshold": [0.30, 0.45, 0.55, 0.62, 0.85, 0.74, 0.78, 0.85, 0.93, 0.88,
                     0.85, 0.95, 0.90, 0.85, 0.97, 0.92, 0.96, 0.98, 0.94, 0.97],
    # the simulator's 20 models on GSM8K (accuracies of a full run, in its cost order): most
    # sit within a few points of the bar, the cheapest adequate one at 0.882
    "simulator": [0.676, 0.632, 0.830, 0.722, 0.764, 0.850, 0.547, 0.766, 0.692, 0.861,
                  0.787, 0.440, 0.801, 0.834, 0.824, 0.854, 0.882, 0.837, 0.882, 0.898],
}  # fmt: skip
ROWS = ((25, 1), (25, 3), (25, None))  # (batch, window)


def answers(rng: np.random.Generator, skills: np.ndarray) -> np.ndarray:
    """(models, items) bool: right with probability = skill, item difficulty shared."""
    z_item = rng.standard_normal(ITEMS)
    z = RHO**0.5 * z_item + (1 - RHO) ** 0.5 * rng.standard_normal((len(skills), ITEMS))
    return stats.norm.cdf(z) < skills[:, None]


def adaptive_run(x: np.ndarray, batch: int, window: int | None) -> tuple[np.ndarray, str | None]:
    """Items used per model and the certified pick, rounds as `plan` schedules them."""
    names = [f"m{i:02d}" for i in range(len(x))]
    r = run_rounds(dict(zip(names, x, strict=True)), dict(zip(names, PRICES, strict=True)),
                   THETA, alpha=ALPHA, batch=batch, window=window)  # fmt: skip
    used = {s.model: s.items for s in r.states}
    return np.array([used[n] for n in names]), r.plan.pick


def full_run_pick(x: np.ndarray) -> int | None:
    k = len(x)
    for i in range(k):
        lo = wilson_interval(int(x[i].sum()), ITEMS, 1 - ALPHA / k, "greater")[0]
        if lo >= THETA:
            return i
    return None


def simulate(skills: list[float], sims: int, batch: int, window: int | None) -> dict:
    s = np.asarray(skills)
    adequate = np.flatnonzero(s > THETA)
    count = dict.fromkeys(("below", "missed", "full_missed", "nopick", "differs"), 0)
    req = spend = 0.0
    for seed in range(sims):
        x = answers(np.random.default_rng(seed), s)
        used, pick = adaptive_run(x, batch, window)
        full = full_run_pick(x)
        i = None if pick is None else int(pick[1:])
        count["nopick"] += i is None
        count["below"] += i is not None and s[i] < THETA
        count["missed"] += bool((adequate < (len(s) if i is None else i)).any())
        count["full_missed"] += bool((adequate < (len(s) if full is None else full)).any())
        count["differs"] += i != full
        req += used.sum() / (ITEMS * len(s))
        spend += (used * PRICES).sum() / (ITEMS * PRICES.sum())
    return {**count, "requests": req / sims, "spend": spend / sims}


def _rate(k: int, n: int) -> str:
    lo, hi = wilson_interval(k, n)
    return f"{k}/{n} [{lo:.3f}, {hi:.3f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=100)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "adaptive.md")
    opts = ap.parse_args()
    t0 = time.perf_counter()
    full_requests = ITEMS * len(PRICES)
    lines = [
        "# Adaptive pick vs full run (bench/bench_adaptive.py)",
        "",
        f"{opts.sims} seeded simulations per row; 20 models, theta {THETA}, {ITEMS} items, "
        f"alpha {ALPHA}; {describe(Design(THETA, ITEMS, len(PRICES)))}; full run = "
        f"{full_requests:,} requests, ${ITEMS * PRICES.sum():.2f}. Intervals: Wilson 95 %.",
        "",
        "| scenario | batch | window | pick below the bar | cheaper adequate missed "
        "(full run's own) | no pick | pick differs from full run | requests vs full "
        "| spend vs full |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, skills in SCENARIOS.items():
        for batch, window in ROWS:
            r = simulate(skills, opts.sims, batch, window)
            lines.append(
                f"| {name} | {batch} | {window or 'all'} | {_rate(r['below'], opts.sims)} "
                f"| {_rate(r['missed'], opts.sims)} ({r['full_missed']}/{opts.sims}) "
                f"| {_rate(r['nopick'], opts.sims)} | {_rate(r['differs'], opts.sims)} "
                f"| {r['requests']:.1%} ({r['requests'] * full_requests:,.0f}) "
                f"| {r['spend']:.1%} |"
            )
    lines += ["", "Skills (cheapest first): " + "; ".join(
        f"{n}: {', '.join(f'{v:.2f}' for v in s)}" for n, s in SCENARIOS.items())]  # fmt: skip
    lines.append(f"\nWall time {time.perf_counter() - t0:.1f} s.")
    opts.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
