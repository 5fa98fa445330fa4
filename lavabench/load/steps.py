"""`load=sweep`: step concurrency (or rate) up until throughput stops rising, and say where.

Not Hydra's `-m` sweep (one job per config): this is one run whose load grows in steps, the
usual way to find a deployment's saturation point. Each step sends its own slice of the
planned jobs with one level held fixed: `runner.concurrency` = the level (closed loop), or
open-loop arrivals at the level in requests/s (`over: rate`). After each step the step's
rows decide: stop when the completed-requests rate rose by less than `min_gain` over the
best step so far, when p90 TTFT or p90 E2E crossed its limit, or when the error rate passed
`max_error_rate`. The saturation point is the knee: the lowest step within the limits whose throughput is
within `min_gain` of the best.

Every row carries `load_step` and `load_level`; run.json keeps each step's numbers, the
stop reason and the saturation point. A step during which the client used >= 90% of its
core is marked `client_bound`: its throughput is the client's, not the server's.

Goodput (`goodput_ttft_s` / `goodput_e2e_s`, the SLO's latency targets): requests per second
that completed ok *and* met every target set, beside the raw throughput; a step table gains
a `good/s` column when a target is set. Failures never count as good.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lavabench.errors import ConfigError
from lavabench.load.pacing import arrival_offsets_s
from lavabench.records.schema import Record
from lavabench.runner.plan import Job

OVER = ("concurrency", "rate")
CLIENT_BOUND_CPU_SHARE = 0.9


@dataclass
class LoadSweepConf:
    """`runner.load_sweep` (set by `load=sweep`); null = a run at one fixed load."""

    over: str = "concurrency"  # concurrency (closed loop) | rate (open loop, requests/s)
    levels: list[float] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64, 128, 256])
    arrival: str = "constant"  # over=rate: constant | poisson arrivals at each level
    requests_per_step: int = 200  # at least; closed loop also >= min_rounds x concurrency
    min_rounds: int = 4  # closed loop: every slot turns over at least this often per step
    min_step_s: float = 5.0  # open loop: a step lasts at least this long at its rate
    min_gain: float = 0.05  # stop when throughput rose by less than 5% over the best step
    max_p90_ttft_s: float | None = None  # stop when a step's p90 TTFT passes this
    max_p90_e2e_s: float | None = None
    max_error_rate: float = 0.05
    goodput_ttft_s: float | None = None  # goodput: ok requests with TTFT <= this, per second
    goodput_e2e_s: float | None = None  # ... and E2E <= this (both when both are set)

    @property
    def goodput_targets(self) -> dict[str, float]:
        targets = {"ttft_s": self.goodput_ttft_s, "e2e_s": self.goodput_e2e_s}
        return {k: float(v) for k, v in targets.items() if v is not None}

    def __post_init__(self) -> None:
        if self.over not in OVER:
            raise ConfigError(f"runner.load_sweep.over must be one of {', '.join(OVER)}")
        if not self.levels or any(v <= 0 for v in self.levels):
            raise ConfigError("runner.load_sweep.levels: give one or more levels > 0")
        if list(self.levels) != sorted(self.levels):
            raise ConfigError("runner.load_sweep.levels must rise step by step")
        if self.over == "concurrency" and any(v != int(v) for v in self.levels):
            raise ConfigError("runner.load_sweep.levels: concurrency levels are whole numbers")
        if self.arrival not in ("constant", "poisson"):
            raise ConfigError("runner.load_sweep.arrival must be constant or poisson")
        if self.requests_per_step < 1 or self.min_rounds < 1 or self.min_step_s <= 0:
            raise ConfigError("runner.load_sweep: requests_per_step, min_rounds, min_step_s > 0")
        if self.min_gain < 0 or not 0 <= self.max_error_rate <= 1:
            raise ConfigError("runner.load_sweep: min_gain >= 0 and max_error_rate in [0, 1]")
        if any(not v > 0 for v in self.goodput_targets.values()):
            raise ConfigError("runner.load_sweep.goodput_ttft_s / goodput_e2e_s: seconds > 0")


def max_concurrency(conf: LoadSweepConf | None, run_concurrency: int) -> int:
    """Requests in flight at most over the run: the connection pool is sized to it."""
    if conf is None or conf.over == "rate":
        return run_concurrency
    return max(int(v) for v in conf.levels)


def step_sizes(conf: LoadSweepConf) -> list[int]:
    """Requests each step sends (the plan is sized to their sum; later steps may not run)."""
    if conf.over == "concurrency":
        return [max(conf.requests_per_step, conf.min_rounds * int(v)) for v in conf.levels]
    return [max(conf.requests_per_step, math.ceil(v * conf.min_step_s)) for v in conf.levels]


@dataclass
class StepStats:
    """One step, from its own rows: what the saturation decision and run.json use."""

    step: int
    level: float
    requests: int
    ok: int
    errors: int
    wall_s: float  # first send -> last end
    throughput_rps: float  # completed ok requests / wall_s
    output_tokens_per_s: float
    ttft_p50_s: float  # failures count as +inf (a failed request never got its token)
    ttft_p90_s: float
    e2e_p50_s: float
    e2e_p90_s: float
    dispatch_late_mean_ms: float  # actual send - when the load shape meant it to go
    client_cpu_share: float  # the client's CPU time / wall over the step (1.0 = one core)
    client_bound: bool
    goodput_rps: float | None = None  # ok requests meeting the goodput targets / wall_s


def step_stats(
    step: int,
    level: float,
    rows: Sequence[Record],
    cpu_s: float,
    goodput_targets: dict[str, float] | None = None,
) -> StepStats:
    """A step's numbers; cached answers never reach a load sweep (no timing).

    `goodput_targets` ({"ttft_s": s, "e2e_s": s}): a request is good when it is ok and each
    of those latencies is known and within its target."""
    timed = [r for r in rows if not r.response_cached]
    ok = [r for r in timed if r.status == "ok"]
    wall_s = (
        (max(r.end_ns for r in timed) - min(r.first_send_ns for r in timed)) / 1e9 if timed else 0.0
    )

    def pct(values: list[float | None], q: float) -> float:
        if not timed:
            return math.nan
        arr = np.array([math.inf if v is None else v for v in values], dtype="float64")
        return float(np.quantile(arr, q, method="higher"))

    ttft = [r.ttft_s if r.status == "ok" else None for r in timed]
    e2e = [r.e2e_s if r.status == "ok" else None for r in timed]
    share = cpu_s / wall_s if wall_s > 0 else 0.0
    late = [r.dispatch_late_s for r in timed if r.dispatch_late_s is not None]
    return StepStats(
        step=step,
        level=level,
        requests=len(timed),
        ok=len(ok),
        errors=len(timed) - len(ok),
        wall_s=wall_s,
        throughput_rps=len(ok) / wall_s if wall_s > 0 else 0.0,
        output_tokens_per_s=sum(r.completion_tokens or 0 for r in ok) / wall_s if wall_s else 0.0,
        ttft_p50_s=pct(ttft, 0.5),
        ttft_p90_s=pct(ttft, 0.9),
        e2e_p50_s=pct(e2e, 0.5),
        e2e_p90_s=pct(e2e, 0.9),
        dispatch_late_mean_ms=sum(late) / len(late) * 1e3 if late else 0.0,
        client_cpu_share=share,
        client_bound=share >= CLIENT_BOUND_CPU_SHARE,
        goodput_rps=_goodput(ok, wall_s, goodput_targets) if goodput_targets else None,
    )


def _goodput(ok: list[Record], wall_s: float, targets: dict[str, float]) -> float:
    def good(r: Record) -> bool:
        values = [getattr(r, name) for name in targets]
        return all(v is not None and v <= t for v, t in zip(values, targets.values(), strict=True))

    return sum(good(r) for r in ok) / wall_s if wall_s > 0 else 0.0


def limit_crossed(conf: LoadSweepConf, s: StepStats) -> str | None:
    """Why this step is outside the limits, or None."""
    if s.requests and s.errors / s.requests > conf.max_error_rate:
        return f"error rate {s.errors / s.requests:.1%} > {conf.max_error_rate:.1%}"
    if conf.max_p90_ttft_s is not None and s.ttft_p90_s > conf.max_p90_ttft_s:
        return f"p90 TTFT {s.ttft_p90_s:.3f} s > {conf.max_p90_ttft_s:g} s"
    if conf.max_p90_e2e_s is not None and s.e2e_p90_s > conf.max_p90_e2e_s:
        return f"p90 E2E {s.e2e_p90_s:.3f} s > {conf.max_p90_e2e_s:g} s"
    return None


def stop_reason(conf: LoadSweepConf, steps: Sequence[StepStats]) -> str | None:
    """Why the sweep stops after its last step, or None to go on."""
    last = steps[-1]
    crossed = limit_crossed(conf, last)
    if crossed:
        return f"limit crossed at {_level(conf, last.level)}: {crossed}"
    earlier = [s.throughput_rps for s in steps[:-1] if limit_crossed(conf, s) is None]
    if earlier and last.throughput_rps < (1 + conf.min_gain) * max(earlier):
        gain = last.throughput_rps / max(earlier) - 1
        return (
            f"throughput stopped rising at {_level(conf, last.level)}: {gain:+.1%} over the "
            f"best step (needs >= {conf.min_gain:+.0%})"
        )
    return None


def saturation_point(conf: LoadSweepConf, steps: Sequence[StepStats]) -> StepStats | None:
    """The knee: the lowest step within the limits whose throughput is within `min_gain` of
    the best such step. More load past it only adds queueing (latency), not throughput."""
    within = [s for s in steps if limit_crossed(conf, s) is None]
    if not within:
        return None
    best = max(s.throughput_rps for s in within)
    return next(s for s in within if s.throughput_rps >= (1 - conf.min_gain) * best)


def _level(conf: LoadSweepConf, level: float) -> str:
    return f"concurrency {int(level)}" if conf.over == "concurrency" else f"{level:g} req/s"


class StepSink:
    """Stamps each row with its step and keeps the step's rows for the decision."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self.step: int | None = None
        self.level: float | None = None
        self.rows: list[Record] = []

    def begin(self, step: int, level: float) -> None:
        self.step, self.level, self.rows = step, level, []

    def end(self) -> None:
        """Nothing written after the sweep belongs to a step."""
        self.step, self.level, self.rows = None, None, []

    def write(self, record: Record) -> None:
        record.load_step = self.step
        record.load_level = self.level
        if self.step is not None:
            self.rows.append(record)
        self._sink.write(record)


