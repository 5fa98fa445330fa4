"""HAR (HTTP Archive 1.2) -> trace JSONL: recorded chat requests to replay with `workload=trace`.

Why HAR: every browser's developer tools, mitmproxy, Charles and most API proxies export it,
it is a published format (W3C draft, "HAR 1.2"), and it holds each request's start time
(`startedDateTime`) and body (`postData.text`), which is all a replay needs. Requests whose
URL contains /chat/completions (or Lava's /v1/forward) with a JSON body with `messages` are
kept; everything else is skipped and counted.

    python -m lavabench.workloads.har capture.har trace.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lavabench.errors import ConfigError


def har_to_trace(har: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """(trace records, entries skipped) from a parsed HAR object."""
    entries = (har.get("log") or {}).get("entries")
    if not isinstance(entries, list):
        raise ConfigError("not a HAR file: no log.entries list")
    out, skipped = [], 0
    for i, entry in enumerate(entries):
        request = entry.get("request") or {}
        url = str(request.get("url", ""))
        text = (request.get("postData") or {}).get("text")
        if request.get("method") != "POST" or not (
            "/chat/completions" in url or "/v1/forward" in url
        ):
            skipped += 1
            continue
        try:
            body = json.loads(text or "")
        except json.JSONDecodeError:
            skipped += 1
            continue
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            skipped += 1
            continue
        headers = {h.get("name", "").lower(): h.get("value") for h in request.get("headers", [])}
        record: dict[str, Any] = {"timestamp": entry.get("startedDateTime"), "id": f"har{i}",
                                  "body": body}  # fmt: skip
        session = headers.get("x-session-affinity") or body.get("prompt_cache_key")
        if session:
            record["session_id"] = str(session)
        out.append(record)
    return out, skipped


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m lavabench.workloads.har CAPTURE.har TRACE.jsonl", file=sys.stderr)
        return 2
    src, dst = Path(argv[0]), Path(argv[1])
    try:
        records, skipped = har_to_trace(json.loads(src.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, ConfigError) as exc:
        print(f"{src}: {exc}", file=sys.stderr)
        return 2
    dst.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    print(f"{dst}: {len(records)} chat requests ({skipped} other entries skipped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
