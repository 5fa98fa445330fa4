"""Randomness derived by hashing, never from a shared RNG.

Every random choice the simulator makes (item difficulty, whether a model answers an item
correctly, the wrong number it gives, latency jitter) is a hash of the seed and of what the
choice is about. So any worker process, in any order, on any run with the same seed gives the
same answer to the same request, and tests can predict it.
"""

from __future__ import annotations

import hashlib
import random

_SEP = b"\x1f"
_SCALE = 1.0 / 2.0**64


def hash64(seed: int, *parts: str | int | bytes) -> int:
    """A 64-bit integer from blake2b over the seed and `parts` (unambiguously separated)."""
    h = hashlib.blake2b(str(seed).encode(), digest_size=8)
    for part in parts:
        h.update(_SEP)
        h.update(part if isinstance(part, bytes) else str(part).encode())
    return int.from_bytes(h.digest(), "big")


def unit(seed: int, *parts: str | int | bytes) -> float:
    """A number in [0, 1) determined by the seed and `parts`."""
    return hash64(seed, *parts) * _SCALE


def rng(seed: int, *parts: str | int | bytes) -> random.Random:
    """A private Random seeded from a hash: for draws that need many numbers (jitter)."""
    return random.Random(hash64(seed, *parts))
