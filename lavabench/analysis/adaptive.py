"""Pure: the adaptive pick. Anytime-valid tests per model and the decision over models.

statistics.md, "Adaptive pick". Per model, two wealth processes over its graded answers
x_1..x_n (1 right, 0 wrong or failed, in the order the items were sent):

    W+ = mean over q in a grid above theta of prod (q/theta)^x ((1-q)/(1-theta))^(1-x)
    W- = the same over a grid below theta.

Each term is a likelihood ratio, a nonnegative supermartingale when the true accuracy p is
<= theta (W+) or >= theta (W-), and so is their mean. By Ville's inequality
P(sup_n W+ >= K/alpha) <= alpha/K when p <= theta: "accepted" (W+ crossed K/alpha) certifies
p > theta at level alpha/K however early or often we look, which is what makes stopping early
valid (a Wilson bound checked every round passed a model at exactly theta in 27 % of runs at
nominal 5 %). "rejected" (W- crossed) certifies p < theta likewise. Neither crossed when items
run out: "undecided", which is *not certified*, never "passed".

The decision over models (price order, cheapest first): the pick is the first accepted model
whose cheaper rivals are all rejected. More items are needed only by undecided models cheaper
than the cheapest accepted one (`plan`). Decisions are sticky: a model's decision is the first
crossing along its own sequence, so it is a function of the answers in send order only. State
is rebuilt from rows each time (`states_from_answers`), never kept only in memory, so a resumed
run reproduces the uninterrupted run's decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import logsumexp

ALPHA = 0.05
GRID_POINTS = 20
Decision = Literal["accepted", "rejected", "undecided"]


def grids(theta: float, points: int = GRID_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Alternatives strictly above and strictly below theta, evenly spaced (uniform prior)."""
    if not 0.0 < theta < 1.0:
        raise ValueError(f"min quality must be strictly between 0 and 1, got {theta}")
    frac = np.arange(1, points + 1) / (points + 1)
    return theta + (1.0 - theta) * frac, theta * frac


def log_wealth_paths(x: np.ndarray, theta: float, points: int = GRID_POINTS) -> np.ndarray:
    """log W+ and log W- after each answer: shape (2, ..., n) for answers x of shape (..., n).

    Vectorised over leading axes (the bench passes many models and seeds at once)."""
    x = np.asarray(x, dtype="float64")
    k = np.cumsum(x, axis=-1)
    n = np.arange(1, x.shape[-1] + 1, dtype="float64")
    out = []
    for grid in grids(theta, points):
        up = np.log(grid / theta)  # per right answer
        down = np.log((1.0 - grid) / (1.0 - theta))  # per wrong answer
        # (..., n, grid): log likelihood ratio of each alternative, then log of their mean
        llr = k[..., None] * up + (n - k)[..., None] * down
        out.append(logsumexp(llr, axis=-1) - math.log(len(grid)))
    return np.stack(out)


def first_crossing(log_w: np.ndarray, threshold: float) -> np.ndarray:
    """Answers needed (1-based) until log_w first reaches log(threshold); 0 if it never does."""
    hit = log_w >= math.log(threshold)
    first = np.argmax(hit, axis=-1) + 1
    return np.where(hit.any(axis=-1), first, 0)


@dataclass(frozen=True)
class ModelState:
    """One model's test after `items` answers (its decision is the first crossing, if any)."""

    model: str
    price: float  # the ordering key (a run: blended list price; a replay: observed cost), NaN = unknown
    items: int
    correct: int
    decision: Decision
    decided_at: int | None  # answers at the first crossing
    log_w_plus: float  # at the decision (or after all answers when undecided)
    log_w_minus: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.items if self.items else math.nan


