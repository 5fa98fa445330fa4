"""Pure: the `workload=` config group (conf/workload/*.yaml) checked into a WorkloadSpec.

Keys (every kind): `name`, `kind` (synthetic | conversation | trace), `seed`,
`affinity` (none | prompt_cache_key | header: how requests of one session ask Fireworks for
the same replica, api-facts-detail §2.1/§2.9; recorded per row).
synthetic: `items`, `input_tokens`, `output_tokens` (lengths.py), `cache_mode`
(fresh | shared_prefix | repeat), `prefix_tokens` (shared_prefix), `fresh_nonce` (run | seed),
`ignore_eos`, `system_prompt`.
conversation: `sessions`, `turns`, `input_tokens` (the first user message), `user_tokens`
(each later user message), `output_tokens`, `think_time_s`, `ignore_eos`, `system_prompt`.
trace: `path` (JSONL, docs in README "Workloads"), `speed`, `limit`, `max_tokens` (for records
without one).
A bad key fails with the key's name before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lavabench.errors import ConfigError
from lavabench.workloads.lengths import LengthSpec, length_spec
from lavabench.workloads.text import check_ascii

KINDS = ("synthetic", "conversation", "trace")
CACHE_MODES = ("fresh", "shared_prefix", "repeat")
AFFINITIES = ("none", "prompt_cache_key", "header")
NONCES = ("run", "seed")

_KEYS = {
    "synthetic": {
        "items", "input_tokens", "output_tokens", "cache_mode", "prefix_tokens",
        "fresh_nonce", "ignore_eos", "system_prompt",
    },
    "conversation": {
        "sessions", "turns", "input_tokens", "user_tokens", "output_tokens", "think_time_s",
        "ignore_eos", "system_prompt", "fresh_nonce",
    },
    "trace": {"path", "speed", "limit", "max_tokens"},
}  # fmt: skip
_COMMON = {"name", "kind", "seed", "affinity", "description"}


@dataclass(frozen=True)
class WorkloadSpec:
    """A checked workload config; fields that do not apply to `kind` keep their defaults."""

    name: str
    kind: str
    seed: int = 0
    affinity: str = "none"
    items: int = 100
    input_tokens: LengthSpec = field(default_factory=lambda: LengthSpec(value=1000))
    output_tokens: LengthSpec = field(default_factory=lambda: LengthSpec(value=128))
    cache_mode: str = "fresh"
    prefix_tokens: int = 0
    fresh_nonce: str = "run"
    ignore_eos: bool = True
    system_prompt: str | None = None
    sessions: int = 4
    turns: int = 4
    user_tokens: LengthSpec = field(default_factory=lambda: LengthSpec(value=64))
    think_time_s: float = 0.0
    path: str | None = None
    speed: float = 1.0
    limit: int | None = None
    max_tokens: int | None = None

    @property
    def output_upper(self) -> int | None:
        """The most output tokens one request asks for (None: not known before the run)."""
        if self.kind == "trace":
            return None
        return self.output_tokens.upper


def workload_spec(raw: Mapping[str, Any]) -> WorkloadSpec:
    """`workload.*` -> WorkloadSpec; ConfigError names the key and what to do."""
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"workload.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    unknown = set(raw) - _COMMON - _KEYS[kind]
    if unknown:
        raise ConfigError(
            f"workload: {sorted(unknown)} do not apply to kind={kind} "
            f"(keys: {', '.join(sorted(_COMMON | _KEYS[kind]))})"
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigError("workload.name: expected a non-empty name without '/'")
    v: dict[str, Any] = {"name": name, "kind": kind}
    v["seed"] = _int(raw.get("seed", 0), "workload.seed", 0)
    v["affinity"] = _choice(raw.get("affinity", "none"), "workload.affinity", AFFINITIES)
    if kind == "trace":
        return _trace(raw, v)
    for key in ("input_tokens", "output_tokens", "user_tokens"):
        if raw.get(key) is not None:
            v[key] = length_spec(raw[key], f"workload.{key}")
    if "ignore_eos" in raw:
        if not isinstance(raw["ignore_eos"], bool):
            raise ConfigError("workload.ignore_eos: expected true or false")
        v["ignore_eos"] = raw["ignore_eos"]
    if raw.get("system_prompt") is not None:
        check_ascii(str(raw["system_prompt"]), "workload.system_prompt")
        v["system_prompt"] = str(raw["system_prompt"])
    v["fresh_nonce"] = _choice(raw.get("fresh_nonce", "run"), "workload.fresh_nonce", NONCES)
    if kind == "synthetic":
        v["items"] = _int(raw.get("items", 100), "workload.items", 1)
        v["cache_mode"] = _choice(
            raw.get("cache_mode", "fresh"), "workload.cache_mode", CACHE_MODES
        )
        v["prefix_tokens"] = _int(raw.get("prefix_tokens", 0), "workload.prefix_tokens", 0)
        spec = WorkloadSpec(**v)
        _check_prefix(spec)
        return spec
    v["sessions"] = _int(raw.get("sessions", 4), "workload.sessions", 1)
    v["turns"] = _int(raw.get("turns", 4), "workload.turns", 1)
    think = raw.get("think_time_s", 0.0)
    if isinstance(think, bool) or not isinstance(think, int | float) or think < 0:
        raise ConfigError(f"workload.think_time_s: expected a number >= 0, got {think!r}")
    v["think_time_s"] = float(think)
    return WorkloadSpec(**v)


def _trace(raw: Mapping[str, Any], v: dict[str, Any]) -> WorkloadSpec:
    path = raw.get("path")
    if not isinstance(path, str) or not path:
        raise ConfigError("workload.path: the trace JSONL file is required (workload.path=...)")
    v["path"] = path
    v["ignore_eos"] = False  # replayed as recorded
    speed = raw.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or speed <= 0:
        raise ConfigError(f"workload.speed: expected a number > 0, got {speed!r}")
    v["speed"] = float(speed)
    if raw.get("limit") is not None:
        v["limit"] = _int(raw["limit"], "workload.limit", 1)
    if raw.get("max_tokens") is not None:
        v["max_tokens"] = _int(raw["max_tokens"], "workload.max_tokens", 1)
    return WorkloadSpec(**v)


def _check_prefix(spec: WorkloadSpec) -> None:
    if spec.cache_mode != "shared_prefix":
        if spec.prefix_tokens:
            raise ConfigError("workload.prefix_tokens applies to cache_mode=shared_prefix only")
        return
    if spec.prefix_tokens < 1:
        raise ConfigError("workload.prefix_tokens: cache_mode=shared_prefix needs a prefix >= 1")
    smallest = spec.input_tokens.lower
    if spec.prefix_tokens >= smallest:
        raise ConfigError(
            f"workload.prefix_tokens={spec.prefix_tokens} must be below the smallest input "
            f"length ({smallest}); raise input_tokens (or its min) or lower the prefix"
        )


def _int(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{where}: expected one of {', '.join(allowed)}, got {value!r}")
    return str(value)