@dataclass
class SweepResult:
    steps: list[StepStats]
    stop_reason: str
    saturation: StepStats | None

    def as_dict(self, conf: LoadSweepConf) -> dict[str, Any]:
        return {
            "over": conf.over,
            "levels": list(conf.levels),
            "steps": [asdict(s) for s in self.steps],
            "stop_reason": self.stop_reason,
            "saturation": None if self.saturation is None else asdict(self.saturation),
        }


RunStep = Callable[[list[Job], int | None, list[float] | None], Awaitable[Any]]


async def run_steps(
    conf: LoadSweepConf, jobs: Sequence[Job], sink: StepSink, run_step: RunStep, seed: int = 0
) -> SweepResult:
    """Run the steps in order over consecutive slices of `jobs` until one says stop.

    `run_step(jobs, concurrency, arrivals_s)` runs one step (concurrency None: the run's
    own) and returns the runner's outcome (`stop_reason` set: fatal error, interrupt or
    budget, so the sweep stops)."""
    steps: list[StepStats] = []
    reason = "every level ran"
    start = 0
    for i, (level, size) in enumerate(zip(conf.levels, step_sizes(conf), strict=True)):
        chunk = list(jobs[start : start + size])
        start += size
        if not chunk:
            reason = "the plan ran out of jobs"
            break
        sink.begin(i, float(level))
        concurrency: int | None = None
        arrivals: list[float] | None = None
        if conf.over == "concurrency":
            concurrency = int(level)
        else:
            arrivals = arrival_offsets_s(conf.arrival, float(level), len(chunk), seed + i)
        cpu0 = time.process_time()
        outcome = await run_step(chunk, concurrency, arrivals)
        cpu_s = time.process_time() - cpu0
        steps.append(step_stats(i, float(level), sink.rows, cpu_s, conf.goodput_targets))
        if outcome.stop_reason is not None:
            reason = f"run stopped: {outcome.stop_reason}"
            break
        why = stop_reason(conf, steps)
        if why is not None:
            reason = why
            break
    sink.end()
    return SweepResult(steps, reason, saturation_point(conf, steps))


