"""Spending: cost bounds of a plan before it runs, and a guard that keeps a run in budget.

Prompt tokens are estimated with the heuristic the simulator also uses
(`datasets.prompt.estimate_prompt_tokens`: 4 per message plus one per 4 UTF-8 bytes).
Bounds per request:
    lower = prompt tokens x the cheapest prompt price (cached-input if set), no output
    upper = prompt tokens x input price + max_tokens x output price
The guard reserves each request's upper bound before it is sent and settles it with the
real cost when it ends, so actual spend never passes the budget while the estimates hold.
A retry is a new request for the budget: the failed attempt is settled with what it may
have cost (a cut 200 stream) and the retry reserves again, or is not sent.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lavabench.catalog import Model, cost_pico_usd
from lavabench.datasets.prompt import estimate_prompt_tokens  # noqa: F401  (re-exported)
from lavabench.records.schema import Record
from lavabench.runner.plan import Job


def job_prompt_tokens(job: Job) -> int:
    """A workload's target when the prompt is built at send time, else the job's messages
    plus its tools (Prompt.estimated_tokens)."""
    if job.prompt.target_prompt_tokens is not None:
        return job.prompt.target_prompt_tokens
    return job.prompt.estimated_tokens()


def cost_bounds_pico(model: Model, prompt_tokens: int, max_tokens: int) -> tuple[int, int]:
    """(lower, upper) cost of one request in pico-USD."""
    cheapest = cost_pico_usd(model.price, prompt_tokens=prompt_tokens, completion_tokens=0,
                             cached_tokens=prompt_tokens)  # fmt: skip
    upper = cost_pico_usd(model.price, prompt_tokens=prompt_tokens, completion_tokens=max_tokens)
    return cheapest, upper


@dataclass
class ModelPlan:
    requests: int = 0
    prompt_tokens: int = 0
    lower_pico: int = 0
    upper_pico: int = 0


def plan_costs(jobs: Iterable[Job], max_tokens: int) -> dict[str, ModelPlan]:
    """Per model: requests, estimated prompt tokens, cost bounds (dry run and budget check)."""
    plans: dict[str, ModelPlan] = {}
    for job in jobs:
        plan = plans.setdefault(job.model.name, ModelPlan())
        tokens = job_prompt_tokens(job)
        lower, upper = cost_bounds_pico(job.model, tokens, max_tokens)
        plan.requests += 1
        plan.prompt_tokens += tokens
        plan.lower_pico += lower
        plan.upper_pico += upper
    return plans


@dataclass
class SpendGuard:
    """Reserve a request's worst case before sending; settle with its real cost after."""

    budget_pico: int
    max_tokens: int
    spent_pico: int = 0
    reserved_pico: int = 0
    _held: dict[str, int] = field(default_factory=dict)

    def reserve(self, job: Job) -> bool:
        upper = request_upper_pico(job, self.max_tokens)
        if self.spent_pico + self.reserved_pico + upper > self.budget_pico:
            return False
        self._held[job.job_id] = upper
        self.reserved_pico += upper
        return True

    def settle(self, job: Job, record: Record) -> None:
        held = self._held.pop(job.job_id, 0)
        self.reserved_pico -= held
        self.spent_pico += settled_cost_pico(record, held)

    def settle_attempt(self, job: Job, spent_pico: int) -> None:
        """A failed attempt that may have been billed, before a retry: count what it may have
        cost and free its hold; the retry reserves again (and may be refused)."""
        self.reserved_pico -= self._held.pop(job.job_id, 0)
        self.spent_pico += spent_pico

    def release(self, job: Job) -> None:
        """Give back a reservation for a job that will not be sent after all."""
        self.reserved_pico -= self._held.pop(job.job_id, 0)


def request_upper_pico(job: Job, max_tokens: int) -> int:
    """The most one request of `job` can cost: what a budget reserves before sending it."""
    return cost_bounds_pico(job.model, job_prompt_tokens(job), max_tokens)[1]


def settled_cost_pico(record: Record, held_pico: int) -> int:
    """What a finished request counts against a budget: its cost (exact, or the labelled
    estimate of a response without usage); for a stream cut after a 200 (which may still be
    billed for more than we saw) the worst case held for it; plus the judge's. Billed failed
    attempts (`retry_cost_pico_usd`) were settled one by one as they failed."""
    if record.status != "ok" and record.http_status == 200:
        cost = max(held_pico, record.cost_pico_usd or 0)
    elif record.cost_pico_usd is not None:
        cost = record.cost_pico_usd
    else:
        cost = 0  # an HTTP error: nothing was generated
    return cost + (record.judge_cost_pico_usd or 0)  # retries: settle_attempt, when they fail


class AllBudgets:
    """Every budget must have room: the run's own (`runner.budget_usd`) and the sweep's
    shared one (`limits.budget_usd`). A reservation refused by one is given back to the
    others, so nothing stays held for a request that is not sent."""

    def __init__(self, *budgets: Any) -> None:
        self._budgets = budgets

    async def reserve(self, job: Job) -> bool:
        held: list[Any] = []
        for budget in self._budgets:
            ok = budget.reserve(job)
            if inspect.isawaitable(ok):
                ok = await ok
            if not ok:
                for taken in held:
                    taken.release(job)
                return False
            held.append(budget)
        return True

    def settle(self, job: Job, record: Record) -> None:
        for budget in self._budgets:
            budget.settle(job, record)

    def settle_attempt(self, job: Job, spent_pico: int) -> None:
        for budget in self._budgets:
            budget.settle_attempt(job, spent_pico)
