"""Pure planning: models x prompts x repeats -> Jobs with stable ids, in a fair order.

Models are interleaved (item 1 on every model, then item 2, ...) so that every model sees the
same moments of the run: a slow minute at the gateway hits all of them alike instead of
whichever model happened to be scheduled then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def plan_jobs(
    models: Sequence[Model],
    prompts: Sequence[Prompt],
    *,
    repeats: int = 1,
    warmup_per_model: int = 0,
) -> list[Job]:
    """Warm-up jobs first (flagged, excluded from statistics), then the measured jobs."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    jobs: list[Job] = []
    for prompt in prompts[:warmup_per_model]:
        for model in models:
            jobs.append(
                Job(
                    job_id(model.name, prompt.dataset, prompt.item_id, 0, warmup=True),
                    model,
                    prompt,
                    0,
                    is_warmup=True,
                )
            )
    for repeat in range(repeats):
        for prompt in prompts:
            for model in models:
                jobs.append(
                    Job(
                        job_id(model.name, prompt.dataset, prompt.item_id, repeat),
                        model,
                        prompt,
                        repeat,
                    )
                )
    return jobs
