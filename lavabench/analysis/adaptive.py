"""Pure: the adaptive pick. A group-sequential test per model and the decision over models.

statistics.md, "Adaptive pick", with two additions that make it reach the full run's pick near
the bar (below). Per model, over its graded answers x_1..x_n (1 right, 0 wrong or failed, in the
order the items were sent), the first of these events decides:

- **accepted (early)**: W+ >= K/alpha_seq, where
  W+ = mean over q in a grid above theta of prod (q/theta)^x ((1-q)/(1-theta))^(1-x).
  Each term is a likelihood ratio, a nonnegative supermartingale when the true accuracy
  p <= theta, and so is their mean; by Ville's inequality P(sup_n W+ >= K/alpha_seq) <=
  alpha_seq/K: valid however early or often we look (a Wilson bound checked every round passed
  a model at exactly theta in 27 % of runs at nominal 5 %).
- **rejected**: W- (the same over a grid below theta) >= K/alpha: certified below theta.
- **futile** (not certified): after `min_items` answers, checked every `look` answers, the
  predictive probability of passing the final look (Beta(1, 1) prior, beta-binomial over the
  items left) is below `futility`. Stopping for futility never accepts anything, so it cannot
  raise the error rate (a non-binding futility bound); its price is power, which the bench
  measures.
- **accepted (final)**: items exhausted and the one-sided Wilson lower bound at alpha_final/K
  is >= theta (the full run's `pick` rule, at the share of alpha left to it). Otherwise the
  model is *not certified*, never "passed".

alpha_seq + alpha_final = alpha, so P(accept a model with p <= theta) <= alpha/K (a union bound
over the two ways in). Why the final look: near the bar an anytime-valid test cannot match a
fixed-sample one (the simulator's kimi-k2p6 at 0.882 against theta 0.85: W+ reaches 40 of the
400 it needs after all 1,319 GSM8K items, while the full run's Wilson bound is 0.854). Why
futility: the full run's "rejected" only means "bound below the bar", and a model at 0.86 can
never be certified below 0.85 (W-), so without it every near-bar model costs every item.

The decision over models (price order, cheapest first): the pick is the first accepted model
whose cheaper rivals are all rejected, futile, or not certified. More items are needed only by
undecided models cheaper than the cheapest accepted one (`plan`); `window` sends to the
cheapest few (1 spends least; more finishes sooner). Decisions are sticky: a model's decision
is the first event along its own sequence, so it is a function of the answers in send order
only. State is rebuilt from rows each time (`states_from_answers`), never kept only in memory,
so a resumed run reproduces the uninterrupted run's decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import logsumexp

from lavabench.analysis.intervals import wilson_interval

ALPHA = 0.05
SEQ_SHARE = 0.5  # of alpha, for early acceptance (the rest goes to the final look)
FUTILITY = 0.02  # stop when the chance to pass the final look falls below this
MIN_ITEMS = 25  # answers before the first futility look
LOOK = 25  # answers between futility looks (fixed answer counts: send order only)
GRID_POINTS = 20
Decision = Literal["accepted", "rejected", "futile", "undecided"]


@dataclass(frozen=True)
class Design:
    """The per-model test's settings, shared by every model of one pick."""

    theta: float
    items_total: int  # N: the items every model can be sent
    k: int = 1  # candidates (the Bonferroni K in alpha/K)
    alpha: float = ALPHA
    seq_share: float = SEQ_SHARE
    futility: float = FUTILITY
    min_items: int = MIN_ITEMS
    look: int = LOOK

    def __post_init__(self) -> None:
        if not 0.0 < self.theta < 1.0:
            raise ValueError(f"min quality must be strictly between 0 and 1, got {self.theta}")
        if not 0.0 < self.alpha < 1.0 or not 0.0 <= self.seq_share <= 1.0:
            raise ValueError("alpha must be in (0, 1) and seq_share in [0, 1]")
        if not 0.0 <= self.futility < 1.0 or self.min_items < 1 or self.look < 1:
            raise ValueError("futility must be in [0, 1), min_items and look >= 1")

    @property
    def log_accept_bar(self) -> float:
        """log(K / alpha_seq): W+ above it accepts early (never, if alpha_seq is 0)."""
        seq = self.alpha * self.seq_share
        return math.log(self.k / seq) if seq > 0 else math.inf

    @property
    def log_reject_bar(self) -> float:
        return math.log(self.k / self.alpha)

    @property
    def final_confidence(self) -> float:
        """One-sided confidence of the final look's Wilson bound: 1 - alpha_final / K."""
        return 1.0 - self.alpha * (1.0 - self.seq_share) / self.k

    def final_needed(self, n: int) -> int:
        """Right answers out of n the final look needs (n + 1: it cannot pass)."""
        if self.seq_share >= 1.0:
            return n + 1
        return _final_needed(n, self.theta, self.final_confidence)


