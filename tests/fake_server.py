"""A tiny scripted HTTP server on 127.0.0.1 (aiohttp) for shapes the simulator cannot send:
a lone `</think>`, transition chunks, `event: error` frames, a stream held open after
[DONE], a 403 for one model. Each request gets the reply scripted for its body's `model`."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Reply:
    status: int = 200
    parts: tuple[bytes, ...] = ()  # written one by one, `gap_s` apart
    gap_s: float = 0.0
    hold_s: float = 0.0  # after the last part, before the response ends
    content_type: str = "text/event-stream"


def sse(*events: dict | str) -> tuple[bytes, ...]:
    """`data:` events (a dict as JSON, a str as is) as separate parts."""
    return tuple(
        b"data: " + (json.dumps(e) if isinstance(e, dict) else e).encode() + b"\n\n" for e in events
    )


def chunk(content: str | None = None, reasoning: str | None = None, **extra) -> dict:
    delta = {k: v for k, v in (("content", content), ("reasoning_content", reasoning)) if v}
    return {"id": "c1", "choices": [{"index": 0, "delta": delta, **extra}]}


@dataclass
class FakeServer:
    replies: dict[str, Reply]
    seen: list[str] = field(default_factory=list)
    url: str = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        model = json.loads(await request.read()).get("model", "")
        self.seen.append(model)
        reply = self.replies[model.rsplit("/", 1)[-1]]
        response = web.StreamResponse(status=reply.status)
        response.content_type = reply.content_type
        await response.prepare(request)
        for i, part in enumerate(reply.parts):
            if i and reply.gap_s:
                await asyncio.sleep(reply.gap_s)
            await response.write(part)
        if reply.hold_s:
            await asyncio.sleep(reply.hold_s)
        await response.write_eof()
        return response

    async def __aenter__(self) -> FakeServer:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()
