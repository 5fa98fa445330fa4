"""The shared budget (the sweep's limiter) counts a billed failed attempt when it fails and
makes its retry reserve again, as runner.budget_usd does (load/limits.SharedBudget)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from lavabench.catalog import Model, Price
from lavabench.datasets.prompt import Message, Prompt
from lavabench.load.budget import request_upper_pico
from lavabench.load.limiter import serve_limits
from lavabench.load.limits import SharedBudget, SharedLimits
from lavabench.records.schema import Record
from lavabench.runner.plan import plan_jobs

MODEL = Model(name="m", id="accounts/fireworks/models/m", price=Price(Decimal("1"), Decimal("2")),
              context_length=8)  # fmt: skip
JOB = plan_jobs([MODEL], [Prompt("ds", "i0", (Message("user", "q"),), "1", "h0")])[0]


def test_a_billed_attempt_is_spent_and_the_retry_must_fit_again() -> None:
    upper, billed = request_upper_pico(JOB, 16), 1_000_000
    budget_usd = (upper + billed) / 10**12  # the first attempt, then exactly one retry

    async def go(address: str) -> list[bool]:
        limits = await SharedLimits.connect(address)
        budget = SharedBudget(limits, max_tokens=16)
        try:
            answers = [await budget.reserve(JOB)]
            budget.settle_attempt(JOB, billed)  # the cut first attempt
            answers.append(await budget.reserve(JOB))  # its retry fits
            budget.settle_attempt(JOB, billed)  # cut again
            answers.append(await budget.reserve(JOB))  # no room left for a third
            budget.settle(JOB, Record(status="error", http_status=None))
            return answers
        finally:
            await limits.aclose()

    with serve_limits(None, budget_usd) as server:
        assert asyncio.run(go(server.address)) == [True, True, False]
    assert server.final_stats["spent_usd"] == 2 * billed / 10**12