@lru_cache(maxsize=4096)
def _final_needed(n: int, theta: float, confidence: float) -> int:
    """Smallest k whose one-sided Wilson lower bound clears theta (monotone in k: bisect)."""
    lo, hi = 0, n + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if n > 0 and wilson_interval(mid, n, confidence, "greater")[0] >= theta:
            hi = mid
        else:
            lo = mid + 1
    return lo


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


def pass_chance_path(x: np.ndarray, design: Design, final_n: int | None = None) -> np.ndarray:
    """After each answer, the predictive chance of passing the final look (NaN off a look).

    Looks at n = min_items, min_items + look, ... while items are left. The final look is
    over `final_n` answers (default: every item; fewer when some answers are ungraded)."""
    x = np.asarray(x, dtype="float64")
    out = np.full(len(x), math.nan)
    total = design.items_total if final_n is None else final_n
    n = np.arange(design.min_items, min(len(x), total - 1) + 1, design.look)
    if len(n) == 0:
        return out
    k = np.cumsum(x)[n - 1]
    need = design.final_needed(total) - k  # right answers still needed among those left
    left = total - n
    chance = stats.betabinom.sf(need - 1, left, k + 1, n - k + 1)
    out[n - 1] = np.where(need <= 0, 1.0, np.where(need > left, 0.0, chance))
    return out


def first_crossing(log_w: np.ndarray, threshold: float) -> np.ndarray:
    """Answers needed (1-based) until log_w first reaches log(threshold); 0 if it never does."""
    return _first(log_w >= math.log(threshold))


def _first(hit: np.ndarray) -> np.ndarray:
    first = np.argmax(hit, axis=-1) + 1
    return np.where(hit.any(axis=-1), first, 0)


class Evidence(NamedTuple):
    """One model's paths over all its answers (computed once, read at any prefix)."""

    log_w_plus: np.ndarray
    log_w_minus: np.ndarray
    pass_chance: np.ndarray


def evidence(x: np.ndarray, design: Design, final_n: int | None = None) -> Evidence:
    w = log_wealth_paths(x, design.theta)
    return Evidence(w[0], w[1], pass_chance_path(x, design, final_n))


@dataclass(frozen=True)
class ModelState:
    """One model's test after `items` answers (its decision is the first event, if any)."""

    model: str
    price: float  # the ordering key (a run: blended list price; a replay: observed cost), NaN = unknown
    items: int
    correct: int
    decision: Decision
    decided_at: int | None  # answers at the deciding event
    log_w_plus: float  # at the decision (or after all answers when undecided)
    log_w_minus: float
    pass_chance: float = math.nan  # the last futility look's chance to pass the final look
    final_look: bool = False  # accepted by the final look (items exhausted), not early

    @classmethod
    def empty(cls, model: str, price: float) -> ModelState:
        """Before any answer: undecided, both wealths at 1 (log 0)."""
        return cls(model, price, 0, 0, "undecided", None, 0.0, 0.0)

    @property
    def accuracy(self) -> float:
        return self.correct / self.items if self.items else math.nan

    @property
    def how(self) -> str:
        """The decision in words, as printed and stored."""
        if self.decision == "accepted":
            return "accepted (final look)" if self.final_look else "accepted (early)"
        if self.decision == "futile":
            return "not certified (futile)"
        return self.decision


def model_state(
    model: str,
    price: float,
    x: np.ndarray,
    design: Design,
    *,
    exhausted: bool = False,
    ev: Evidence | None = None,
    final_n: int | None = None,
) -> ModelState:
    """The test for one model on its answers in send order; `exhausted`: no item is left to
    send it, so the final look applies after the last answer (if nothing decided before).

    `ev`: `evidence(x, design)` if already computed (the bench computes it once for all
    items and reads prefixes)."""
    x = np.asarray(x, dtype="float64")
    if len(x) == 0:
        return ModelState.empty(model, price)
    ev = evidence(x, design, final_n) if ev is None else ev
    n = len(x)
    events: list[tuple[int, Decision]] = []
    for path, bar, decision in ((ev.log_w_plus[:n], design.log_accept_bar, "accepted"),
                                (ev.log_w_minus[:n], design.log_reject_bar, "rejected")):  # fmt: skip
        if t := int(_first(path >= bar)):
            events.append((t, decision))  # type: ignore[arg-type]
    if t := int(_first(ev.pass_chance[:n] < design.futility)):
        events.append((t, "futile"))
    final = False
    if not events and exhausted and int(x.sum()) >= design.final_needed(n):
        events, final = [(n, "accepted")], True
    # W+ and W- cannot both be large on one answer; the earliest event decides (sticky)
    t, decision = min(events) if events else (0, "undecided")
    at = (t or n) - 1
    return ModelState(
        model, price, n, int(x.sum()), decision, t or None,
        float(ev.log_w_plus[at]), float(ev.log_w_minus[at]),
        _last_look(ev, at + 1), final,
    )  # fmt: skip


