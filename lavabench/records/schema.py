"""The Record: one row per work item, the contract between the request path and the data path.

Each field declares its Arrow type and its documentation here, once: `records/store.py` builds the
Parquet schema from it and `docs/records.md` is generated from it (a test keeps the two in
step). This module imports no pyarrow, so the request path stays free of it.

Timing fields describe the *final* attempt; earlier attempts show up only in `attempts`,
`retry_reasons` and `backoff_s`, so a retried request never looks faster or slower than the
one attempt that produced its answer. Raw monotonic stamps (`*_ns`, since the run's origin)
are kept beside the derived seconds so every derived figure can be recomputed.

Bump SCHEMA_VERSION whenever a field is added, removed or changes meaning, and say so in
docs/records.md; readers tolerate older versions by filling missing columns with nulls.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

SCHEMA_VERSION = 7


def _col(arrow: str, doc: str, default: Any = None) -> Any:
    return field(default=default, metadata={"arrow": arrow, "doc": doc})


def _list_col(arrow: str, doc: str) -> Any:
    return field(default_factory=list, metadata={"arrow": arrow, "doc": doc})


@dataclass(slots=True, kw_only=True)
class Record:
    """One work item's outcome. Units are in the names: `_s` seconds, `_ns` nanoseconds."""

    # --- identity -----------------------------------------------------------------------
    schema_version: int = _col("int16", "Record schema version.", SCHEMA_VERSION)
    run_id: str = _col("string", "Run this row belongs to (directory name under results/).")
    job_id: str = _col(
        "string",
        "Stable work-item id `<model>/<dataset>/<item_id>/r<repeat>` (warm-up: `warmup/...`).",
    )
    endpoint: str = _col("string", "Endpoint kind: `sim`, `lava` or `direct`.")
    model: str = _col("string", "Catalog name of the model (config key).")
    model_id: str = _col("string", "Model id sent on the wire (`accounts/fireworks/...`).")
    dataset: str = _col("string", "Dataset name.")
    item_id: str = _col("string", "Dataset item id.")
    repeat: int = _col("int32", "Repeat index, 0-based (`runner.repeats`).", 0)
    is_warmup: bool = _col("bool", "Warm-up request: recorded, excluded from statistics.", False)
    prompt_sha256: str = _col("string", "sha256 of the rendered messages (canonical JSON).")
    stream: bool = _col("bool", "Whether the request was streamed.", True)
    max_tokens: int = _col("int32", "`max_tokens` sent (always explicit).", 0)

    # --- workload (`workload=`; null for dataset rows) --------------------------------------
    workload_kind: str | None = _col(
        "string", "`synthetic`, `conversation` or `trace`; null: a dataset item."
    )
    target_prompt_tokens: int | None = _col(
        "int32", "Prompt tokens the workload aimed at (actual: `prompt_tokens`)."
    )
    target_output_tokens: int | None = _col(
        "int32", "Output tokens the workload aimed at (sent as `max_tokens`)."
    )
    output_control: str | None = _col(
        "string",
        "How the output length was held: `ignore_eos` (sent, accepted), `instruction` (the "
        "endpoint refused `ignore_eos`: the prompt's long-answer instruction alone), null.",
    )
    session_id: str | None = _col("string", "Conversation or trace session this turn is in.")
    turn_index: int | None = _col("int32", "0-based turn within `session_id`.")
    session_affinity: str | None = _col(
        "string",
        "Session affinity sent: `prompt_cache_key` (body field) or `header` "
        "(`x-session-affinity`); null: none.",
    )

    # --- outcome ------------------------------------------------------------------------
    status: str = _col("string", "`ok` (complete answer with [DONE]) or `error`.", "error")
    http_status: int | None = _col("int16", "HTTP status of the final attempt; null if none.")
    error_type: str | None = _col(
        "string",
        "Error kind of the final attempt (`auth_failed`, `insufficient_balance`, "
        "`rate_limited`, `unavailable`, `bad_request`, `stream_broken`); null when ok.",
    )
    error_message: str | None = _col("string", "Error message (credentials never included).")
    attempts: int = _col("int16", "Attempts made, including the final one.", 1)
    retry_reasons: list[str] = _list_col(
        "list<string>",
        "Error kind and HTTP status of each failed earlier attempt, e.g. `rate_limited:429`.",
    )
    backoff_s: float = _col("float64", "Total time slept between attempts.", 0.0)
    retry_waits_s: list[float] = _list_col(
        "list<float64>", "Each wait before a retry (>= the server's Retry-After, capped)."
    )
    failed_attempts_s: list[float] = _list_col(
        "list<float64>", "Duration of each failed earlier attempt, send to failure."
    )

    # --- raw clock ----------------------------------------------------------------------
    started_at: datetime | None = _col(
        "timestamp_us_utc",
        "Wall-clock UTC time the final attempt was sent (for humans; not for latency).",
    )
    first_send_ns: int = _col(
        "int64", "Monotonic ns since run origin when the first attempt was sent.", 0
    )
    send_ns: int = _col(
        "int64", "Monotonic ns since run origin when the final attempt was sent.", 0
    )
    headers_ns: int | None = _col("int64", "… when the final attempt's response headers arrived.")
    first_token_ns: int | None = _col(
        "int64", "… when the first reasoning or answer token arrived (bytes read, before parsing)."
    )
    last_token_ns: int | None = _col("int64", "… when the last reasoning or answer token arrived.")
    done_ns: int | None = _col(
        "int64", "… when the final attempt's `[DONE]` (or whole non-streamed body) arrived."
    )
    end_ns: int = _col("int64", "… when the final attempt ended (stream closed or failed).", 0)
    token_offsets_ns: list[int] = _list_col(
        "list<int64>",
        "Arrival of every chunk carrying reasoning or answer text, ns after `send_ns`.",
    )

    # --- derived timings (final attempt) ------------------------------------------------
    headers_s: float | None = _col("float64", "Time to response headers.")
    ttft_s: float | None = _col(
        "float64", "Time to first token: first reasoning or answer text after send."
    )
    first_reasoning_s: float | None = _col(
        "float64", "Time to first reasoning token; null if none."
    )
    first_answer_s: float | None = _col("float64", "Time to first answer (`content`) token.")
    e2e_s: float | None = _col(
        "float64",
        "Send to `[DONE]` (a non-streamed response: to its whole body); successful attempts "
        "only. Before schema 4 it ran to connection close (see `e2e_close_s`).",
    )
    e2e_close_s: float | None = _col(
        "float64",
        "Send to connection close (the end of the HTTP body after `[DONE]`); successful "
        "attempts only. Normally a hair after `e2e_s`; a large gap is a server holding the "
        "stream open.",
    )
    itl_mean_s: float | None = _col("float64", "Mean gap between successive token chunks.")
    itl_p50_s: float | None = _col("float64", "Median gap between successive token chunks.")
    itl_p99_s: float | None = _col("float64", "99th percentile gap between token chunks.")
    itl_max_s: float | None = _col("float64", "Largest gap between token chunks.")
    output_tokens_per_s: float | None = _col(
        "float64",
        "Decode speed seen by the user: (completion_tokens - 1) / (last token - first token).",
    )
    content_chunks: int = _col(
        "int32",
        "SSE chunks that carried answer text or a `delta.tool_calls` fragment (a tool call is "
        "the answer: the first tool-call delta counts as the first output token in `ttft_s`, "
        "`first_answer_s` and `token_offsets_ns`).",
        0,
    )
    reasoning_chunks: int = _col("int32", "SSE chunks that carried reasoning text.", 0)

    tokens_per_chunk: float | None = _col(
        "float64",
        "completion_tokens / (content_chunks + reasoning_chunks). Above 1 the server packs "
        "several tokens per chunk: the itl_* columns are then gaps between chunks, not tokens.",
    )

    # --- dispatch (load shape, first attempt) -------------------------------------------
    intended_send_ns: int | None = _col(
        "int64",
        "When the load shape meant the request to go out, ns since run origin. Open loop "
        "(`runner.arrival=constant|poisson`): the planned arrival. Closed loop: the moment a "
        "concurrency slot and the rate cap let it go. Null for cached rows.",
    )
    dispatch_late_s: float | None = _col(
        "float64",
        "first_send_ns - intended_send_ns: how late the first attempt actually went out "
        "(includes slot wait in the open loop).",
    )
    slot_wait_s: float | None = _col(
        "float64", "Time the request waited for a free concurrency slot before its first attempt."
    )
    rate_wait_s: float | None = _col(
        "float64",
        "Time the request waited for a rate-cap token (`runner.rate`) before its first attempt.",
    )

    # --- usage and cost (from the server's `usage`, else a labelled estimate) -----------
    usage_source: str = _col(
        "string",
        "Where prompt_tokens / completion_tokens came from: `server` (the response's "
        "`usage`); `estimate` (no usage in the response: prompt tokens by the budget's "
        "heuristic, 4 per message + 1 per 4 UTF-8 bytes of content, and completion tokens = "
        "content_chunks + reasoning_chunks counted by the client, exact for one token per "
        "chunk, low when the server packs several); `unknown` (nothing to estimate from: "
        "the attempt failed before any token, or an HTTP error).",
        "unknown",
    )
    prompt_tokens: int | None = _col(
        "int32", "usage.prompt_tokens (includes cached tokens); an estimate per usage_source."
    )
    completion_tokens: int | None = _col(
        "int32", "usage.completion_tokens (includes reasoning); an estimate per usage_source."
    )
    cached_tokens: int | None = _col("int32", "usage.prompt_tokens_details.cached_tokens.")
    reasoning_tokens: int | None = _col(
        "int32",
        "usage.completion_tokens_details.reasoning_tokens if reported, else reasoning chunks "
        "counted by the client (Fireworks streams one token per chunk); null for none.",
    )
    cost_pico_usd: int | None = _col(
        "int64",
        "The final attempt's cost in 1e-12 USD: tokens x the catalog prices recorded in "
        "metadata (cached prompt tokens at the cached price). What it rests on: cost_source. "
        "Null only when unknown, never 0 for unknown.",
    )
    cost_usd: float | None = _col(
        "float64", "cost_pico_usd / 1e12, for display; sum the pico column."
    )
    cost_source: str = _col(
        "string",
        "`server_usage` (exact, from the response's usage); `estimate` (list price x the "
        "estimated tokens, see usage_source); `cached` (a reused answer: the cost the model "
        "charged when the answer was first recorded, so cost per item does not depend on "
        "which answers were cached; not spent by this run); `unknown` (cost_pico_usd null).",
        "unknown",
    )
    retry_cost_pico_usd: int | None = _col(
        "int64",
        "Cost of the failed earlier attempts that were or may have been billed (HTTP 200 and "
        "then cut: priced from their usage if any, else estimated as for usage_source), kept "
        "apart from cost_pico_usd so timings and cost stay the final attempt's. 0 when no "
        "earlier attempt can have been billed; null for cached rows. Counts against budgets.",
    )
    retry_lava_request_ids: list[str] = _list_col(
        "list<string>",
        "`x-lava-request-id` of each failed earlier attempt counted in retry_cost_pico_usd "
        "(for `reconcile`: Lava bills those requests too).",
    )
    truncated: bool | None = _col(
        "bool",
        "The answer was cut at max_tokens (finish_reason `length`); null with no finish reason.",
    )

    # --- what the server said about itself ---------------------------------------------
    server_ttft_s: float | None = _col(
        "float64", "Server-reported time to first token (perf_metrics or fireworks-* header)."
    )
    server_processing_s: float | None = _col("float64", "Server-reported processing time.")
    server_timing_source: str | None = _col(
        "string", "Where server timings came from: `perf_metrics` or `header`."
    )
    overhead_s: float | None = _col(
        "float64",
        "Client TTFT minus the server-reported TTFT (`ttft_s - server_ttft_s`): time spent "
        "between client and provider (network, gateway, client lag); null without server TTFT.",
    )
    lava_request_id: str | None = _col("string", "`x-lava-request-id` response header.")
    response_id: str | None = _col("string", "The provider's completion id (`id`).")
    finish_reason: str | None = _col(
        "string", "`stop`, `length`, `tool_calls`, ... from the final choice."
    )

    # --- answer and grade ---------------------------------------------------------------
    response_text: str | None = _col(
        "string", "Answer text (null when `records.response_text=false`)."
    )
    tool_calls: str | None = _col(
        "string",
        "The tool calls the model made, as a JSON list of {id, name, arguments} in stream "
        "`index` order: `name` as sent on the wire, `arguments` the raw text the server sent "
        "(not re-encoded, so malformed JSON stays visible); null when it made none. Kept even "
        "with `records.response_text=false` (it is the answer the grader reads).",
    )
    grader: str | None = _col("string", "Grader name; null when the item has no reference.")
    correct: bool | None = _col("bool", "Grade: answer correct; null when not graded or failed.")
    score: float | None = _col("float64", "Grade score in [0, 1]; null when not graded.")
    extracted_answer: str | None = _col("string", "Answer the grader extracted.")
    format_ok: bool | None = _col(
        "bool",
        "The answer was in the format its grader requires: false = *unparsed* (tool-call "
        "arguments not valid JSON or not an object; `json` grader: not JSON, or not valid "
        "against the schema), a format failure counted apart from wrong answers (`correct` "
        "is false too); null when the grader has no format rule or did not grade.",
    )
    grade_error: str | None = _col(
        "string", "Why grading failed (the response is kept; correct/score stay null)."
    )
    grade_status: str | None = _col(
        "string",
        "`graded` (correct/score set); `ungraded` (the grader could not grade this answer: "
        "an LLM judge request failed or gave no score, every IFEval instruction of the "
        "prompt is unsupported; see ungraded_reason); `grade_error` (the grader raised; see "
        "grade_error); `no_reference` (nothing to grade against). Null when there was no "
        "answer to grade (failed request, warm-up). Accuracy is over `graded` answers (and "
        "failed requests, as wrong); ungraded ones are counted beside it, never as wrong.",
    )
    ungraded_reason: str | None = _col(
        "string", "Why an answer is `ungraded` or `grade_error`, in a few words."
    )
    judge_model: str | None = _col(
        "string", "LLM-as-judge: the judge model's catalog name; null for other graders."
    )
    judge_prompt_tokens: int | None = _col("int32", "Judge request: usage.prompt_tokens.")
    judge_completion_tokens: int | None = _col("int32", "Judge request: usage.completion_tokens.")
    judge_cost_pico_usd: int | None = _col(
        "int64", "Judge request's exact cost, kept apart from the graded model's cost_pico_usd."
    )
    judge_lava_request_id: str | None = _col(
        "string",
        "`x-lava-request-id` of the judge request that answered (`reconcile` matches it: the "
        "judge is billed too).",
    )

    # --- reuse ----------------------------------------------------------------------------
    response_cached: bool = _col(
        "bool",
        "The answer came from the response cache (`cache.enabled`), not a new request: its "
        "timings are not a measurement (excluded from latency); its cost_pico_usd is the "
        "answer's original cost (cost_source `cached`), not spend of this run.",
        False,
    )

    # --- load=sweep: the step this request belongs to --------------------------------------
    load_step: int | None = _col(
        "int16", "`load=sweep`: 0-based step of the load sweep; null for a fixed-load run."
    )
    load_level: float | None = _col(
        "float64",
        "`load=sweep`: that step's level: concurrency (`over: concurrency`) or requests/s.",
    )

    client_worker: int | None = _col(
        "int16",
        "`runner.workers` > 1: which client process (0-based) sent the request; null for one.",
    )

    # --- limits in force when the request was sent ---------------------------------------
    limit_run_rate_rps: float | None = _col(
        "float64", "`runner.rate` as a cap on this run (closed loop); null for none."
    )
    limit_run_budget_usd: float | None = _col(
        "float64", "`runner.budget_usd`: this run's own spending limit; null for none."
    )
    limit_shared_rate_rps: float | None = _col(
        "float64",
        "`limits.rate`: the account-wide request rate shared by every job of the sweep "
        "(through the sweep's limiter); null for none.",
    )
    limit_shared_budget_usd: float | None = _col(
        "float64",
        "`limits.budget_usd`: the budget shared by every job of the sweep; null for none.",
    )


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Record))


