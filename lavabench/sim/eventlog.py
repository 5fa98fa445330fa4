"""The simulator's own record of what it sent: one JSON line per response.

Client tests join their records to these lines by completion id, so each line carries the
exact numbers that went on the wire. Each worker opens the file with O_APPEND and writes every
line with a single `os.write`: on a local file that makes lines from several workers land
whole, never interleaved (a line-buffered text file could split a long line in two writes).
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from lavabench.sim.completion import Completion


class EventLog:
    """Append-only JSONL writer; `None` path means logging is off and costs nothing."""

    def __init__(self, path: str | None) -> None:
        self._fd: int | None = None
        if path is not None:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @property
    def enabled(self) -> bool:
        return self._fd is not None

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as one line, in one system call."""
        if self._fd is not None:
            os.write(self._fd, orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def completion_record(
    c: Completion, path: str, lava_request_id: str | None, status: int = 200
) -> dict[str, Any]:
    """The log line of a completed chat response."""
    return {
        "completion_id": c.completion_id,
        "lava_request_id": lava_request_id,
        "path": path,
        "model": c.model.wire_id,
        "stream": c.stream,
        "status": status,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "cached_tokens": c.cached_tokens,
        "reasoning_tokens": c.reasoning_count,
        "planned_ttft_s": c.ttft_s,  # first chunk; excludes any gateway delay
        "chunks": len(c.chunk_sizes) if c.chunk_sizes else c.completion_tokens,
        "gateway_delay_s": 0.0,
        "planned_itl_s": c.itl_s,
        "sent_ttft_s": None,  # set by the connection when the first token is written
        "finish_reason": c.finish_reason,
        "correct": c.correct,
        "tool_outcome": c.tool_outcome,
        "item_id": c.item_id,
    }


def error_record(
    status: int, path: str, lava_request_id: str | None, request_id: str | None, model: str | None
) -> dict[str, Any]:
    """The log line of an error response (no tokens were generated)."""
    return {
        "completion_id": request_id,
        "lava_request_id": lava_request_id,
        "path": path,
        "model": model,
        "stream": None,
        "status": status,
        "prompt_tokens": None,
        "completion_tokens": None,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "planned_ttft_s": None,
        "chunks": None,
        "gateway_delay_s": None,
        "planned_itl_s": None,
        "sent_ttft_s": None,
        "finish_reason": None,
        "correct": None,
        "item_id": None,
    }
