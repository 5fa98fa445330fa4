"""`runner.adaptive.enabled=true`: an ordinary run that sends only what the adaptive pick needs.

Items are shuffled once with `runner.adaptive.seed` (one order for every model, so answers
stay paired); each round sends the next `batch` items to the models `analysis.adaptive.plan`
names, until a model is certified or the items run out. Before every round the decision state
is rebuilt from the rows on disk (the writer is flushed and waited for), never kept in memory
only, so a run stopped mid-way (crash, Ctrl-C, budget, `max_rounds`) and continued with
`resume=` reaches the same decisions as one that ran through. Failed requests are answers
(wrong, as in every accuracy) and are not resent in adaptive mode: resending them would make
the sequence depend on where the run stopped. Ungraded answers are neither right nor wrong:
they are left out of a model's sequence (but count as items sent).

Order: list price blended 3:1 (the report's price axis), known before anything is sent.
Every round's decisions go to run.json (`adaptive`) and are printed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from lavabench.analysis.adaptive import (
    Design,
    ModelState,
    Plan,
    describe,
    format_decisions,
    plan,
    states_from_answers,
)
from lavabench.analysis.tables import blended_usd_per_mtok, prepare
from lavabench.commands.run.prepared import Prepared
from lavabench.errors import ConfigError, StoreError
from lavabench.records.reader import read_records
from lavabench.records.store import RecordWriter, write_run_json
from lavabench.runner.loop import RunOutcome
from lavabench.runner.plan import Job

Send = Callable[[list[Job]], RunOutcome]


def item_positions(p: Prepared, seed: int) -> dict[tuple[str, str], int]:
    """(dataset, item_id) -> its place in the one shuffled order shared by every model."""
    keys = sorted({(q.dataset, q.item_id) for q in p.prompts})
    perm = np.random.default_rng(seed).permutation(len(keys))
    return {keys[int(i)]: pos for pos, i in enumerate(perm)}


def state_from_rows(
    run_dir: Path, p: Prepared, positions: dict[tuple[str, str], int]
) -> tuple[list[ModelState], dict[str, int], tuple[dict[str, float], dict[str, int]], set[str]]:
    """States (price order), items sent per model (the unbroken prefix of the order), spend
    per model (the known part in USD, and the requests whose cost is unknown), and the job
    ids that already have a row."""
    models = sorted(_models_of(p))
    prices = {m.name: float(blended_usd_per_mtok(m.price.input, m.price.output))
              for m in p.catalog.select(p.conf.model)}  # fmt: skip
    answers = {m: np.array([], dtype="float64") for m in models}
    sent = dict.fromkeys(models, 0)
    spend = dict.fromkeys(models, 0.0)
    unknown = dict.fromkeys(models, 0)
    done: set[str] = set()
    try:
        rows = read_records(run_dir).to_pandas()
    except StoreError:
        rows = None  # nothing written yet
    if rows is not None and len(rows):
        done = set(rows["job_id"].astype(str))
        df = prepare(rows)
        keys = zip(df["dataset"], df["item_id"], strict=True)
        df = df.assign(_pos=[positions.get(key, -1) for key in keys])
        for model, g in df.groupby("model", observed=True):
            g = g.sort_values("_pos")
            run = int(np.sum(g["_pos"].to_numpy() == np.arange(len(g))))  # unbroken prefix
            prefix = g.iloc[:run]
            sent[str(model)] = run
            graded = prefix[prefix["_in_accuracy"]]
            answers[str(model)] = graded["_correct"].to_numpy(dtype="float64")
            spend[str(model)] = float(prefix["_spent"].sum()) / 1e12  # the known part
            unknown[str(model)] = int((prefix["_cost_source"] == "unknown").sum())
    total = len(positions)
    exhausted = {m for m in models if sent[m] >= total}
    # the final look is over the answers a model can still have graded: every item minus
    # those already answered ungraded
    final_n = {m: total - (sent[m] - len(answers[m])) for m in models}
    states = states_from_answers(answers, prices, design_of(p, total), exhausted, final_n)
    return states, sent, (spend, unknown), done


def design_of(p: Prepared, items_total: int) -> Design:
    """The test's settings from `runner.adaptive` (K = every selected model)."""
    a = p.conf.runner.adaptive
    k = max(1, len(_models_of(p)))
    return Design(a.min_quality, items_total, k, a.alpha, a.seq_share, a.futility, a.min_items)