def model_state(
    model: str,
    price: float,
    x: np.ndarray,
    theta: float,
    alpha: float,
    k: int,
    paths: np.ndarray | None = None,
) -> ModelState:
    """The test for one model on its answers in send order (K = candidates, bar = K/alpha).

    `paths`: `log_wealth_paths(x, theta)` if already computed (the bench computes them once
    for all items and passes prefixes)."""
    x = np.asarray(x, dtype="float64")
    if len(x) == 0:
        return ModelState(model, price, 0, 0, "undecided", None, 0.0, 0.0)
    paths = log_wealth_paths(x, theta) if paths is None else paths
    t_plus, t_minus = (int(t) for t in first_crossing(paths, k / alpha))
    # W+ and W- cannot both be large on one answer; the earlier crossing decides (sticky)
    crossings = [(t, d) for t, d in ((t_plus, "accepted"), (t_minus, "rejected")) if t]
    t, decision = min(crossings) if crossings else (0, "undecided")
    at = (t or len(x)) - 1
    return ModelState(
        model,
        price,
        len(x),
        int(x.sum()),
        decision,  # type: ignore[arg-type]
        t or None,
        float(paths[0, at]),
        float(paths[1, at]),
    )


def states_from_answers(
    answers: dict[str, np.ndarray], prices: dict[str, float], theta: float, alpha: float = ALPHA
) -> list[ModelState]:
    """Every candidate's state, cheapest first (unknown price last, then by name); K = all."""
    order = sorted(answers, key=lambda m: (_price_key(prices.get(m, math.nan)), m))
    k = max(1, len(order))
    return [model_state(m, prices.get(m, math.nan), answers[m], theta, alpha, k) for m in order]


def _price_key(price: float) -> float:
    return math.inf if price is None or math.isnan(price) else price


def prefix_state(full: ModelState, x: np.ndarray, paths: np.ndarray, n: int) -> ModelState:
    """`model_state` on the first n answers, from the state and paths on all of them.

    The first crossing within n answers is the overall first crossing if that is <= n, so this
    equals `model_state(..., x[:n])` (a test checks) at O(1): the bench calls it every round."""
    if n == 0:
        return ModelState(full.model, full.price, 0, 0, "undecided", None, 0.0, 0.0)
    correct = int(np.sum(x[:n]))
    if full.decided_at is not None and full.decided_at <= n:
        return ModelState(**{**full.__dict__, "items": n, "correct": correct})
    return ModelState(
        full.model, full.price, n, correct, "undecided", None,
        float(paths[0, n - 1]), float(paths[1, n - 1]),
    )  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """What the states say: the pick (if any), who needs more items, whether we stop."""

    pick: str | None  # accepted, every cheaper model rejected or not certified
    not_certified: list[str]  # cheaper than the pick (or all): undecided with items exhausted
    need_items: list[str]  # undecided models cheaper than the cheapest accepted (by price)
    done: bool


def plan(
    states: list[ModelState],
    items_total: int,
    window: int | None = None,
    sent: dict[str, int] | None = None,
) -> Plan:
    """The decision rule over models in price order, and the next round's models.

    The pick is the cheapest accepted model once every cheaper model is either rejected or
    undecided with no item left ("not certified": it does not qualify, as in the full-run
    `pick`, where a model whose bound misses the bar does not qualify). Undecided models
    cheaper than the cheapest accepted one get more items; more expensive ones are never
    needed. `window` limits a round to the `window` cheapest models needing items (None:
    all); it changes spend and rounds, never the validity of a decision. `sent`: items sent
    per model when that differs from answers graded (ungraded answers are not answers)."""
    sent = sent or {}
    accepted = next((s for s in states if s.decision == "accepted"), None)
    cheaper = states[: states.index(accepted)] if accepted else states
    undecided = [s for s in cheaper if s.decision == "undecided"]
    exhausted = [s.model for s in undecided if sent.get(s.model, s.items) >= items_total]
    need = [s.model for s in undecided if sent.get(s.model, s.items) < items_total]
    pick = accepted.model if accepted and not need else None
    return Plan(pick, exhausted, need[:window] if window else need, not need)


@dataclass(frozen=True)
class Rounds:
    """Rounds of `batch` items sent as `plan` asks, on answers known in advance."""

    states: list[ModelState]  # price order, at the end
    plan: Plan
    rounds: int


