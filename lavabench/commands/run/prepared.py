"""`Prepared`: a run checked and planned, nothing sent yet (made by setup.py, read by every phase).

Its own module so the phases and the resume fingerprint can name it without importing setup
(which imports them: no cycle)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from lavabench.catalog import Catalog
from lavabench.commands.run.workload import WorkloadPlan
from lavabench.config import LavabenchConf
from lavabench.datasets.prompt import Prompt
from lavabench.datasets.spec import DatasetSpec
from lavabench.records.schema import Record
from lavabench.runner.judge import Judge
from lavabench.runner.plan import Job


@dataclass
class Prepared:
    """Everything checked and planned before any request."""

    conf: LavabenchConf
    catalog: Catalog
    spec: DatasetSpec | None  # None: a workload run (`workload=`)
    prompts: Sequence[Prompt]  # a dataset's: a PromptTable (datasets/compact.py), packed
    jobs: Sequence[Job]  # runner/plan.JobPlan: jobs made when read, or a list (adaptive rounds)
    grade: Callable[[Job, Record, str], Awaitable[None]]
    judge: Judge | None = None  # llm_judge: bound to the endpoint once it is resolved
    workload: WorkloadPlan | None = None
