"""The simulator's prefix cache and context rule, as pure objects (the HTTP path: test_sim)."""

from __future__ import annotations

from lavabench.sim.completion import ModelEntry, fit_context
from lavabench.sim.prefix_cache import PrefixCache, PrefixCacheSettings, block_keys
from lavabench.sim.settings import ModelProfile
from lavabench.sim.validation import parse_chat


def keys(*texts: str) -> list[int]:
    return block_keys([("user", t.encode()) for t in texts], 16)


def test_hits_need_the_whole_prefix_and_a_finished_prefill() -> None:
    cache = PrefixCache(PrefixCacheSettings(ttl_s=10))
    a = keys("x" * 640)  # 16 header + 640 bytes = 164 tokens: 10 full blocks
    assert len(a) == 10
    assert cache.lookup(a, now=0.0) == 0
    cache.store(a, now=0.0, ready_at=1.0)
    assert cache.lookup(a, now=0.5) == 0  # prefill still running
    assert cache.lookup(a, now=1.5) == 10
    b = keys("y" + "x" * 639)  # differs in block 0: nothing after it can hit
    assert cache.lookup(b, now=1.5) == 0


def test_blocks_expire_and_the_cache_is_bounded() -> None:
    cache = PrefixCache(PrefixCacheSettings(ttl_s=10, max_blocks=12))
    a, b = keys("a" * 640), keys("b" * 640)
    cache.store(a, 0.0, 0.0)
    assert cache.lookup(a, 9.0) == 10 and cache.lookup(a, 10.5) == 0  # expired
    cache.store(a, 20.0, 20.0)
    cache.store(b, 21.0, 21.0)  # 20 blocks > 12: a's oldest go first
    assert cache.lookup(b, 22.0) == 10 and cache.lookup(a, 22.0) == 0


def test_context_length_lowers_max_tokens_or_errors_as_fireworks_does() -> None:
    entry = ModelEntry("m", "accounts/x/m", ModelProfile(), "none", context_length=1000)

    def req(text_bytes: int, max_tokens: int, behaviour: str | None = None):  # type: ignore[no-untyped-def]
        body = {"model": "accounts/x/m", "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": "z" * text_bytes}]}  # fmt: skip
        if behaviour:
            body["context_length_exceeded_behavior"] = behaviour
        import orjson

        return parse_chat(orjson.dumps(body))

    fits = req(2000, 400)  # 504 + 400 <= 1000
    assert fit_context(fits, entry) is None and fits.max_tokens == 400
    lowered = req(2000, 800)
    assert fit_context(lowered, entry) is None and lowered.max_tokens == 1000 - 504
    assert "maximum context length of 1000" in (fit_context(req(2000, 800, "error"), entry) or "")
    assert fit_context(req(4000, 1), entry) is not None  # the prompt alone does not fit