def run_rounds(
    answers: dict[str, np.ndarray],
    prices: dict[str, float],
    theta: float,
    *,
    alpha: float = ALPHA,
    batch: int = 25,
    window: int | None = None,
) -> Rounds:
    """The adaptive schedule replayed on answers in send order (the bench's simulations, and
    `pick --replay-adaptive` on a full run): each round gives the next `batch` items to every
    model `plan` names, until it says done. Items per model = min over the answers given."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    order = [s.model for s in states_from_answers({m: a[:0] for m, a in answers.items()},
                                                  prices, theta, alpha)]  # fmt: skip
    total = min((len(a) for a in answers.values()), default=0)
    xs = {m: np.asarray(answers[m][:total], dtype="float64") for m in order}
    paths = {m: log_wealth_paths(xs[m], theta) for m in order}
    k = max(1, len(order))
    full = {m: model_state(m, prices.get(m, math.nan), xs[m], theta, alpha, k, paths[m])
            for m in order}  # fmt: skip
    used = dict.fromkeys(order, 0)
    rounds = 0
    while True:
        states = [prefix_state(full[m], xs[m], paths[m], used[m]) for m in order]
        p = plan(states, total, window)
        if p.done:
            return Rounds(states, p, rounds)
        rounds += 1
        for m in p.need_items:
            used[m] = min(total, used[m] + batch)


def answers_from_rows(
    prepared: pd.DataFrame, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per model its answers (1 right, 0 wrong or failed) and costs (pico-USD, NaN unknown)
    on the items every model answered, in one seeded shuffled order shared by all models
    (paired). The first answer per item counts (repeats are later answers, not new items)."""
    keys = ["dataset", "dataset_sha256", "item_id"]
    graded = prepared[prepared["_in_accuracy"]].drop_duplicates(["model", *keys])
    per_model = {str(m): g.set_index(keys) for m, g in graded.groupby("model", observed=True)}
    if not per_model:
        return {}, {}
    shared = sorted(set.intersection(*(set(g.index) for g in per_model.values())))
    order = [shared[i] for i in np.random.default_rng(seed).permutation(len(shared))]
    answers = {m: g.loc[order, "_correct"].to_numpy(dtype="float64") for m, g in per_model.items()}
    costs = {m: g.loc[order, "_cost"].to_numpy(dtype="float64") for m, g in per_model.items()}
    return answers, costs


def format_rounds(r: Rounds, costs: dict[str, np.ndarray], items: int, theta: float) -> str:
    """Every model's decision with items used, wealths and spend; the pick; totals vs all."""
    bar = math.log(len(r.states) / ALPHA) if r.states else math.nan
    lines = [f"adaptive pick (theta {theta}, bar log(K/alpha) = {bar:.2f}, {r.rounds} rounds):"]
    spent = full = 0.0
    for s in r.states:
        c = costs.get(s.model, np.array([]))
        used_cost, all_cost = float(np.sum(c[: s.items])), float(np.sum(c[:items]))
        spent, full = spent + used_cost, full + all_cost
        decided = f" at item {s.decided_at}" if s.decided_at else ""
        verdict = s.decision if s.decision != "undecided" else "undecided (not certified)"
        lines.append(
            f"  {s.model}: {verdict}{decided}; {s.items} items, accuracy {s.accuracy:.3f}, "
            f"log W+ {s.log_w_plus:.2f}, log W- {s.log_w_minus:.2f}, "
            f"${_usd(used_cost)}"
        )
    p = r.plan
    lines.append(f"  pick: {p.pick or 'none certified'}")
    if p.not_certified:
        lines.append(f"  not certified (items ran out): {', '.join(p.not_certified)}")
    used = sum(s.items for s in r.states)
    total = items * len(r.states)
    lines.append(
        f"  requests {used:,} of {total:,} ({used / total:.1%}); spend ${_usd(spent)} of "
        f"${_usd(full)}" + (f" ({spent / full:.1%})" if full > 0 else "")
    )
    return "\n".join(lines)


def _usd(pico: float) -> str:
    return "unknown" if math.isnan(pico) else f"{pico / 1e12:.4f}"
