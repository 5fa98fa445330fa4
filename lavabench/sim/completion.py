"""Plan one completion: which tokens, when, and what usage to report.

The plan is made in full before the first byte is written, so the numbers a client sees
(usage, `fireworks-*` headers, `perf_metrics`) and the numbers in the simulator's log are the
same values, and a test can join the two exactly.

Timing: TTFT = (ttft_s + uncached prompt tokens / prefill_tokens_per_s) * latency_scale *
exp(jitter * z0) (lognormal with median ttft_s, plus prefill when a rate is set); the
uncached tokens are those the model's prefix cache (prefix_cache.py) does not hold;
the gap before token i > 0 is (1 / tokens_per_s) * latency_scale * exp(jitter * zi). The z
draws come from a Random seeded by hashing (seed, model, request body), so the same request
gets the same timing in any worker. Times are rounded to microseconds so that the decimal
text in headers and JSON equals the logged float.

Chunking (`tokens_per_chunk` N > 1, streams only): tokens are packed N per chunk (reasoning and
answer never share one); a chunk goes out when its last token is ready, so `ttft_s` is the
first chunk's time and `itl_s` holds the gaps between chunks (tokens/s is unchanged).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lavabench.sim.answers import AnswerKey, is_correct
from lavabench.sim.determinism import rng
from lavabench.sim.prefix_cache import PrefixCache, block_keys
from lavabench.sim.replies import (
    THINK_CLOSE,
    THINK_OPEN,
    answer_tokens,
    filler_tokens,
    reasoning_tokens,
)
from lavabench.sim.settings import ModelProfile, SimSettings
from lavabench.sim.tools import NO_CALL_TEXT, ToolKey, ToolPiece, plan_calls, tool_pieces
from lavabench.sim.validation import ChatRequest


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A catalog model as the sim serves it: wire id, profile and effective reasoning style."""

    name: str
    wire_id: str
    profile: ModelProfile
    reasoning_style: str
    context_length: int | None = None  # catalog: prompt + max_tokens must fit (fit_context)


@dataclass(slots=True)
class Completion:
    """Everything that will be sent for one successful request."""

    completion_id: str
    model: ModelEntry
    created: int
    tokens: list[str]
    reasoning_count: int  # the first `reasoning_count` tokens are reasoning (tags included)
    finish_reason: str
    prompt_tokens: int
    cached_tokens: int | None  # None: the model does not report cached tokens
    ttft_s: float
    itl_s: list[float]
    stream: bool
    include_usage: bool
    perf_metrics: bool
    correct: bool | None
    item_id: str | None
    chunk_sizes: tuple[int, ...] = ()  # tokens per streamed chunk; () = one token each
    # tool calls (sim/tools.py): one piece per token, aligned with the *last* tokens
    tool_pieces: tuple[ToolPiece, ...] = ()
    tool_outcome: str | None = None

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens)

    @property
    def processing_s(self) -> float:
        """Planned time from request receipt to the last token."""
        return round(self.ttft_s + math.fsum(self.itl_s), 6)

    @property
    def reasoning_in_field(self) -> bool:
        return self.model.reasoning_style == "field"


def model_table(settings: SimSettings, catalog: Mapping[str, Mapping[str, Any]]) -> dict:
    """Wire id -> ModelEntry for every catalog model; ValueError on a malformed catalog."""
    table: dict[str, ModelEntry] = {}
    for name, spec in catalog.items():
        wire_id = spec.get("id") if isinstance(spec, Mapping) else None
        if not isinstance(wire_id, str) or not wire_id:
            raise ValueError(f"catalog.{name}.id: expected the model's wire id string")
        if wire_id in table:
            raise ValueError(f"catalog.{name}.id: {wire_id} is used by two models")
        reasoning = bool(spec.get("reasoning", False))
        profile = settings.profile_for(name, reasoning)
        style = profile.reasoning_style if reasoning else "none"
        ctx = spec.get("context_length")
        context = ctx if isinstance(ctx, int) and not isinstance(ctx, bool) and ctx > 0 else None
        table[wire_id] = ModelEntry(str(name), wire_id, profile, style, context)
    return table