def format_steps(conf: LoadSweepConf, result: SweepResult) -> str:
    """The step table printed at the end of the run."""
    head = "load=sweep over " + conf.over
    targets = conf.goodput_targets
    if targets:
        named = {"ttft_s": "TTFT", "e2e_s": "E2E"}
        head += "; good/s = ok requests with " + " and ".join(
            f"{named[k]} <= {v:g} s" for k, v in targets.items()
        )
    good_head = f" {'good/s':>8}" if targets else ""
    lines = [
        head,
        f"{'step':>4} {'level':>8} {'req':>6} {'ok':>6} {'req/s':>9}{good_head} {'tok/s':>9} "
        f"{'TTFT p50':>9} {'TTFT p90':>9} {'E2E p90':>8} {'late ms':>7} {'client CPU':>10}",
    ]
    for s in result.steps:
        flag = " client-bound" if s.client_bound else ""
        good = f" {s.goodput_rps:>8.1f}" if targets and s.goodput_rps is not None else ""
        lines.append(
            f"{s.step:>4} {s.level:>8g} {s.requests:>6} {s.ok:>6} {s.throughput_rps:>9.1f}{good} "
            f"{s.output_tokens_per_s:>9.0f} {s.ttft_p50_s * 1e3:>7.0f}ms {s.ttft_p90_s * 1e3:>7.0f}ms "
            f"{s.e2e_p90_s:>7.2f}s {s.dispatch_late_mean_ms:>7.1f} {s.client_cpu_share:>9.0%}{flag}"
        )
    sat = result.saturation
    if sat is None:
        lines.append(f"saturation: none within the limits ({result.stop_reason})")
    else:
        bound = " -- the client was the bottleneck there" if sat.client_bound else ""
        lines.append(
            f"saturation: {_level(conf, sat.level)}, {sat.throughput_rps:.1f} req/s "
            f"(stopped: {result.stop_reason}){bound}"
        )
    return "\n".join(lines)
