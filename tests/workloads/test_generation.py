"""Pure generation: lengths drawn as asked, the same seed gives the same prompts, cache modes."""

from __future__ import annotations

import statistics

import pytest

from lavabench.errors import ConfigError
from lavabench.workloads.lengths import length_spec
from lavabench.workloads.spec import workload_spec
from lavabench.workloads.synthetic import SyntheticTexts, synthetic_prompts
from lavabench.workloads.text import Calibration, fit_calibration

SIM_LINE = Calibration(base=4.0, per_byte=0.25, source="test")


def sim_tokens(messages: list[dict[str, str]]) -> int:
    """The simulator's count (sim/validation.py): 4 per message + ceil(bytes / 4)."""
    return sum(4 + (len(m["content"].encode()) + 3) // 4 for m in messages)


def test_normal_and_lognormal_draws_have_the_asked_mean_and_spread() -> None:
    normal = length_spec({"dist": "normal", "mean": 2000, "sd": 300}, "x").draw(4000, seed=7)
    assert abs(statistics.fmean(normal) - 2000) < 20
    assert abs(statistics.stdev(normal) - 300) < 15
    logn = length_spec({"dist": "lognormal", "median": 1000, "sigma": 0.5}, "x").draw(4000, 7)
    assert abs(statistics.median(logn) - 1000) < 40
    assert abs(statistics.fmean(logn) - 1000 * 2.718281828 ** (0.5**2 / 2)) < 40


def test_bucket_mixture_and_clipping() -> None:
    spec = length_spec(
        {"dist": "buckets", "buckets": [{"tokens": 100, "weight": 3}, {"tokens": 10000}]}, "x"
    )
    draws = spec.draw(4000, seed=1)
    assert set(draws) == {100, 10000}
    assert abs(draws.count(100) / len(draws) - 0.75) < 0.03
    clipped = length_spec({"dist": "normal", "mean": 50, "sd": 100, "min": 10, "max": 80}, "x")
    assert min(clipped.draw(500, 2)) == 10 and max(clipped.draw(500, 2)) == 80


def test_bad_lengths_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"workload\.input_tokens\.sd"):
        length_spec({"dist": "normal", "mean": 5, "sd": -1}, "workload.input_tokens")
    with pytest.raises(ConfigError, match=r"\['sigma'\] do not apply to dist=normal"):
        length_spec({"dist": "normal", "mean": 5, "sd": 1, "sigma": 2}, "w")
    with pytest.raises(ConfigError, match="prefix_tokens=900 must be below"):
        workload_spec({"name": "w", "kind": "synthetic", "cache_mode": "shared_prefix",
                       "prefix_tokens": 900, "input_tokens": 500})  # fmt: skip


def _spec(**kw: object):  # type: ignore[no-untyped-def]
    return workload_spec({"name": "w", "kind": "synthetic", "items": 20, **kw})


def test_same_seed_same_prompts_and_another_seed_others() -> None:
    def texts(seed: int) -> list[str]:
        spec = _spec(seed=seed, input_tokens={"dist": "normal", "mean": 800, "sd": 100},
                     fresh_nonce="seed")  # fmt: skip
        gen = SyntheticTexts(spec, nonce="ignored")
        return [gen.messages(p, 0, SIM_LINE)[0]["content"] for p in synthetic_prompts(spec)]

    assert texts(3) == texts(3)
    assert set(texts(3)).isdisjoint(texts(4))


def test_prompts_land_on_target_with_the_simulators_line() -> None:
    spec = _spec(input_tokens={"dist": "lognormal", "median": 3000, "sigma": 0.6, "max": 40000},
                 system_prompt="You are terse.")  # fmt: skip
    gen = SyntheticTexts(spec, nonce="r1")
    calib = fit_calibration([(n, sim_tokens(gen.probe(n))) for n in (2000, 20000)])
    for prompt in synthetic_prompts(spec):
        got = sim_tokens(gen.messages(prompt, 0, calib))
        assert abs(got - prompt.target_prompt_tokens) <= 0.02 * prompt.target_prompt_tokens


def test_cache_modes_shape_the_start_of_the_prompt() -> None:
    fresh = _spec(input_tokens=2000)
    gen = SyntheticTexts(fresh, nonce="run-a")
    prompts = synthetic_prompts(fresh)
    a, b = (gen.messages(p, 0, SIM_LINE)[0]["content"] for p in prompts[:2])
    assert a[0] == b[0] == "[" and a[:18] != b[:18]  # unique from the very first characters
    again = gen.messages(prompts[0], 1, SIM_LINE)[0]["content"]
    assert again[:18] != a[:18]  # a repeat is fresh too
    other_run = SyntheticTexts(fresh, nonce="run-b").messages(prompts[0], 0, SIM_LINE)
    assert other_run[0]["content"][:18] != a[:18]  # fresh_nonce=run: no cache across runs

    shared = _spec(input_tokens=2000, cache_mode="shared_prefix", prefix_tokens=1500)
    gen = SyntheticTexts(shared, nonce="r")
    texts = [gen.messages(p, 0, SIM_LINE)[0]["content"] for p in synthetic_prompts(shared)]
    prefix = SIM_LINE.bytes_for(1500)
    assert len({t[:prefix] for t in texts}) == 1 and len({t[: prefix + 18] for t in texts}) == 20

    repeat = _spec(input_tokens=500, cache_mode="repeat")
    gen = SyntheticTexts(repeat, nonce="r")
    p0 = synthetic_prompts(repeat)[0]
    assert gen.messages(p0, 0, SIM_LINE) == gen.messages(p0, 3, SIM_LINE)