def _last_look(ev: Evidence, n: int) -> float:
    """The chance to pass at the last futility look within the first n answers (NaN: none)."""
    looks = ev.pass_chance[:n]
    seen = looks[~np.isnan(looks)]
    return float(seen[-1]) if len(seen) else math.nan


def states_from_answers(
    answers: dict[str, np.ndarray],
    prices: dict[str, float],
    design: Design,
    exhausted: frozenset[str] | set[str] = frozenset(),
    final_n: dict[str, int] | None = None,
) -> list[ModelState]:
    """Every candidate's state, cheapest first (unknown price last, then by name).

    `design.k` must be the number of candidates; `exhausted`: models with no item left;
    `final_n`: answers a model's final look will be over, when fewer than every item."""
    if design.k != max(1, len(answers)):
        raise ValueError(f"design.k is {design.k} but there are {len(answers)} candidates")
    final_n = final_n or {}
    order = price_order(answers, prices)
    return [
        model_state(m, prices.get(m, math.nan), answers[m], design,
                    exhausted=m in exhausted, final_n=final_n.get(m))
        for m in order
    ]  # fmt: skip


def price_order(models: object, prices: dict[str, float]) -> list[str]:
    """Cheapest first; unknown price last, then by name."""
    return sorted(models, key=lambda m: (_price_key(prices.get(m, math.nan)), m))  # type: ignore[call-overload]


def _price_key(price: float) -> float:
    return math.inf if price is None or math.isnan(price) else price


def prefix_state(full: ModelState, x: np.ndarray, ev: Evidence, n: int) -> ModelState:
    """`model_state` on the first n answers (exhausted only at every item), from the state and
    evidence on all of them.

    Every event is a function of the prefix it happens on, so the first event within n answers
    is the overall first event if that is <= n: this equals recomputing on `x[:n]` (a test
    checks) at O(1), and the bench calls it every round."""
    if n == 0:
        return ModelState.empty(full.model, full.price)
    correct = int(np.sum(x[:n]))
    if full.decided_at is not None and full.decided_at <= n:
        return ModelState(**{**full.__dict__, "items": n, "correct": correct})
    return ModelState(
        full.model, full.price, n, correct, "undecided", None,
        float(ev.log_w_plus[n - 1]), float(ev.log_w_minus[n - 1]),
        _last_look(ev, n),
    )  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """What the states say: the pick (if any), who needs more items, whether we stop."""

    pick: str | None  # accepted, every cheaper model rejected or not certified
    not_certified: list[str]  # cheaper than the pick (or all): futile, or items ran out
    need_items: list[str]  # undecided models cheaper than the cheapest accepted (by price)
    done: bool


