"""Pure: prompt text of an exact byte length, and the calibration bytes -> server tokens.

Text is sliced out of one seeded corpus of common English words (ASCII, so a character is a
byte), so a prompt of 10,000 tokens is a string slice, not 10,000 draws: 10,000 such prompts
take well under the issue's 10 s (bench/workloads_bench.py measures it). Where a prompt starts
in the corpus is a hash of its key, so the same seed and key give the same text anywhere.

Token counts are the server's: `Calibration` maps a byte length to the prompt tokens a model
reports (`tokens = base + per_byte * bytes`, fitted from probe requests per model), so a
target of T tokens becomes `bytes_for(T)` bytes of text.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from lavabench.errors import ConfigError

_PROSE = (
    "the of and to in is was for on that with as by at from his her it an were which are this "
    "be or had not but have they one all their she there been has more when would who will "
    "time into only other new some could these two may first then do any like my now over "
    "such our man me even most made after also did many before must through back years where "
    "much your way well down should because each just those people how too little state good "
    "very make world still own see men work long get here between both life being under never "
    "day same another know while last might us great old year off come since against go came "
    "right used take three place small found house part country every public number river "
    "garden window market letter morning evening winter summer silver marble harbour meadow"
)
_WORDS = tuple(_PROSE.split())

# Fireworks' chat template costs a few tokens per message; the simulator counts 4. Used until
# a model is calibrated (dry runs, or a model whose usage has no prompt_tokens).
DEFAULT_BASE_TOKENS = 8.0
DEFAULT_TOKENS_PER_BYTE = 0.25


@dataclass(frozen=True)
class Calibration:
    """Prompt tokens a model reports for a prompt of the workload's shape with `b` bytes of
    text: `base + per_byte * b`. `source`: `default` or `probes:<n>` (fitted from n probes)."""

    base: float = DEFAULT_BASE_TOKENS
    per_byte: float = DEFAULT_TOKENS_PER_BYTE
    source: str = "default"

    def bytes_for(self, tokens: float) -> int:
        """Bytes of text whose prompt comes to `tokens` tokens (0 if the base alone exceeds)."""
        return max(0, round((tokens - self.base) / self.per_byte))

    def as_dict(self) -> dict[str, float | str]:
        return {"base_tokens": self.base, "tokens_per_byte": self.per_byte, "source": self.source}


def fit_calibration(points: Sequence[tuple[int, int]]) -> Calibration:
    """Least squares over (text bytes, reported prompt tokens) of two or more probes."""
    if len(points) < 2 or len({b for b, _ in points}) < 2:
        raise ValueError("calibration needs probes of at least two different lengths")
    n = len(points)
    mean_b = sum(b for b, _ in points) / n
    mean_t = sum(t for _, t in points) / n
    var = sum((b - mean_b) ** 2 for b, _ in points)
    slope = sum((b - mean_b) * (t - mean_t) for b, t in points) / var
    if slope <= 0:
        raise ValueError(f"probe token counts do not grow with length: {list(points)}")
    return Calibration(base=mean_t - slope * mean_b, per_byte=slope, source=f"probes:{n}")


class Corpus:
    """A seeded ASCII word stream; `slice(key, n)` is n bytes of it chosen by `key`."""

    def __init__(self, seed: int, min_bytes: int = 1 << 20) -> None:
        self._seed = seed
        self._text = ""
        self._grow(min_bytes)

    def _grow(self, size: int) -> None:
        rnd = random.Random(f"lavabench-corpus-{self._seed}-{len(self._text)}")
        parts = [self._text]
        have = len(self._text)
        while have < size:
            words = " ".join(rnd.choices(_WORDS, k=4096)) + " "
            parts.append(words)
            have += len(words)
        self._text = "".join(parts)

    def head(self, n: int) -> str:
        """The first n bytes (a prefix every prompt of a seed can share)."""
        if n > len(self._text):
            self._grow(2 * n)
        return self._text[:n]

    def slice(self, key: str, n: int) -> str:
        """n bytes starting at a position hashed from `key` (deterministic)."""
        if n <= 0:
            return ""
        if 4 * n > len(self._text):
            self._grow(4 * n)
        span = len(self._text) - n
        start = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest()) % span
        return self._text[start : start + n]


def marker(*parts: object) -> str:
    """A short unique tag: different parts give a different first token and first block."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).hexdigest()
    return f"[{digest}] "


def check_ascii(text: str, where: str) -> None:
    """Byte lengths are computed on characters: fixed texts must be ASCII."""
    if not text.isascii():
        raise ConfigError(f"{where}: must be ASCII text (its length is counted in bytes)")
