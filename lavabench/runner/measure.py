"""Pure: a job's final attempt -> the Record's timings, tokens and cost.

Timings are differences of the client's own monotonic stamps; the server's own figures are
stored beside them (never mixed in) so that gateway overhead = ttft_s - server_ttft_s.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from lavabench.catalog import cost_pico_usd
from lavabench.records.schema import Record
from lavabench.runner.plan import Job
from lavabench.wire.client import Attempt
from lavabench.wire.protocol import StreamResult

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class DispatchTimes:
    """How a job was let go: absolute clock ns (the runner's clock), waits in ns."""

    intended_ns: int
    slot_wait_ns: int = 0
    rate_wait_ns: int = 0


def percentile_sorted(values: list[int], q: float) -> int:
    """Linear-interpolated percentile of an already-sorted list (numpy's default method)."""
    if len(values) == 1:
        return values[0]
    pos = (len(values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return round(values[lo] + (values[hi] - values[lo]) * (pos - lo))


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def _identity(
    job: Job, *, run_id: str, endpoint: str, max_tokens: int, stream: bool
) -> dict[str, Any]:
    """The fields that say which work item a row is, for measured and cached rows alike."""
    return {
        "run_id": run_id,
        "job_id": job.job_id,
        "endpoint": endpoint,
        "model": job.model.name,
        "model_id": job.model.id,
        "dataset": job.prompt.dataset,
        "item_id": job.prompt.item_id,
        "repeat": job.repeat,
        "is_warmup": job.is_warmup,
        "prompt_sha256": job.prompt.prompt_sha256,
        "stream": stream,
        "max_tokens": max_tokens,
        # a workload's prompt (lavabench/workloads): its targets and place in a session
        "target_prompt_tokens": job.prompt.target_prompt_tokens,
        "target_output_tokens": job.prompt.target_output_tokens,
        "session_id": job.prompt.session_id,
        "turn_index": job.prompt.turn_index,
    }


def build_record(
    job: Job,
    attempt: Attempt,
    *,
    run_id: str,
    endpoint: str,
    origin_ns: int,
    max_tokens: int,
    stream: bool,
    attempts: int,
    first_send_ns: int,
    retry_reasons: list[str],
    retry_waits_s: list[float],
    failed_attempts_s: list[float],
    keep_text: bool,
    dispatch: DispatchTimes | None = None,
    retry_cost_pico: int = 0,
    retry_lava_ids: list[str] | None = None,
) -> Record:
    """Everything but the grade, which the runner adds once the answer text is known."""
    rec = Record(
        **_identity(job, run_id=run_id, endpoint=endpoint, max_tokens=max_tokens, stream=stream),
        status="ok" if attempt.ok else "error",
        http_status=attempt.http_status,
        attempts=attempts,
        retry_reasons=retry_reasons,
        retry_waits_s=retry_waits_s,
        failed_attempts_s=failed_attempts_s,
        backoff_s=sum(retry_waits_s),
        started_at=attempt.started_at,
        first_send_ns=first_send_ns - origin_ns,
        send_ns=attempt.send_ns - origin_ns,
        end_ns=attempt.end_ns - origin_ns,
        headers_ns=None if attempt.headers_ns is None else attempt.headers_ns - origin_ns,
        lava_request_id=attempt.lava_request_id,
        retry_cost_pico_usd=retry_cost_pico,
        retry_lava_request_ids=list(retry_lava_ids or ()),
    )
    if dispatch is not None:
        rec.intended_send_ns = dispatch.intended_ns - origin_ns
        rec.dispatch_late_s = (first_send_ns - dispatch.intended_ns) / NS_PER_S
        rec.slot_wait_s = dispatch.slot_wait_ns / NS_PER_S
        rec.rate_wait_s = dispatch.rate_wait_ns / NS_PER_S
    if attempt.headers_ns is not None:
        rec.headers_s = (attempt.headers_ns - attempt.send_ns) / NS_PER_S
    if attempt.error is not None:
        rec.error_type = attempt.error.kind
        rec.error_message = attempt.error.message
    result = attempt.result
    if result is None:
        return rec

    send = attempt.send_ns
    rec.response_id = result.response_id
    rec.finish_reason = result.finish_reason
    rec.truncated = _truncated(result.finish_reason)
    rec.content_chunks = result.content_chunks
    rec.reasoning_chunks = result.reasoning_chunks
    rec.tool_calls = result.tool_calls_json()
    if keep_text:
        rec.response_text = result.answer_text
    times = result.token_times_ns
    if times:
        rec.token_offsets_ns = [t - send for t in times]
        rec.first_token_ns = times[0] - origin_ns
        rec.last_token_ns = times[-1] - origin_ns
        rec.ttft_s = (times[0] - send) / NS_PER_S
    if result.first_reasoning_ns is not None:
        rec.first_reasoning_s = (result.first_reasoning_ns - send) / NS_PER_S
    if result.first_answer_ns is not None:
        rec.first_answer_s = (result.first_answer_ns - send) / NS_PER_S
    if len(times) >= 2:
        gaps = sorted(map(operator.sub, times[1:], times))  # b - a for each pair, in C
        rec.itl_mean_s = sum(gaps) / len(gaps) / NS_PER_S
        rec.itl_p50_s = percentile_sorted(gaps, 0.50) / NS_PER_S
        rec.itl_p99_s = percentile_sorted(gaps, 0.99) / NS_PER_S
        rec.itl_max_s = gaps[-1] / NS_PER_S
    if result.done_ns is not None:
        rec.done_ns = result.done_ns - origin_ns
    if attempt.ok:
        # the answer is complete at [DONE]; the close after it is the server's, not the model's
        rec.e2e_s = ((result.done_ns or attempt.end_ns) - send) / NS_PER_S
        rec.e2e_close_s = (attempt.end_ns - send) / NS_PER_S
    _apply_usage(rec, attempt_usage(job, attempt))
    if rec.completion_tokens and len(times) >= 2 and times[-1] > times[0]:
        rec.output_tokens_per_s = (rec.completion_tokens - 1) / ((times[-1] - times[0]) / NS_PER_S)
    chunks = rec.content_chunks + rec.reasoning_chunks
    if rec.usage_source == "server" and rec.completion_tokens and chunks:
        rec.tokens_per_chunk = rec.completion_tokens / chunks
    _apply_server_timings(rec, result.perf_metrics, attempt.server_headers)
    if rec.ttft_s is not None and rec.server_ttft_s is not None:
        rec.overhead_s = rec.ttft_s - rec.server_ttft_s
    return rec


@dataclass(frozen=True, slots=True)
class Usage:
    """One attempt's tokens and cost with their provenance (Record.usage_source)."""

    source: str  # server | estimate | unknown
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reported_reasoning: int | None = None
    cost_pico: int | None = None


def read_usage(job: Job, usage: dict[str, Any] | None, *, chunks: int | None) -> Usage:
    """The server's usage when it has both counts; else, when the response started
    (`chunks` not None), an estimate: the prompt by `Prompt.estimated_tokens`, completion =
    chunks counted, priced at list price; else unknown. Never a silent 0."""
    prompt = completion = cached = reasoning = None
    if usage:
        prompt = _int(usage.get("prompt_tokens"))
        completion = _int(usage.get("completion_tokens"))
        details = usage.get("prompt_tokens_details") or {}
        cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else None
        more = usage.get("completion_tokens_details") or {}
        reasoning = _int(more.get("reasoning_tokens")) if isinstance(more, dict) else None
    if prompt is not None and completion is not None:
        source = "server"
    elif chunks is not None:
        source = "estimate"
        prompt = job.prompt.estimated_tokens() if prompt is None else prompt
        completion = chunks if completion is None else completion
    else:
        return Usage("unknown", prompt, completion, cached, reasoning)
    cost = cost_pico_usd(
        job.model.price, prompt_tokens=prompt, completion_tokens=completion,
        cached_tokens=cached or 0,
    )  # fmt: skip
    return Usage(source, prompt, completion, cached, reasoning, cost)


def attempt_usage(job: Job, attempt: Attempt) -> Usage:
    """An attempt's usage; estimable once a 200 response started (it may have been billed)."""
    result = attempt.result
    if result is None or attempt.http_status != 200:
        return Usage("unknown")
    return read_usage(job, result.usage, chunks=result.content_chunks + result.reasoning_chunks)


def _apply_usage(rec: Record, u: Usage) -> None:
    rec.usage_source = u.source
    rec.prompt_tokens, rec.completion_tokens, rec.cached_tokens = (
        u.prompt_tokens, u.completion_tokens, u.cached_tokens
    )  # fmt: skip
    if u.reported_reasoning is not None:
        rec.reasoning_tokens = u.reported_reasoning
    elif rec.reasoning_chunks:
        rec.reasoning_tokens = rec.reasoning_chunks
    if u.cost_pico is not None:
        rec.cost_pico_usd = u.cost_pico
        rec.cost_usd = u.cost_pico / 1e12
        rec.cost_source = "server_usage" if u.source == "server" else "estimate"


def _truncated(finish_reason: str | None) -> bool | None:
    return None if finish_reason is None else finish_reason == "length"


def _apply_server_timings(
    rec: Record, perf_metrics: dict[str, Any] | None, headers: dict[str, str]
) -> None:
    if perf_metrics:
        rec.server_ttft_s = _float(perf_metrics.get("server-time-to-first-token"))
        rec.server_processing_s = _float(perf_metrics.get("server-processing-time"))
        if rec.server_ttft_s is not None or rec.server_processing_s is not None:
            rec.server_timing_source = "perf_metrics"
            return
    ttft = _float(headers.get("fireworks-server-time-to-first-token"))
    processing = _float(headers.get("fireworks-server-processing-time"))
    if ttft is not None or processing is not None:
        rec.server_ttft_s, rec.server_processing_s = ttft, processing
        rec.server_timing_source = "header"


def cache_entry(result: StreamResult, record: Record) -> dict[str, Any]:
    """What the response cache keeps of a successful answer (no timings: they were not
    measured when the answer is reused), with the cost it had when first recorded."""
    return {
        "cost_pico_usd": record.cost_pico_usd,
        "usage_source": record.usage_source,
        "answer_text": result.answer_text,
        "usage": result.usage,
        "finish_reason": result.finish_reason,
        "response_id": result.response_id,
        "content_chunks": result.content_chunks,
        "reasoning_chunks": result.reasoning_chunks,
        "tool_calls": result.tool_calls_json(),
    }


def record_from_cache(
    job: Job,
    entry: dict[str, Any],
    *,
    run_id: str,
    endpoint: str,
    max_tokens: int,
    stream: bool,
    keep_text: bool,
) -> Record:
    """A row for a reused answer: marked, tokens kept, no timings; its cost is the one the
    model charged when the answer was first recorded (cost_source `cached`), so a model's
    cost per item does not depend on which of its answers happened to be cached. Entries
    from before schema 4 carry no cost: it is priced again from their usage."""
    rec = Record(
        **_identity(job, run_id=run_id, endpoint=endpoint, max_tokens=max_tokens, stream=stream),
        status="ok",
        attempts=0,
        response_cached=True,
        response_id=entry.get("response_id"),
        finish_reason=entry.get("finish_reason"),
        content_chunks=int(entry.get("content_chunks") or 0),
        reasoning_chunks=int(entry.get("reasoning_chunks") or 0),
        response_text=entry.get("answer_text") if keep_text else None,
        tool_calls=entry.get("tool_calls"),
    )
    rec.truncated = _truncated(rec.finish_reason)
    usage = read_usage(job, entry.get("usage"), chunks=rec.content_chunks + rec.reasoning_chunks)
    _apply_usage(rec, usage)
    if isinstance(entry.get("usage_source"), str):
        rec.usage_source = entry["usage_source"]
    original = entry.get("cost_pico_usd")
    cost = original if isinstance(original, int) else usage.cost_pico
    rec.cost_pico_usd, rec.cost_usd = cost, None if cost is None else cost / 1e12
    rec.cost_source = "cached" if cost is not None else "unknown"
    rec.retry_cost_pico_usd = None
    return rec
