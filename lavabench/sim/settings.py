"""The simulator's settings: a frozen schema checked once, when the simulator starts.

The lead's CLI composes these with Hydra (`conf/sim/default.yaml`) and hands over a plain
mapping; `from_mapping` turns it into `SimSettings` and names the first bad key, so a typo in
a YAML file fails at start rather than as odd behaviour mid-run.

A catalog model without a profile in `models` gets `default_profile(reasoning)`:
ttft 0.3 s, 80 tokens/s, jitter 0.15, skill 0.6, usage on the finish chunk, reasoning in
`reasoning_content` (16 tokens) when the catalog marks the model as reasoning, 32 output
tokens for prompts outside the answer keys, cached tokens reported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from lavabench.sim.billing import BillingSettings, billing_settings_from_mapping
from lavabench.sim.faults import FaultSettings, fault_settings_from_mapping
from lavabench.sim.prefix_cache import PrefixCacheSettings

USAGE_STYLES = (
    "finish_chunk",
    "include_usage_only",
    "none",
)  # none: llama.cpp, a stripping gateway
REASONING_STYLES = ("none", "field", "think_tags")


@dataclass(frozen=True)
class ModelProfile:
    """How one simulated model behaves: speed, accuracy and wire quirks."""

    ttft_s: float = 0.3
    tokens_per_s: float = 80.0
    jitter: float = 0.15
    skill: float = 0.6
    usage_style: str = "finish_chunk"
    reasoning_style: str = "none"
    reasoning_tokens: int = 16
    default_output_tokens: int = 32
    reports_cached_tokens: bool = True
    tokens_per_chunk: int = 1  # tokens packed into each streamed chunk (usage still counts tokens)
    # regression injection (nightly tests): multiplies this model's TTFT and inter-token gaps;
    # added to its skill (every dataset), clamped to [0, 1]
    latency_factor: float = 1.0
    skill_shift: float = 0.0
    # prefill: TTFT grows by uncached prompt tokens / this rate (None: sim.prefill_tokens_per_s)
    prefill_tokens_per_s: float | None = None
    # per-dataset skill overrides, keyed by the answer key's dataset label (sim/answers.py
    # dataset_label: "gsm8k", "mmlu", "demo-arith", ...); `skill` applies elsewhere
    dataset_skill: Mapping[str, float] = field(default_factory=dict, hash=False)
    # tool calls (sim/tools.py): the share of wrong answers whose arguments are malformed JSON
    tool_malformed_share: float = 0.2

    def skill_for(self, dataset: str) -> float:
        """The skill this model has on `dataset` (its override, else `skill`)."""
        base = self.dataset_skill.get(dataset, self.skill)
        return min(1.0, max(0.0, base + self.skill_shift))


@dataclass(frozen=True)
class SimSettings:
    """Everything the simulator needs besides the catalog; see the module docstring."""

    seed: int = 1234
    workers: int = 1
    zero_delays: bool = False
    latency_scale: float = 1.0
    answer_keys: tuple[str, ...] = ()
    require_secret_key: str | None = None
    log_path: str | None = None
    # forward path only: added before the response starts, never in the reported server timings
    gateway_delay_s: float = 0.0
    tokens_per_chunk: int | None = None  # set: every model packs this many tokens per chunk
    capacity: int | None = None  # set: streams per model at once (per worker); more wait (FIFO)
    # TTFT += uncached prompt tokens / rate, for models without their own; None: no prefill term
    prefill_tokens_per_s: float | None = None
    prefix_cache: PrefixCacheSettings = field(default_factory=PrefixCacheSettings)
    rejected_fields: tuple[str, ...] = ()  # 400 on these body fields (a plain OpenAI server)
    models: dict[str, ModelProfile] = field(default_factory=dict)
    faults: FaultSettings = field(default_factory=FaultSettings)
    billing: BillingSettings = field(default_factory=BillingSettings)

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> SimSettings:
        """Same as the module-level `from_mapping` (both spellings are in use)."""
        return from_mapping(d)

    def profile_for(self, name: str, reasoning: bool) -> ModelProfile:
        """The configured profile of catalog model `name`, else the default profile."""
        profile = self.models.get(name)
        return profile if profile is not None else default_profile(reasoning)


def default_profile(reasoning: bool) -> ModelProfile:
    """The profile of a catalog model that has none in the settings (module docstring)."""
    return ModelProfile(reasoning_style="field" if reasoning else "none")


def from_mapping(d: Mapping[str, Any]) -> SimSettings:
    """Validate a plain mapping (e.g. Hydra's composed `sim` group) into SimSettings.

    Raises ValueError naming the offending key, e.g. `sim.models.glm-5.skill`.
    """
    if not isinstance(d, Mapping):
        raise ValueError(f"sim settings must be a mapping, got {type(d).__name__}")
    known = {f.name for f in fields(SimSettings)}
    for key in d:
        if key not in known:
            raise ValueError(f"sim.{key}: unknown setting (known: {', '.join(sorted(known))})")
    base = SimSettings()
    values: dict[str, Any] = {}
    if "seed" in d:
        values["seed"] = _int(d["seed"], "sim.seed")
    if "workers" in d:
        values["workers"] = _int(d["workers"], "sim.workers", minimum=1)
    if "zero_delays" in d:
        values["zero_delays"] = _bool(d["zero_delays"], "sim.zero_delays")
    if "latency_scale" in d:
        values["latency_scale"] = _float(d["latency_scale"], "sim.latency_scale", minimum=0.0)
    if "answer_keys" in d:
        values["answer_keys"] = _str_list(d["answer_keys"], "sim.answer_keys")
    if "require_secret_key" in d:
        values["require_secret_key"] = _opt_str(d["require_secret_key"], "sim.require_secret_key")
    if "log_path" in d:
        values["log_path"] = _opt_str(d["log_path"], "sim.log_path")
    if "gateway_delay_s" in d:
        values["gateway_delay_s"] = _float(d["gateway_delay_s"], "sim.gateway_delay_s", 0.0)
    if d.get("tokens_per_chunk") is not None:
        values["tokens_per_chunk"] = _int(d["tokens_per_chunk"], "sim.tokens_per_chunk", 1)
    if d.get("capacity") is not None:
        values["capacity"] = _int(d["capacity"], "sim.capacity", minimum=1)
    if d.get("prefill_tokens_per_s") is not None:
        values["prefill_tokens_per_s"] = _float(
            d["prefill_tokens_per_s"], "sim.prefill_tokens_per_s", positive=True
        )
    if d.get("prefix_cache") is not None:
        values["prefix_cache"] = _prefix_cache(d["prefix_cache"])
    if "rejected_fields" in d:
        values["rejected_fields"] = _str_list(d["rejected_fields"], "sim.rejected_fields")
    if "models" in d:
        values["models"] = _profiles(d["models"])
    if "faults" in d:
        values["faults"] = fault_settings_from_mapping(d["faults"])
    if "billing" in d:
        values["billing"] = billing_settings_from_mapping(d["billing"])
    return replace(base, **values)


def _prefix_cache(raw: Any) -> PrefixCacheSettings:
    if not isinstance(raw, Mapping):
        raise ValueError("sim.prefix_cache: expected {block_tokens, max_blocks, ttl_s}")
    known = {f.name for f in fields(PrefixCacheSettings)}
    for key in raw:
        if key not in known:
            raise ValueError(f"sim.prefix_cache.{key}: unknown setting (known: {sorted(known)})")
    v: dict[str, Any] = {}
    if "block_tokens" in raw:
        v["block_tokens"] = _int(raw["block_tokens"], "sim.prefix_cache.block_tokens", 2)
        if v["block_tokens"] % 2 or v["block_tokens"] > 128:
            raise ValueError("sim.prefix_cache.block_tokens: an even number of tokens <= 128")
    if "max_blocks" in raw:
        v["max_blocks"] = _int(raw["max_blocks"], "sim.prefix_cache.max_blocks", 0)
    if "ttl_s" in raw:
        v["ttl_s"] = _float(raw["ttl_s"], "sim.prefix_cache.ttl_s", positive=True)
    return PrefixCacheSettings(**v)


def _profiles(raw: Any) -> dict[str, ModelProfile]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError("sim.models: must be a mapping of catalog name -> profile")
    return {str(name): _profile(spec, f"sim.models.{name}") for name, spec in raw.items()}


def _profile(raw: Any, where: str) -> ModelProfile:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: must be a mapping of profile fields")
    known = {f.name for f in fields(ModelProfile)}
    for key in raw:
        if key not in known:
            raise ValueError(f"{where}.{key}: unknown profile field (known: {sorted(known)})")
    v: dict[str, Any] = {}
    if "ttft_s" in raw:
        v["ttft_s"] = _float(raw["ttft_s"], f"{where}.ttft_s", minimum=0.0)
    if "tokens_per_s" in raw:
        v["tokens_per_s"] = _float(raw["tokens_per_s"], f"{where}.tokens_per_s", positive=True)
    if "jitter" in raw:
        v["jitter"] = _float(raw["jitter"], f"{where}.jitter", minimum=0.0)
    if "skill" in raw:
        v["skill"] = _float(raw["skill"], f"{where}.skill", minimum=0.0, maximum=1.0)
    if "usage_style" in raw:
        v["usage_style"] = _choice(raw["usage_style"], f"{where}.usage_style", USAGE_STYLES)
    if "reasoning_style" in raw:
        v["reasoning_style"] = _choice(
            raw["reasoning_style"], f"{where}.reasoning_style", REASONING_STYLES
        )
    if "reasoning_tokens" in raw:
        v["reasoning_tokens"] = _int(raw["reasoning_tokens"], f"{where}.reasoning_tokens", 0)
    if "default_output_tokens" in raw:
        v["default_output_tokens"] = _int(
            raw["default_output_tokens"], f"{where}.default_output_tokens", 1
        )
    if "reports_cached_tokens" in raw:
        v["reports_cached_tokens"] = _bool(
            raw["reports_cached_tokens"], f"{where}.reports_cached_tokens"
        )
    if "tokens_per_chunk" in raw:
        v["tokens_per_chunk"] = _int(raw["tokens_per_chunk"], f"{where}.tokens_per_chunk", 1)
    if "latency_factor" in raw:
        v["latency_factor"] = _float(
            raw["latency_factor"], f"{where}.latency_factor", positive=True
        )
    if raw.get("prefill_tokens_per_s") is not None:
        v["prefill_tokens_per_s"] = _float(
            raw["prefill_tokens_per_s"], f"{where}.prefill_tokens_per_s", positive=True
        )
    if "skill_shift" in raw:
        v["skill_shift"] = _float(raw["skill_shift"], f"{where}.skill_shift", -1.0, 1.0)
    if "tool_malformed_share" in raw:
        v["tool_malformed_share"] = _float(
            raw["tool_malformed_share"], f"{where}.tool_malformed_share", 0.0, 1.0
        )
    if raw.get("dataset_skill") is not None:
        per = raw["dataset_skill"]
        if not isinstance(per, Mapping):
            raise ValueError(f"{where}.dataset_skill: must be a mapping of dataset -> skill")
        v["dataset_skill"] = {
            str(name): _float(val, f"{where}.dataset_skill.{name}", minimum=0.0, maximum=1.0)
            for name, val in per.items()
        }
    return ModelProfile(**v)


def _int(value: Any, where: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{where}: must be >= {minimum}, got {value}")
    return value


def _float(
    value: Any,
    where: str,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{where}: must be finite, got {value!r}")
    if positive and number <= 0:
        raise ValueError(f"{where}: must be > 0, got {value!r}")
    if minimum is not None and number < minimum:
        raise ValueError(f"{where}: must be >= {minimum}, got {value!r}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{where}: must be <= {maximum}, got {value!r}")
    return number


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: expected a non-empty string or null, got {value!r}")
    return value


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValueError(f"{where}: expected a list of paths, got {value!r}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise ValueError(f"{where}[{i}]: expected a non-empty path string, got {item!r}")
        out.append(item)
    return tuple(out)


def _choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{where}: expected one of {', '.join(allowed)}, got {value!r}")
    return str(value)
