"""`lavabench run`, before anything is sent: config, catalog, dataset, grader, plan, resume, budget, dry run.

Order matters and is the contract with the user: every one of these is checked before the
first request, so a mistake costs nothing."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lavabench.catalog import Catalog, Model, catalog_from_mapping, pico_to_usd
from lavabench.commands.run.fingerprint import check_resume
from lavabench.commands.run.prepared import Prepared
from lavabench.commands.run.workload import no_grade, prepare_workload
from lavabench.config import CONF_DIR, LavabenchConf, load_config, plain
from lavabench.datasets.prompt import Prompt
from lavabench.datasets.spec import DatasetSpec, dataset_sha256, load_prompts
from lavabench.errors import ConfigError, StoreError
from lavabench.grading.registry import check_grader
from lavabench.load.budget import SpendGuard, plan_costs
from lavabench.load.steps import step_sizes
from lavabench.records.reader import read_columns
from lavabench.records.store import read_run_json
from lavabench.runner.grade import grade_hook
from lavabench.runner.judge import GRADER_NAME as JUDGE_GRADER
from lavabench.runner.judge import Judge, judge_options
from lavabench.runner.plan import Job, JobPlan, plan_jobs
from lavabench.runner.workers import (
    WorkerShare,
)

PROJECT_DIR = CONF_DIR.parent

log = logging.getLogger("lavabench")


def resolve_data_path(path: str) -> Path:
    """Relative paths resolve against the working directory, then the project directory."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve()
    return (PROJECT_DIR / candidate).resolve()


