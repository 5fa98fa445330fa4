"""Pure planning: models x prompts x repeats -> Jobs with stable ids, in a fair order.

Models are interleaved (item 1 on every model, then item 2, ...) so that every model sees the
same moments of the run: a slow minute at the gateway hits all of them alike instead of
whichever model happened to be scheduled then.

The plan is a `JobPlan`: a sequence whose jobs are made when they are read (by position), not
a list built up front. A 100,000-item run held 100,000 Job objects and their ids for its whole
life (bench_memory); now it holds the models, the prompts and one integer range. A job read
twice is two equal objects (Job compares by value), never shared state.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from lavabench.catalog import Model
from lavabench.datasets.prompt import Prompt


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    model: Model
    prompt: Prompt
    repeat: int
    is_warmup: bool = False


def job_id(model: str, dataset: str, item_id: str, repeat: int, *, warmup: bool = False) -> str:
    """`<model>/<dataset>/<item>/r<repeat>`: stable across runs, readable, unique per item."""
    base = f"{model}/{dataset}/{item_id}/r{repeat}"
    return f"warmup/{base}" if warmup else base


class JobPlan(Sequence[Job]):
    """Warm-up jobs first (flagged, excluded from statistics), then the measured jobs:
    `repeats` passes over the prompts, each prompt on every model in turn.

    Position k of the full plan is computed, not stored; `select` and slices keep a subset
    (resume's remaining jobs, a worker's share, a load step) as positions into the same plan.
    """

    __slots__ = ("_models", "_positions", "_prompts", "_warm")

    def __init__(
        self,
        models: Sequence[Model],
        prompts: Sequence[Prompt],
        *,
        repeats: int = 1,
        warmup_per_model: int = 0,
        positions: range | array[int] | None = None,
    ) -> None:
        if repeats < 1:
            raise ValueError("repeats must be >= 1")
        self._models = tuple(models)
        self._prompts = prompts
        self._warm = min(max(warmup_per_model, 0), len(prompts))
        total = (self._warm + repeats * len(prompts)) * len(self._models)
        self._positions: range | array[int] = range(total) if positions is None else positions

    def _job(self, k: int) -> Job:
        m = len(self._models)
        warm = self._warm * m
        if k < warm:
            prompt, model = self._prompts[k // m], self._models[k % m]
            return Job(job_id(model.name, prompt.dataset, prompt.item_id, 0, warmup=True),
                       model, prompt, 0, is_warmup=True)  # fmt: skip
        repeat, rest = divmod(k - warm, len(self._prompts) * m)
        prompt, model = self._prompts[rest // m], self._models[rest % m]
        return Job(job_id(model.name, prompt.dataset, prompt.item_id, repeat), model, prompt,
                   repeat)  # fmt: skip

    def __len__(self) -> int:
        return len(self._positions)

    @overload
    def __getitem__(self, index: int) -> Job: ...

    @overload
    def __getitem__(self, index: slice) -> JobPlan: ...

    def __getitem__(self, index: int | slice) -> Job | JobPlan:
        if isinstance(index, slice):
            return self._with(self._positions[index])
        return self._job(self._positions[index])

    def __iter__(self) -> Iterator[Job]:
        job = self._job
        for k in self._positions:
            yield job(k)

    def select(self, indices: Iterable[int]) -> JobPlan:
        """The jobs at these indices of this plan (in the order given), still lazy."""
        return self._with(array("q", (self._positions[i] for i in indices)))

    def _with(self, positions: range | array[int]) -> JobPlan:
        plan = object.__new__(JobPlan)
        plan._models, plan._prompts, plan._warm = self._models, self._prompts, self._warm
        plan._positions = positions
        return plan

    def __repr__(self) -> str:
        return (
            f"JobPlan({len(self)} jobs, {len(self._models)} models, {len(self._prompts)} prompts)"
        )


def plan_jobs(
    models: Sequence[Model],
    prompts: Sequence[Prompt],
    *,
    repeats: int = 1,
    warmup_per_model: int = 0,
) -> JobPlan:
    """Warm-up jobs first (flagged, excluded from statistics), then the measured jobs."""
    return JobPlan(models, prompts, repeats=repeats, warmup_per_model=warmup_per_model)
