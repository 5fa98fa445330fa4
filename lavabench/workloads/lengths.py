"""Pure: token lengths, fixed or drawn from a seeded distribution (normal, lognormal, buckets).

A length is written in config as an integer (fixed) or a mapping:

    {dist: normal, mean: 1000, sd: 200, min: 1, max: 4000}
    {dist: lognormal, median: 1000, sigma: 0.5}           # mean = median * exp(sigma^2 / 2)
    {dist: buckets, buckets: [{tokens: 1000, weight: 3}, {tokens: 10000, weight: 1}]}

Draws are clipped to [min, max] (default 1 and unbounded) and rounded; the same seed gives the
same draws in any process (random.Random, not the global generator).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lavabench.errors import ConfigError

DISTRIBUTIONS = ("fixed", "normal", "lognormal", "buckets")


@dataclass(frozen=True)
class LengthSpec:
    """One token-length distribution (see the module docstring)."""

    dist: str = "fixed"
    value: int = 0  # fixed
    mean: float = 0.0  # normal
    sd: float = 0.0  # normal
    median: float = 0.0  # lognormal
    sigma: float = 0.0  # lognormal
    buckets: tuple[tuple[int, float], ...] = ()  # (tokens, weight)
    min: int = 1
    max: int | None = None

    @property
    def lower(self) -> int:
        """The smallest value a draw can take."""
        if self.dist == "fixed":
            return self.value
        if self.dist == "buckets":
            return min(t for t, _ in self.buckets)
        return self.min

    @property
    def upper(self) -> int | None:
        """The largest value a draw can take (None: unbounded)."""
        if self.dist == "fixed":
            return self.value
        if self.dist == "buckets":
            return max(t for t, _ in self.buckets)
        return self.max

    def draw(self, n: int, seed: int) -> list[int]:
        """`n` lengths from the seeded distribution, clipped to [min, max]."""
        if self.dist == "fixed":
            return [self.value] * n
        rnd = random.Random(seed)
        if self.dist == "normal":
            raw = [rnd.gauss(self.mean, self.sd) for _ in range(n)]
        elif self.dist == "lognormal":
            mu = math.log(self.median)
            raw = [rnd.lognormvariate(mu, self.sigma) for _ in range(n)]
        else:
            tokens = [t for t, _ in self.buckets]
            weights = [w for _, w in self.buckets]
            raw = [float(t) for t in rnd.choices(tokens, weights=weights, k=n)]
        hi = self.max if self.max is not None else math.inf
        return [round(min(max(x, self.min), hi)) for x in raw]


def length_spec(raw: Any, where: str) -> LengthSpec:
    """Config value -> LengthSpec; ConfigError naming `where` and the bad key."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 1:
            raise ConfigError(f"{where}: a token length must be >= 1, got {raw}")
        return LengthSpec(value=raw)
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}: expected an integer or a mapping with `dist` ({', '.join(DISTRIBUTIONS)})"
        )
    dist = raw.get("dist", "fixed")
    allowed = {
        "fixed": {"value"},
        "normal": {"mean", "sd"},
        "lognormal": {"median", "sigma"},
        "buckets": {"buckets"},
    }
    if dist not in allowed:
        raise ConfigError(f"{where}.dist: expected one of {', '.join(DISTRIBUTIONS)}, got {dist!r}")
    extra = set(raw) - allowed[dist] - {"dist", "min", "max"}
    if extra:
        raise ConfigError(f"{where}: {sorted(extra)} do not apply to dist={dist}")
    lo = _positive_int(raw.get("min", 1), f"{where}.min")
    hi = None if raw.get("max") is None else _positive_int(raw["max"], f"{where}.max")
    if hi is not None and hi < lo:
        raise ConfigError(f"{where}: max={hi} < min={lo}")
    if dist == "fixed":
        return LengthSpec(value=_positive_int(raw.get("value"), f"{where}.value"))
    if dist == "normal":
        mean = _number(raw.get("mean"), f"{where}.mean", positive=True)
        sd = _number(raw.get("sd"), f"{where}.sd", positive=False)
        return LengthSpec(dist=dist, mean=mean, sd=sd, min=lo, max=hi)
    if dist == "lognormal":
        median = _number(raw.get("median"), f"{where}.median", positive=True)
        sigma = _number(raw.get("sigma"), f"{where}.sigma", positive=False)
        return LengthSpec(dist=dist, median=median, sigma=sigma, min=lo, max=hi)
    return LengthSpec(dist=dist, buckets=_buckets(raw.get("buckets"), f"{where}.buckets"))


def _buckets(raw: Any, where: str) -> tuple[tuple[int, float], ...]:
    if not isinstance(raw, list | tuple) or not raw:
        raise ConfigError(f"{where}: expected a non-empty list of {{tokens, weight}}")
    out = []
    for i, b in enumerate(raw):
        if not isinstance(b, Mapping) or "tokens" not in b:
            raise ConfigError(f"{where}[{i}]: expected {{tokens: N, weight: W}}")
        tokens = _positive_int(b["tokens"], f"{where}[{i}].tokens")
        weight = _number(b.get("weight", 1.0), f"{where}[{i}].weight", positive=True)
        out.append((tokens, weight))
    return tuple(out)


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: expected an integer >= 1, got {value!r}")
    return value


def _number(value: Any, where: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ConfigError(f"{where}: must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)
