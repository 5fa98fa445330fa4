"""Pure, stdlib only: is this run's measurement trustworthy? The verdict from the health summary.

The samplers that produce the summary run inside the request loop (runner/health.py); the
verdict is read by everyone after (run.json, pick, compare, workers), so it lives with the
records both paths share. Thresholds come from `health.*` in config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEVERITY = {"valid": 0, "suspect": 1, "invalid": 2}


def severity(status: str | None) -> int:
    """A verdict's rank for "the worst of several" (a missing verdict ranks lowest)."""
    return SEVERITY.get(status, -1) if status is not None else -1


@dataclass
class HealthThresholds:
    """`health.*` in config: when a run's numbers stop being trustworthy (defaults: README)."""

    lag_p99_suspect_ms: float = 10.0
    lag_p99_invalid_ms: float = 50.0
    late_mean_suspect_ms: float = 10.0
    late_mean_invalid_ms: float = 100.0
    cpu_suspect: float = 0.90
    cpu_invalid: float = 0.98
    in_flight_ratio_suspect: float = 0.5
    sample_interval_ms: float = 5.0
    series_points: int = 600

    def __post_init__(self) -> None:
        pairs = [
            (self.lag_p99_suspect_ms, self.lag_p99_invalid_ms),
            (self.late_mean_suspect_ms, self.late_mean_invalid_ms),
            (self.cpu_suspect, self.cpu_invalid),
        ]
        if any(not 0 < lo <= hi for lo, hi in pairs):
            raise ValueError("health: each *_suspect threshold must be > 0 and <= its *_invalid")
        if self.sample_interval_ms <= 0 or self.series_points < 2:
            raise ValueError("health.sample_interval_ms must be > 0 and series_points >= 2")


def verdict(
    summary: dict[str, Any],
    t: HealthThresholds,
    *,
    open_loop: bool = False,
    saturating_jobs: bool = False,
) -> dict[str, Any]:
    """`valid` / `suspect` / `invalid` with every cause named, its numbers and a remedy.

    `summary` is `HealthMonitor.summary()` plus an optional `dispatch` from
    `dispatch_summary`. `saturating_jobs`: enough jobs to keep every slot busy (closed loop,
    no rate cap), so a low in-flight mean is the client's fault.
    """
    causes: list[dict[str, Any]] = []

    def cause(level: str, metric: str, value: float, limit: float, msg: str, fix: str) -> None:
        causes.append(
            {"severity": level, "metric": metric, "value": value, "threshold": limit,
             "message": msg, "remedy": fix}
        )  # fmt: skip

    lag = summary["lag_ms"]["p99"]
    if lag >= t.lag_p99_suspect_ms:
        level = "invalid" if lag >= t.lag_p99_invalid_ms else "suspect"
        limit = t.lag_p99_invalid_ms if level == "invalid" else t.lag_p99_suspect_ms
        cause(level, "event_loop_lag_p99_ms", lag, limit,
              f"event-loop lag p99 {lag:.1f} ms (max {summary['lag_ms']['max']:.1f} ms): "
              f"TTFT/ITL differences below ~{lag:.0f} ms are not resolvable",
              "lower runner.concurrency, or split the run over several processes")  # fmt: skip
    cpu = summary["cpu"]["mean"]
    if cpu >= t.cpu_suspect:
        level = "invalid" if cpu >= t.cpu_invalid else "suspect"
        limit = t.cpu_invalid if level == "invalid" else t.cpu_suspect
        cause(level, "client_cpu", cpu, limit,
              f"client CPU {cpu:.0%} of a core: the client is the bottleneck",
              "lower runner.concurrency, or run on a less busy machine")  # fmt: skip
    dispatch = summary.get("dispatch") or {}
    late = float(dispatch.get("late_mean_ms", 0.0))
    if dispatch.get("requests") and late >= t.late_mean_suspect_ms:
        level = "invalid" if late >= t.late_mean_invalid_ms else "suspect"
        limit = t.late_mean_invalid_ms if level == "invalid" else t.late_mean_suspect_ms
        what = "the requested rate was not met" if open_loop else "the dispatcher fell behind"
        cause(level, "dispatch_late_mean_ms", late, limit,
              f"requests went out {late:.1f} ms late on average: {what}",
              "raise runner.concurrency or lower runner.rate" if open_loop
              else "lower runner.concurrency")  # fmt: skip
    flight = summary["in_flight"]
    ratio = flight["mean"] / flight["concurrency"] if flight["concurrency"] else 1.0
    if saturating_jobs and ratio < t.in_flight_ratio_suspect:
        cause("suspect", "in_flight_ratio", round(ratio, 3), t.in_flight_ratio_suspect,
              f"only {flight['mean']:.1f} of {flight['concurrency']} requests in flight on "
              "average: the client could not keep its slots busy",
              "lower runner.concurrency")  # fmt: skip
    status = max((c["severity"] for c in causes), key=SEVERITY.__getitem__, default="valid")
    return {"status": status, "causes": causes}


def verdict_lines(health: dict[str, Any] | None) -> list[str]:
    """Human lines for the end of a run, `pick` and the report header."""
    if not health or "verdict" not in health:
        return ["measurement: not checked (run predates health checks)"]
    v = health["verdict"]
    lag, cpu = health.get("lag_ms", {}), health.get("cpu", {})
    flight = health.get("in_flight", {})
    lines = [
        f"measurement: {v['status']} (event-loop lag p99 {lag.get('p99', 0):.1f} ms, "
        f"client CPU {cpu.get('mean', 0):.0%}, in flight {flight.get('mean', 0):.1f} mean / "
        f"{flight.get('max', 0)} max of {flight.get('concurrency', 0)})"
    ]
    for c in v["causes"]:
        lines.append(f"  {c['severity']}: {c['message']}; {c['remedy']}")
    return lines