def record_field_specs() -> list[tuple[str, str, str]]:
    """(name, arrow type, doc) for every column, in schema order."""
    return [(f.name, f.metadata["arrow"], f.metadata["doc"]) for f in fields(Record)]


def records_markdown() -> str:
    """docs/records.md, generated from the field specs (`make docs` rewrites it)."""
    lines = [
        "# Records: one Parquet row per request",
        "",
        "Generated from `lavabench/records/schema.py` by `make docs`; do not edit by hand.",
        "",
        f"Schema version: **{SCHEMA_VERSION}** (file metadata key `lavabench.schema_version`).",
        "",
        "Files: `results/<run_id>/records.parquet` (and, while a run is going or after a crash,",
        "`records.parts/part-*.parquet`). Read them with `lavabench.records.reader.read_records(run_dir)`,",
        "which fills columns missing from older schema versions with nulls. A sweep",
        "(`lavabench run -m`) keeps one such run directory per job, as hive partitions:",
        "`results/sweep-<stamp>/model=<m>/dataset=<d>/job=<n>/records.parquet`.",
        "",
        "Conventions: `_s` seconds, `_ns` integer nanoseconds; `*_ns` stamps are",
        "`time.perf_counter_ns()` since the run's origin (monotonic; compare within a run only).",
        "Timings describe the final attempt; retries show in `attempts`, `retry_reasons` and",
        "`backoff_s`. Cost: sum `cost_pico_usd` (exact integers), not `cost_usd`.",
        "",
        "File metadata: `lavabench.run` holds the run's JSON (run id, version, endpoint, dataset",
        "hash, prices used, resolved config without secrets); `run.json` beside the file holds",
        "the same plus status and counts.",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
    ]
    for name, arrow, doc in record_field_specs():
        lines.append(f"| `{name}` | {arrow} | {doc.replace('|', '/')} |")
    lines += [
        "",
        "## Version history",
        "",
        "- 1: first version.",
        "- 2: `grade_error` (grading failures keep the response), `response_cached`, `judge_*`,",
        "  `retry_waits_s`, `failed_attempts_s` (every attempt's outcome is kept),",
        "  `overhead_s`, `tokens_per_chunk`, `intended_send_ns`, `dispatch_late_s`,",
        "  `slot_wait_s`, `rate_wait_s` (measurement validity; see run.json `health`).",
        "- 3: `limit_run_rate_rps`, `limit_run_budget_usd`, `limit_shared_rate_rps`,",
        "  `limit_shared_budget_usd`: the limits each request was sent under (sweeps share",
        "  the account's rate and budget across jobs); `load_step`, `load_level` (`load=sweep`);",
        "  `client_worker` (`runner.workers`).",
        "- 4: `tool_calls` (the calls a model made, arguments verbatim), `format_ok` (the",
        "  grader's format check: false = unparsed); `content_chunks` and the first-token",
        "  timings count `delta.tool_calls` fragments as answer chunks.",
        "- 5: provenance. `usage_source`, `cost_source` (an estimate or a cached answer's",
        "  original cost is labelled, never a silent null or 0), `truncated`,",
        "  `retry_cost_pico_usd` and `retry_lava_request_ids` (billed failed attempts),",
        "  `done_ns`; `e2e_s` now ends at `[DONE]`, `e2e_close_s` at connection close.",
        "  Older rows read back with these null.",
        "- 6: workloads (`workload=`). `workload_kind`, `target_prompt_tokens`,",
        "  `target_output_tokens`, `output_control`, `session_id`, `turn_index`,",
        "  `session_affinity`; `prompt_sha256` of a workload row is the hash of what was sent.",
        "- 7: `grade_status` and `ungraded_reason`: an answer the grader could not grade",
        "  (judge failure, unsupported instructions, grader error) is ungraded, not wrong;",
        "  `judge_lava_request_id` (reconcile matches judge requests).",
        "  Older rows read back with these null; analysis derives the status from",
        "  grader / correct / grade_error.",
        "",
    ]
    return "\n".join(lines)
