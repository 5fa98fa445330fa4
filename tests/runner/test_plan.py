"""JobPlan (runner/plan.py): jobs made on access, in the order the list used to hold them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lavabench.catalog import Model, Price
from lavabench.datasets.prompt import Message, Prompt
from lavabench.runner.plan import Job, job_id, plan_jobs

MODELS = [Model(name=n, id=f"accounts/fireworks/models/{n}",
                price=Price(Decimal("1"), Decimal("2")), context_length=8)
          for n in ("a", "b", "c")]  # fmt: skip
PROMPTS = [Prompt("ds", f"i{i}", (Message("user", f"q{i}"),), "1", f"h{i}") for i in range(4)]


def _listed(repeats: int, warmup: int) -> list[Job]:
    """The plan as the old eager planner built it."""
    jobs = [Job(job_id(m.name, p.dataset, p.item_id, 0, warmup=True), m, p, 0, is_warmup=True)
            for p in PROMPTS[:warmup] for m in MODELS]  # fmt: skip
    jobs += [Job(job_id(m.name, p.dataset, p.item_id, r), m, p, r)
             for r in range(repeats) for p in PROMPTS for m in MODELS]  # fmt: skip
    return jobs


@pytest.mark.parametrize(("repeats", "warmup"), [(1, 0), (3, 2), (2, 9)])
def test_same_jobs_in_the_same_order(repeats: int, warmup: int) -> None:
    plan = plan_jobs(MODELS, PROMPTS, repeats=repeats, warmup_per_model=warmup)
    expected = _listed(repeats, warmup)
    assert len(plan) == len(expected)
    assert list(plan) == expected
    assert [plan[i] for i in range(len(plan))] == expected
    assert plan[-1] == expected[-1]
    assert list(plan[2:11:3]) == expected[2:11:3]
    picked = [5, 0, len(expected) - 1]
    assert list(plan.select(picked)) == [expected[i] for i in picked]
    assert list(plan[1:].select([0, 2])) == [expected[1], expected[3]]


def test_repeats_must_be_positive() -> None:
    with pytest.raises(ValueError, match="repeats"):
        plan_jobs(MODELS, PROMPTS, repeats=0)
