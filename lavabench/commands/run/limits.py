"""A run's wiring of the account-wide limits: which limiter to consult, and the gate and budget
the runner gets from it, combined with the run's own `runner.rate` / `runner.budget_usd`.

Config-aware, so it lives with the command that reads the config; the limiter's client
side (`SharedLimits`, its gate and budget) is load/limits.py."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lavabench.config import LavabenchConf
from lavabench.load.budget import AllBudgets, SpendGuard
from lavabench.load.limiter import LIMITER_FILE, serve_limits
from lavabench.load.limits import SharedBudget, SharedLimits, SharedRateGate
from lavabench.load.pacing import AllGates, rate_cap
from lavabench.runner.gate import Gate, NoCap
from lavabench.runner.judge import Judge


@contextlib.contextmanager
def limiter_for_run(
    conf: LavabenchConf, cfg: DictConfig, sweep_dir: Path | None
) -> Iterator[str | None]:
    """The shared limiter this run consults: the sweep's (limiter.json), `limits.address`,
    or, for a single run with `limits.rate`/`limits.budget_usd`, one it serves itself."""
    address = limiter_address(cfg, sweep_dir)
    if address is not None or not conf.limits.any:
        yield address
        return
    with serve_limits(conf.limits.rate, conf.limits.budget_usd, host=conf.limits.host) as server:
        yield server.address


async def run_limits(
    conf: LavabenchConf,
    address: str | None,
    guard: SpendGuard | None,
    judge: Judge | None,
    *,
    uses_rate_cap: bool,
) -> tuple[Gate, Any, SharedLimits | None, dict[str, float | int | None]]:
    """The rate gate and budget the runner consults, and what each row records of them.

    A sweep's shared rate also paces the judge's requests: the account counts them too."""
    r = conf.runner
    gate: Gate = rate_cap(r.rate) if uses_rate_cap else NoCap()
    budget: Any = guard
    stamp: dict[str, float | int | None] = {
        "limit_run_rate_rps": r.rate if uses_rate_cap else None,
        "limit_run_budget_usd": r.budget_usd,
        "limit_shared_rate_rps": None,
        "limit_shared_budget_usd": None,
    }
    if address is None:
        return gate, budget, None, stamp
    shared = await SharedLimits.connect(address)
    if shared.rate_per_s is not None:
        gate = AllGates(gate, SharedRateGate(shared))
        stamp["limit_shared_rate_rps"] = shared.rate_per_s
        if judge is not None:
            judge.pace_with(SharedRateGate(shared))
    if shared.budget_usd is not None:
        shared_budget = SharedBudget(shared, r.max_tokens)
        budget = shared_budget if guard is None else AllBudgets(guard, shared_budget)
        stamp["limit_shared_budget_usd"] = shared.budget_usd
    return gate, budget, shared, stamp


def limiter_address(cfg: DictConfig, sweep_dir: Path | None) -> str | None:
    """The limiter a job must consult: `limits.address`, else its sweep's (limiter.json)."""
    if cfg.limits.address is not None:
        return str(cfg.limits.address)
    if sweep_dir is not None and (sweep_dir / LIMITER_FILE).is_file():
        return str(json.loads((sweep_dir / LIMITER_FILE).read_text())["address"])
    return None
