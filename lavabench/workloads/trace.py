"""Pure: the `trace` workload: recorded requests replayed on their recorded times.

The trace is JSONL, one request a line (README "Workloads" has the format):

    {"timestamp": 1733000000.25, "messages": [{"role": "user", "content": "..."}],
     "max_tokens": 256, "session_id": "abc", "model": "ignored: model= remaps"}
    {"timestamp": "2026-11-30T12:00:00.250Z", "body": {"messages": [...], "max_tokens": 64,
     "temperature": 0.2}}

`timestamp` is unix seconds or ISO 8601; `messages` or a whole chat `body` (its own
`model`, `stream`, `stream_options` are dropped: the run decides those, and `model=` sends
every request to each chosen catalog model); `max_tokens` (or the body's) falls back to
`workload.max_tokens`, then `runner.max_tokens`. Lines are sorted by time; each request's
intended send time is (its timestamp - the first) / `speed`, open loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lavabench.datasets.prompt import Prompt
from lavabench.errors import ConfigError

# the run sets these, never the trace
_RUN_FIELDS = frozenset(
    {"model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options",
     "perf_metrics_in_response", "seed"}
)  # fmt: skip


@dataclass(frozen=True)
class TraceRequest:
    """One recorded request, checked."""

    line: int
    offset_s: float  # since the trace's first request, before `speed`
    messages: list[dict[str, Any]]
    max_tokens: int | None
    params: dict[str, Any]
    session_id: str | None
    item_id: str


def read_trace(path: Path, limit: int | None = None) -> list[TraceRequest]:
    """The trace's requests in time order; ConfigError names the file, line and key."""
    raw = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"workload.path={path}: cannot read the trace ({exc})") from exc
    for no, line in enumerate(lines, 1):
        if line.strip():
            raw.append(_request(path, no, line))
    if not raw:
        raise ConfigError(f"{path}: the trace has no requests")
    raw.sort(key=lambda r: (r[0], r[1]))
    t0 = raw[0][0]
    out = [
        TraceRequest(no, ts - t0, msgs, mt, params, sid, item or f"l{no}")
        for ts, no, msgs, mt, params, sid, item in raw
    ]
    return out[:limit] if limit is not None else out


def _request(path: Path, no: int, line: str) -> tuple[Any, ...]:
    where = f"{path}:{no}"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: expected an object per line")
    ts = _timestamp(obj.get("timestamp"), where)
    body = obj.get("body") or {}
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: `body` must be a chat-completions request object")
    messages = obj.get("messages", body.get("messages"))
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages)
    ):
        raise ConfigError(
            f"{where}: `messages` (or body.messages) must be a list of {{role, content}}"
        )
    max_tokens = obj.get("max_tokens", body.get("max_tokens", body.get("max_completion_tokens")))
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise ConfigError(f"{where}: `max_tokens` must be an integer >= 1")
    params = {k: v for k, v in body.items() if k not in _RUN_FIELDS}
    sid = obj.get("session_id")
    item = obj.get("id")
    return (
        ts,
        no,
        messages,
        max_tokens,
        params,
        None if sid is None else str(sid),
        (None if item is None else str(item)),
    )


def _timestamp(value: Any, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise ConfigError(f"{where}: `timestamp` must be unix seconds or ISO 8601, got {value!r}")


def trace_prompts(name: str, requests: list[TraceRequest], default_max: int) -> list[Prompt]:
    """One Prompt per recorded request (messages and params ride in metadata as JSON; the
    prompt-token target is an estimate: 4 a message + 1 per 4 bytes)."""
    prompts = []
    for r in requests:
        text = json.dumps(r.messages, ensure_ascii=False)
        prompts.append(
            Prompt(
                dataset=name,
                item_id=r.item_id,
                messages=(),
                reference=None,
                prompt_sha256="",
                target_prompt_tokens=4 * len(r.messages) + len(text.encode()) // 4,
                target_output_tokens=r.max_tokens or default_max,
                session_id=r.session_id,
                metadata=(
                    ("messages_json", text),
                    ("params_json", json.dumps(r.params)),
                    ("offset_s", repr(r.offset_s)),
                ),
            )
        )
    if len({p.item_id for p in prompts}) != len(prompts):
        raise ConfigError(f"trace {name}: two requests share an `id`; ids must be unique")
    return prompts