def catalog_for_sim(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """What the simulator knows of each model: wire id, reasoning, and prices (as strings)
    for its billing read-back."""
    return {
        m.name: {
            "id": m.id,
            "reasoning": m.reasoning,
            "context_length": m.context_length,
            "input_usd_per_mtok": str(m.price.input),
            "output_usd_per_mtok": str(m.price.output),
            "cached_input_usd_per_mtok": (
                None if m.price.cached_input is None else str(m.price.cached_input)
            ),
        }
        for m in catalog.models.values()
    }


def prepare(cfg: DictConfig) -> Prepared:
    """Config, catalog, dataset, grader and every reference: all checked, nothing sent."""
    conf = load_config(cfg)
    catalog = catalog_from_mapping(plain(cfg.catalog))
    models = catalog.select(conf.model)
    if conf.workload is not None:
        workload = prepare_workload(plain(cfg.workload), conf, models, resolve_data_path)
        jobs = plan_run(conf, models, workload.prompts)
        return Prepared(conf, catalog, None, workload.prompts, jobs, no_grade, workload=workload)
    dataset_conf = plain(cfg.dataset)
    if dataset_conf.get("path"):
        dataset_conf["path"] = str(resolve_data_path(dataset_conf["path"]))
    spec = DatasetSpec.from_mapping(dataset_conf, base_dir=PROJECT_DIR)
    prompts = load_prompts(spec)
    jobs = plan_run(conf, models, prompts)
    if spec.grader == JUDGE_GRADER:
        judge = Judge(
            judge_options(spec.grader_options, catalog), catalog, timeouts=conf.runner.timeouts
        )
        return Prepared(conf, catalog, spec, prompts, jobs, judge, judge)
    grader = check_grader(spec.grader, spec.grader_options)
    # a reference the grader cannot read fails now, not after paying; each distinct one once
    # (in dataset order, so the first bad one is named): MMLU's 14k items have 4 references
    for reference in dict.fromkeys(q.reference for q in prompts):
        if reference is not None:
            grader("", reference, spec.grader_options)
    return Prepared(conf, catalog, spec, prompts, jobs, grade_hook(grader, spec))


def plan_run(conf: LavabenchConf, models: list[Model], prompts: Sequence[Prompt]) -> JobPlan:
    """The run's jobs; a load sweep's are sized to its steps (items cycled as repeats)."""
    r = conf.runner
    sweep = r.load_sweep
    if sweep is None:
        return plan_jobs(models, prompts, repeats=r.repeats, warmup_per_model=r.warmup_requests)
    if conf.resume is not None or r.warmup_requests:
        raise ConfigError(
            "load=sweep runs its steps in one go: resume= and runner.warmup_requests do not "
            "apply (start a new run; the first, lowest step warms the connections)"
        )
    total = sum(step_sizes(sweep))
    repeats = max(r.repeats, math.ceil(total / (len(models) * len(prompts))))
    return plan_jobs(models, prompts, repeats=repeats)[:total]


def resume_jobs(
    run_dir: Path, p: Prepared, fingerprint: dict[str, Any] | None = None
) -> tuple[dict[str, Any], Sequence[Job]]:
    """Keep the items that already have an ok row; plan only the rest. A run whose rows
    were asked differently (fingerprint.py) is refused before anything is sent."""

    try:
        previous = read_run_json(run_dir)
    except StoreError:
        previous = {}  # killed before run.json was written: nothing to keep (cli checked the dir)
    if fingerprint is not None:
        check_resume(previous, fingerprint, str(p.conf.resume))
    previous_sha = (previous.get("dataset") or {}).get("sha256")
    if p.spec is not None and previous_sha and previous_sha != dataset_sha256(p.spec.path):
        raise ConfigError(
            f"resume={p.conf.resume}: the dataset changed since that run ({p.spec.path}); "
            "resume with the same dataset, or start a new run"
        )
    try:
        done = read_columns(run_dir, ["job_id", "status"]).to_pandas()
    except StoreError:
        return previous, p.jobs  # killed before its first flush: nothing to keep
    ok = set(done.loc[done["status"] == "ok", "job_id"])
    del done
    remaining = _select(p.jobs, (i for i, job in enumerate(p.jobs) if job.job_id not in ok))
    log.info("resume %s: %d items done, %d to run", p.conf.resume, len(ok), len(remaining))
    return previous, remaining


def print_plan(p: Prepared, run_id: str) -> None:
    plans = plan_costs(p.jobs, p.conf.runner.max_tokens)
    print(f"dry run {run_id}: nothing is sent")
    print(
        f"{'model':28s} {'requests':>8s} {'prompt tok (est.)':>18s} {'cost USD low':>13s} {'high':>11s}"
    )
    for name, plan in plans.items():
        print(
            f"{name:28s} {plan.requests:8d} {plan.prompt_tokens:18,d} "
            f"{pico_to_usd(plan.lower_pico):13.6f} {pico_to_usd(plan.upper_pico):11.6f}"
        )
    low = sum(plan.lower_pico for plan in plans.values())
    high = sum(plan.upper_pico for plan in plans.values())
    print(f"{'total':28s} {sum(x.requests for x in plans.values()):8d} "
          f"{sum(x.prompt_tokens for x in plans.values()):18,d} "
          f"{pico_to_usd(low):13.6f} {pico_to_usd(high):11.6f}")  # fmt: skip
    print(
        "prompt tokens: 4 per message + 1 per 4 UTF-8 bytes (estimate); low = prompt at the "
        f"cheapest prompt price, no output; high = prompt + max_tokens={p.conf.runner.max_tokens}"
    )
    if p.conf.runner.budget_usd is not None:
        print(f"budget: {p.conf.runner.budget_usd} USD")


def budget_guard(p: Prepared) -> SpendGuard | None:
    """Refuse a run that cannot fit even at its lower cost bound; else guard it as it runs.

    Refusing on the upper bound (every answer max_tokens long) would refuse most real runs
    and leave the guard nothing to do; the guard is what keeps spend under the budget.
    """
    budget = p.conf.runner.budget_usd
    if budget is None:
        return None
    budget_pico = round(budget * 10**12)
    plans = plan_costs(p.jobs, p.conf.runner.max_tokens).values()
    low, high = sum(x.lower_pico for x in plans), sum(x.upper_pico for x in plans)
    if low > budget_pico and p.conf.runner.adaptive.enabled:
        # an adaptive run sends a part of its plan that is not known in advance: the guard
        # stops it at the budget, and `resume=` with a larger one goes on
        log.warning(
            "runner.budget_usd=%s is below the lower bound of every planned request (%.6f "
            "USD); the adaptive run sends only what its decisions need and stops at the budget",
            budget,
            pico_to_usd(low),
        )
    elif low > budget_pico:
        raise ConfigError(
            f"runner.budget_usd={budget}: this run costs at least {pico_to_usd(low):.6f} USD "
            f"({len(p.jobs)} requests, prompts alone). Lower dataset.limit or the model list, "
            "or raise the budget; `lavabench run --dry-run` prints the plan. Nothing was sent."
        )
    if high > budget_pico:
        log.warning(
            "runner.budget_usd=%s is below this run's upper bound (%.6f USD): it stops sending "
            "when the next request could pass the budget",
            budget,
            pico_to_usd(high),
        )
    return SpendGuard(budget_pico=budget_pico, max_tokens=p.conf.runner.max_tokens)


def prepare_share(cfg: DictConfig, share: WorkerShare) -> Prepared:
    """In a worker: the run prepared again from the resolved config, cut to its share."""
    p = prepare(cfg)
    at = {job.job_id: i for i, job in enumerate(p.jobs)}
    p.jobs = _select(p.jobs, (at[job_id] for job_id in share.job_ids))
    del at
    r = p.conf.runner
    r.concurrency, r.rate, r.budget_usd, r.workers = (
        share.concurrency, share.rate, share.budget_usd, 1
    )  # fmt: skip
    _warm_before_ready()
    return p


def _warm_before_ready() -> None:
    """What a worker would otherwise do after it said ready, when the run's origin is
    already fixed (0.5 s ahead, runner/workers): pyarrow's first conversion (it imports
    pandas, ~250 ms) and a full collection of the heap the plan left (the runner's own
    `gc.collect()` then traverses only what came after this freeze). On a slow host with
    two workers, the simulator and the parent on 2 cores, those left a worker's first
    sends up to 270 ms behind the schedule (tests/runner/test_workers.py)."""
    import gc

    from lavabench.records.store import warm_up_conversion

    warm_up_conversion()
    gc.collect()
    gc.freeze()


def _select(jobs: Sequence[Job], indices: Iterable[int]) -> Sequence[Job]:
    """These jobs of the plan, still built on access when the plan is a JobPlan."""
    if isinstance(jobs, JobPlan):
        return jobs.select(indices)
    return [jobs[i] for i in indices]
