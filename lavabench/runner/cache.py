"""Response cache (sqlite, stdlib): identical requests reuse a stored answer.

For quality evaluation only (`cache.enabled=true`): a reused answer has no timing and cost
no money, so its row is marked `response_cached` and kept out of latency and cost figures.
The key is the endpoint's name and the exact request body (model, messages, params, seed,
max_tokens), so any change to the request misses the cache.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from lavabench.errors import StoreError
from lavabench.wire.client import WireRequest


class SqliteResponseCache:
    def __init__(self, path: Path, namespace: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, entry TEXT NOT NULL)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cache.path {path}: cannot open the response cache: {exc}") from exc
        self._namespace = namespace.encode()

    def _key(self, request: WireRequest) -> str:
        return hashlib.sha256(self._namespace + b"\n" + request.body).hexdigest()

    def get(self, request: WireRequest) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT entry FROM responses WHERE key = ?", (self._key(request),)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, request: WireRequest, entry: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, entry) VALUES (?, ?)",
            (self._key(request), json.dumps(entry)),
        )

    def close(self) -> None:
        self._db.close()