class Planner:
    """Turns a valid request for a known model into a Completion."""

    def __init__(
        self, settings: SimSettings, key: AnswerKey | None, tools: ToolKey | None = None
    ) -> None:
        self._settings = settings
        self._seed = settings.seed
        self._key = key
        self._tools = tools
        self._caches: dict[str, PrefixCache] = {}

    def plan(
        self,
        req: ChatRequest,
        entry: ModelEntry,
        body: bytes,
        completion_id: str,
        now: int,
        received_at: float = 0.0,
    ) -> Completion:
        """The full plan; `body` feeds the timing hash, `now` is the `created` stamp,
        `received_at` (monotonic s) the prefix cache's clock."""
        seed, profile = self._seed, entry.profile
        item = None
        if self._key is not None and not req.tools:
            item = self._key.find(req.last_user_text)
        correct: bool | None = None
        pieces: list[ToolPiece] = []
        outcome, item_id = None, None
        if req.tools:
            pieces, correct, outcome, item_id = self._tool_answer(req, entry)
            content = [] if pieces else NO_CALL_TEXT.split(" ")
            content = [t if i == 0 else " " + t for i, t in enumerate(content)]
        elif item is not None:
            skill = profile.skill_for(item.dataset)
            correct = is_correct(seed, entry.name, item, skill, req.request_seed)
            content = list(answer_tokens(seed, entry.name, item, correct))
        else:
            # ignore_eos: the model writes until max_tokens (a benchmark's output length)
            count = req.max_tokens if req.ignore_eos else profile.default_output_tokens
            content = filler_tokens(seed, req.last_user_text, count)
        tokens, reasoning_count = _with_reasoning(seed, entry, content)
        tokens += [p.arguments if p.name is None else p.name for p in pieces]
        finish_reason = "tool_calls" if pieces else "stop"
        if len(tokens) > req.max_tokens:
            keep = max(0, len(pieces) - (len(tokens) - req.max_tokens))
            pieces = pieces[:keep]
            tokens = tokens[: req.max_tokens]
            finish_reason = "length"
        cache, keys, hit_tokens = self._cache_lookup(req, entry, received_at)
        ttft_s, itl_s = self._timing(entry, body, len(tokens), req.prompt_tokens - hit_tokens)
        cache.store(keys, received_at, received_at + ttft_s)  # usable once its prefill is done
        reasoning_count = min(reasoning_count, len(tokens))
        per_chunk = self._settings.tokens_per_chunk or profile.tokens_per_chunk
        sizes: tuple[int, ...] = ()
        if per_chunk > 1 and req.stream and tokens and not pieces:
            split = reasoning_count if entry.reasoning_style == "field" else 0
            sizes = chunk_sizes(split, len(tokens), per_chunk)
            ttft_s, itl_s = chunk_timing(ttft_s, itl_s, sizes)
        cached = hit_tokens if profile.reports_cached_tokens else None
        return Completion(
            completion_id=completion_id,
            model=entry,
            created=now,
            tokens=tokens,
            reasoning_count=reasoning_count,
            finish_reason=finish_reason,
            prompt_tokens=req.prompt_tokens,
            cached_tokens=cached,
            ttft_s=ttft_s,
            itl_s=itl_s,
            stream=req.stream,
            include_usage=req.include_usage,
            perf_metrics=req.perf_metrics,
            correct=correct,
            item_id=item.id if item is not None else item_id,
            chunk_sizes=sizes,
            tool_pieces=tuple(pieces),
            tool_outcome=outcome,
        )

    def _cache_lookup(
        self, req: ChatRequest, entry: ModelEntry, now: float
    ) -> tuple[PrefixCache, list[int], int]:
        """(the model's cache, the prompt's block keys, cached tokens): whole blocks, and
        never the last prompt token (an engine always computes it)."""
        settings = self._settings.prefix_cache
        cache = self._caches.get(entry.name)
        if cache is None:
            cache = self._caches[entry.name] = PrefixCache(settings)
        block = settings.block_tokens
        keys = block_keys(req.segments, block)
        hits = cache.lookup(keys, now) * block
        return cache, keys, min(hits, max(req.prompt_tokens - 1, 0) // block * block)

    def _tool_answer(
        self, req: ChatRequest, entry: ModelEntry
    ) -> tuple[list[ToolPiece], bool | None, str, str | None]:
        """(pieces, correct, outcome, item id) of a request that offers tools."""
        names = [t["function"]["name"] for t in req.tools]
        item = self._tools.find(req.last_user_text, names) if self._tools is not None else None
        profile = entry.profile
        skill = profile.skill_for(item.label) if item is not None else profile.skill
        draw = (entry.name, item.id if item is not None else req.last_user_text, req.request_seed)
        plan = plan_calls(
            item, req.tools, req.tool_choice, skill=skill,
            malformed_share=profile.tool_malformed_share, draw=draw, seed=self._seed,
        )  # fmt: skip
        pieces = tool_pieces(self._seed, draw, plan.calls)
        correct = None if item is None else plan.outcome == "right"
        return pieces, correct, plan.outcome, item.id if item is not None else None

    def _timing(
        self, entry: ModelEntry, body: bytes, n_tokens: int, uncached: int
    ) -> tuple[float, list[float]]:
        gaps = max(n_tokens - 1, 0)
        if self._settings.zero_delays:
            return 0.0, [0.0] * gaps
        profile = entry.profile
        scale = self._settings.latency_scale * profile.latency_factor
        rate = profile.prefill_tokens_per_s or self._settings.prefill_tokens_per_s
        prefill_s = uncached / rate if rate else 0.0
        ttft = (profile.ttft_s + prefill_s) * scale
        itl = scale / profile.tokens_per_s
        sigma = profile.jitter
        if sigma == 0:
            return round(ttft, 6), [round(itl, 6)] * gaps
        draw = rng(self._seed, "timing", entry.name, body).gauss
        exp = math.exp
        ttft_j = round(ttft * exp(sigma * draw(0.0, 1.0)), 6)
        return ttft_j, [round(itl * exp(sigma * draw(0.0, 1.0)), 6) for _ in range(gaps)]


def fit_context(req: ChatRequest, entry: ModelEntry) -> str | None:
    """Fireworks' context rule (api-facts §Fireworks): a prompt that leaves no room is an
    error; prompt + max_tokens past the context lowers max_tokens silently, unless the body
    says `context_length_exceeded_behavior: "error"`. Returns the 400 message, or None."""
    ctx = entry.context_length
    if ctx is None or req.prompt_tokens + req.max_tokens <= ctx:
        return None
    if req.prompt_tokens >= ctx or req.context_error:
        return (
            f"The prompt is too long: {req.prompt_tokens} prompt tokens + max_tokens "
            f"{req.max_tokens} exceed the model's maximum context length of {ctx} tokens"
        )
    req.max_tokens = ctx - req.prompt_tokens
    return None


def chunk_sizes(split: int, n_tokens: int, per_chunk: int) -> tuple[int, ...]:
    """Tokens per chunk: `per_chunk` at a time, reasoning [0, split) and answer apart."""
    sizes: list[int] = []
    for length in (split, n_tokens - split):
        full, rest = divmod(length, per_chunk)
        sizes += [per_chunk] * full + ([rest] if rest else [])
    return tuple(sizes)


def chunk_timing(
    ttft_s: float, itl_s: list[float], sizes: tuple[int, ...]
) -> tuple[float, list[float]]:
    """Per-token plan -> per-chunk plan: each chunk is due when its last token is."""
    due, dues, token = ttft_s, [], 0
    for size in sizes:
        for gap in itl_s[token : token + size - 1]:
            due += gap
        dues.append(due)
        token += size
        if token - 1 < len(itl_s):
            due += itl_s[token - 1]
    return round(dues[0], 6), [round(b - a, 6) for a, b in itertools.pairwise(dues)]


def _with_reasoning(seed: int, entry: ModelEntry, content: list[str]) -> tuple[list[str], int]:
    """Prefix the reply with the model's reasoning tokens; return (tokens, reasoning count)."""
    style = entry.reasoning_style
    if style == "none":
        return content, 0
    thinking = reasoning_tokens(seed, entry.name, entry.profile.reasoning_tokens)
    if style == "field":
        return thinking + content, len(thinking)
    if content:
        content = ["\n\n" + content[0].lstrip(), *content[1:]]
    return [THINK_OPEN, *thinking, THINK_CLOSE, *content], len(thinking) + 2
