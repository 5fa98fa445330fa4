"""A prefix cache like a serving engine's: block-granular, bounded, with expiry.

A prompt is the canonical byte stream the simulator counts tokens on (validation.py: each
message costs 4 tokens of role header plus ceil(bytes / 4) of text), cut into blocks of
`block_tokens` tokens; block i's key is a hash chained over blocks 0..i, so a block can only
hit when everything before it matches (exact-prefix caching, as Fireworks documents it).

A request's cached tokens are its leading blocks already in the cache; its own blocks are
inserted as it is planned and become usable once its prefill is done (`ready_at`), so two
identical prompts sent at once both pay the full prefill, as on a real server. Blocks expire
`ttl_s` after their last use; past `max_blocks` the least recently used go first. The cache
belongs to one model in one simulator worker (a replica): with `sim.workers` > 1 a hit needs
the same worker, which is what session affinity is for on the real service.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HEADER_BYTES = 16  # 4 tokens of 4 bytes: the simulator's per-message overhead
_WEIGHTS = np.random.default_rng(20261202).integers(1, 2**63, size=64, dtype=np.uint64) | 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)


@dataclass(frozen=True)
class PrefixCacheSettings:
    """`sim.prefix_cache`: `max_blocks` 0 turns the cache off (nothing is ever cached)."""

    block_tokens: int = 16
    max_blocks: int = 1_000_000
    ttl_s: float = 300.0


def block_keys(messages: Sequence[tuple[str, bytes]], block_tokens: int) -> list[int]:
    """Chained keys of the full blocks of the prompt's canonical stream."""
    block = 4 * block_tokens
    parts = []
    for role, text in messages:
        parts.append(role.encode()[:HEADER_BYTES].ljust(HEADER_BYTES, b"\x00"))
        parts.append(text)
        pad = -len(text) % 4
        if pad:
            parts.append(b"\x00" * pad)
    stream = b"".join(parts)
    n = len(stream) // block
    if n == 0:
        return []
    # Vectorised: each block's 8 words are mixed into one 64-bit value that also depends on
    # the block's position, and block i's key is the running sum up to i (a chain: it covers
    # every block before it). A Python loop over blocks (blake2b, or CRC-32 + Adler-32) took
    # 14-18 ms for a 100k-token prompt on the simulator's loop under load; this ~1.4 ms.
    # Not collision-proof against crafted input: a simulator's cache, not a security boundary.
    words = np.frombuffer(stream, dtype=np.uint64, count=n * block // 8).reshape(n, block // 8)
    with np.errstate(over="ignore"):
        h = (words * _WEIGHTS[: block // 8]).sum(axis=1, dtype=np.uint64)
        h += np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
        h ^= h >> np.uint64(31)
        h *= _MIX
        h ^= h >> np.uint64(29)
        keys: list[int] = np.cumsum(h, dtype=np.uint64).tolist()
    return keys


class PrefixCache:
    """One model's cache in one worker: key -> (ready_at, expires_at), in LRU order."""

    def __init__(self, settings: PrefixCacheSettings) -> None:
        self._s = settings
        self._blocks: OrderedDict[int, tuple[float, float]] = OrderedDict()

    def lookup(self, keys: Sequence[int], now: float) -> int:
        """How many leading blocks of `keys` are cached and ready at `now`."""
        if self._s.max_blocks <= 0:
            return 0
        blocks = self._blocks
        hits = 0
        for key in keys:
            entry = blocks.get(key)
            if entry is None or entry[0] > now or entry[1] <= now:
                break
            hits += 1
        return hits

    def store(self, keys: Sequence[int], now: float, ready_at: float) -> None:
        """Store every block (usable from `ready_at`, or earlier if it already was) and renew
        its expiry; evict the least recently used past `max_blocks`."""
        if self._s.max_blocks <= 0:
            return
        blocks = self._blocks
        expires = max(now, ready_at) + self._s.ttl_s
        for key in keys:
            old = blocks.get(key)
            live = old is not None and old[1] > now  # in flight or ready: keep the earlier
            blocks[key] = (min(old[0], ready_at) if old is not None and live else ready_at, expires)
            blocks.move_to_end(key)
        while len(blocks) > self._s.max_blocks:
            blocks.popitem(last=False)