def plan(
    states: list[ModelState],
    items_total: int,
    window: int | None = None,
    sent: dict[str, int] | None = None,
) -> Plan:
    """The decision rule over models in price order, and the next round's models.

    The pick is the cheapest accepted model once every cheaper model is rejected, futile, or
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
    exhausted = {s.model for s in undecided if sent.get(s.model, s.items) >= items_total}
    not_certified = [s.model for s in cheaper if s.decision == "futile" or s.model in exhausted]
    need = [s.model for s in undecided if s.model not in exhausted]
    pick = accepted.model if accepted and not need else None
    return Plan(pick, not_certified, need[:window] if window else need, not need)


@dataclass(frozen=True)
class Rounds:
    """Rounds of `batch` items sent as `plan` asks, on answers known in advance."""

    states: list[ModelState]  # price order, at the end
    plan: Plan
    rounds: int
    design: Design  # what decided them (printed with them)


def run_rounds(
    answers: dict[str, np.ndarray],
    prices: dict[str, float],
    theta: float,
    *,
    alpha: float = ALPHA,
    batch: int = 25,
    window: int | None = 1,
    seq_share: float = SEQ_SHARE,
    futility: float = FUTILITY,
) -> Rounds:
    """The adaptive schedule replayed on answers in send order (the bench's simulations, and
    `pick --replay-adaptive` on a full run): each round gives the next `batch` items to every
    model `plan` names, until it says done. Items per model = min over the answers given."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    order = price_order(answers, prices)
    total = min((len(a) for a in answers.values()), default=0)
    design = Design(theta, total, max(1, len(order)), alpha, seq_share, futility)
    xs = {m: np.asarray(answers[m][:total], dtype="float64") for m in order}
    full: dict[str, tuple[ModelState, Evidence]] = {}  # computed once a model gets items
    used = dict.fromkeys(order, 0)
    rounds = 0
    while True:
        states = []
        for m in order:
            if used[m] and m not in full:
                ev = evidence(xs[m], design)
                full[m] = (model_state(m, prices.get(m, math.nan), xs[m], design,
                                       exhausted=True, ev=ev), ev)  # fmt: skip
            states.append(prefix_state(full[m][0], xs[m], full[m][1], used[m]) if used[m]
                          else ModelState.empty(m, prices.get(m, math.nan)))  # fmt: skip
        p = plan(states, total, window)
        if p.done:
            return Rounds(states, p, rounds, design)
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
    """Every model's decision with items used, wealths, chance to pass and spend; the pick;
    totals vs all."""
    lines = [f"adaptive pick (theta {theta}, {r.rounds} rounds; {describe(r.design)}):"]
    spent = full = 0.0
    for s in r.states:
        c = costs.get(s.model, np.array([]))
        used_cost, all_cost = float(np.sum(c[: s.items])), float(np.sum(c[:items]))
        spent, full = spent + used_cost, full + all_cost
        lines.append(f"  {state_line(s)}, ${_usd(used_cost)}")
    p = r.plan
    lines.append(f"  pick: {p.pick or 'none certified'}")
    if p.not_certified:
        lines.append(f"  not certified (futile or items ran out): {', '.join(p.not_certified)}")
    used = sum(s.items for s in r.states)
    total = items * len(r.states)
    lines.append(
        f"  requests {used:,} of {total:,} ({used / total:.1%}); spend ${_usd(spent)} of "
        f"${_usd(full)}" + (f" ({spent / full:.1%})" if full > 0 else "")
    )
    return "\n".join(lines)


def describe(d: Design) -> str:
    """The design's bars in one line (printed with every adaptive decision)."""
    return (
        f"early accept at log W+ >= {d.log_accept_bar:.2f}, reject at log W- >= "
        f"{d.log_reject_bar:.2f}, final look Wilson at {1 - d.final_confidence:.5f}, "
        f"futile below {d.futility * 100:g}% chance to pass"
    )


def state_line(s: ModelState) -> str:
    """One model's decision: how, where, on what, with its evidence."""
    if s.items == 0:
        return f"{s.model}: not sent (not needed for the pick)"
    verdict = s.how if s.decision != "undecided" else "undecided (not certified if items ran out)"
    at = f" at item {s.decided_at}" if s.decided_at else ""
    chance = "" if math.isnan(s.pass_chance) else f", chance to pass {s.pass_chance:.1%}"
    return (
        f"{s.model}: {verdict}{at}; {s.items} items, accuracy {s.accuracy:.3f}, "
        f"log W+ {s.log_w_plus:.2f}, log W- {s.log_w_minus:.2f}{chance}"
    )


def format_decisions(info: dict[str, Any]) -> str:
    """run.json's `adaptive` (written every round) as printed: the round, the pick or
    "undecided so far", the design, and each model that was sent items."""
    head = f"adaptive round {info['rounds']}: "
    head += f"done, pick {info['pick'] or 'none certified'}" if info["done"] else "undecided so far"
    lines = [head + (f" ({info['design']})" if info.get("design") else "")]
    fields = ModelState.__dataclass_fields__
    for m in info["models"]:
        if m["decision"] == "undecided" and not m["items_sent"]:
            continue
        state = ModelState(**{k: m[k] for k in fields if k in m})
        unknown = m.get("spend_unknown_requests", 0)
        spend = f"${m['spend_usd']:.4f}" + (f" + {unknown} of unknown cost" if unknown else "")
        lines.append(f"  {state_line(state)}; {m['items_sent']} sent, {spend}")
    return "\n".join(lines)


def _usd(pico: float) -> str:
    return "unknown" if math.isnan(pico) else f"{pico / 1e12:.4f}"