def _models_of(p: Prepared) -> set[str]:
    return {m.name for m in p.catalog.select(p.conf.model)}


def run_adaptive(p: Prepared, run_dir: Path, writer: RecordWriter, send: Send,
                 metadata: dict[str, Any]) -> RunOutcome:  # fmt: skip
    """Rounds until `plan` says done (or the run stops); returns the summed outcome."""
    a = p.conf.runner.adaptive
    if p.workload is not None or p.conf.runner.load_sweep is not None or p.conf.runner.workers > 1:
        raise ConfigError(
            "runner.adaptive sends graded dataset items in rounds from one process: drop "
            "workload=, load=sweep and runner.workers"
        )
    positions = item_positions(p, a.seed)
    total = len(positions)
    planned = [j for j in p.jobs if not j.is_warmup]
    by_place = {
        (j.model.name, positions[(j.prompt.dataset, j.prompt.item_id)]): j
        for j in planned
        if j.repeat == 0  # repeats are later answers to an item, not new items
    }
    outcome, rounds, stopped = RunOutcome(), 0, False
    while True:
        writer.flush()
        writer.wait()
        states, sent, spend, done = state_from_rows(run_dir, p, positions)
        decision = plan(states, total, a.window, sent)
        info = decisions_info(states, decision, sent, spend[0], total, rounds, spend[1])
        info["design"] = describe(design_of(p, total))
        metadata["adaptive"] = info
        write_run_json(run_dir, {**metadata, "status": "running"})
        print(format_decisions(info), flush=True)
        if stopped or decision.done or (a.max_rounds is not None and rounds >= a.max_rounds):
            return outcome
        jobs = [
            job
            for m in decision.need_items
            # up to the next multiple of the batch: a round cut short (budget, crash) is
            # completed, not shifted, so a resumed run sends what an uninterrupted one does
            for pos in range(sent[m], min(total, (sent[m] // a.batch + 1) * a.batch))
            if (job := by_place.get((m, pos))) is not None and job.job_id not in done
        ]
        if not jobs:  # every needed item already has a row but the prefix is broken
            return outcome
        step = send(jobs)
        outcome = _merge(outcome, step)
        rounds += 1
        # stopped (budget, 401/402, Ctrl-C): record the decisions on what was sent, then end
        stopped = step.stop_reason is not None


def _merge(total: RunOutcome, step: RunOutcome) -> RunOutcome:
    return replace(
        step,
        written=total.written + step.written,
        errors=total.errors + step.errors,
        cached=total.cached + step.cached,
        not_started=total.not_started + step.not_started,
        elapsed_s=total.elapsed_s + step.elapsed_s,
        clock_origin_ns=total.clock_origin_ns or step.clock_origin_ns,
    )


def decisions_info(states: list[ModelState], decision: Plan, sent: dict[str, int],
                   spend: dict[str, float], total: int, rounds: int,
                   unknown_cost: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
    """run.json `adaptive`: every model's decision with items, wealths and spend (the known
    part, and how many requests have an unknown cost: those are not in it, not zero)."""
    return {
        "rounds": rounds,
        "items_total": total,
        "pick": decision.pick,
        "not_certified": decision.not_certified,
        "done": decision.done,
        "models": [
            {
                **asdict(s),
                "items_sent": sent.get(s.model, 0),
                "spend_usd": spend.get(s.model, math.nan),
                "spend_unknown_requests": (unknown_cost or {}).get(s.model, 0),
            }
            for s in states
        ],
    }
