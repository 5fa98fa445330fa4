"""A minimal independent SSE server for bench_cli.py: not the simulator, a few dozen lines.

Raw asyncio on uvloop, HTTP/1.1 keep-alive. Any POST (the forward route `/v1/forward?u=...`
included) gets a 200 `text/event-stream` in chunked encoding: 32 OpenAI-style
`chat.completion.chunk` events with one content token each, the last one with
`finish_reason: stop`, then a chunk with `usage` and no choices, then `data: [DONE]`.
Zero delay; each event is its own write (one TCP send while the socket has room), as a
streaming server produces tokens, or with `--coalesce` the whole response in one write
(fewer, larger reads for the client: less of aiohttp's per-read work, so lavabench's own
per-request work is a larger share). The answer text ends with "The answer is N." where N
is the demo dataset's reference answer for the request's last user message (so the
numeric grader marks it correct); a question it does not know gets N = 0 (graded wrong,
which costs the grader the same work).

    python bench/sse_server.py [--port 0] [--core 0] [--coalesce] [--answers datasets/demo-arith.jsonl]

Prints `port N` on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import orjson

TOKENS = 32
_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _events(completion_id: int, answer: str) -> list[bytes]:
    """The response's chunked-encoded writes: 32 token events, usage, [DONE], the end."""
    words = [f" w{i}" for i in range(TOKENS - 4)] + [" The answer", " is", f" {answer}", "."]
    cid = f"chatcmpl-{completion_id}"
    out = []
    for i, word in enumerate(words):
        choice = {"index": 0, "delta": {"content": word}, "finish_reason": None}
        if i == TOKENS - 1:
            choice["finish_reason"] = "stop"
        obj = {"id": cid, "object": "chat.completion.chunk", "choices": [choice]}
        out.append(_chunk(b"data: " + orjson.dumps(obj) + b"\n\n"))
    usage = {"prompt_tokens": 60, "completion_tokens": TOKENS, "total_tokens": 60 + TOKENS}
    tail = {"id": cid, "object": "chat.completion.chunk", "choices": [], "usage": usage}
    out.append(_chunk(b"data: " + orjson.dumps(tail) + b"\n\n"))
    out.append(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    return out


class SSEProtocol(asyncio.Protocol):
    ids: ClassVar[Iterator[int]] = itertools.count()
    answers: ClassVar[dict[str, str]] = {}
    coalesce: ClassVar[bool] = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (head_end := self.buf.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buf[:head_end].lower().split(b"\r\n")[1:]:
                if line.startswith(b"content-length:"):
                    length = int(line[15:])
            if len(self.buf) < head_end + 4 + length:
                return  # the body is still coming
            body = self.buf[head_end + 4 : head_end + 4 + length]
            self.buf = self.buf[head_end + 4 + length :]
            self.respond(body)

    def respond(self, body: bytes) -> None:
        try:
            messages = orjson.loads(body).get("messages") or [{}]
            question = str(messages[-1].get("content"))
        except (orjson.JSONDecodeError, AttributeError):
            question = ""
        parts = [_HEAD, *_events(next(self.ids), self.answers.get(question, "0"))]
        if self.coalesce:
            self.transport.write(b"".join(parts))  # type: ignore[attr-defined]
        else:
            for part in parts:
                self.transport.write(part)  # type: ignore[attr-defined]


def load_answers(path: Path) -> dict[str, str]:
    """question -> reference answer, from a JSONL dataset with `question`/`answer` fields."""
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {str(r["question"]): str(r["answer"]) for r in rows}


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(
        SSEProtocol,
        "127.0.0.1",
        port,
        backlog=4096,  # 256 connects at once: no SYN drops
    )
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--core", type=int, default=None, help="pin to this CPU core")
    parser.add_argument("--answers", type=Path, default=root / "datasets" / "demo-arith.jsonl")
    parser.add_argument(
        "--coalesce", action="store_true", help="one write per response, not one per event"
    )
    args = parser.parse_args()
    SSEProtocol.coalesce = args.coalesce
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    SSEProtocol.answers = load_answers(args.answers)
    import uvloop

    try:
        uvloop.run(serve(args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
