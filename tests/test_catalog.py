"""catalog.py: the 20 models from config, exact cost, selection."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from lavabench.catalog import Price, catalog_from_mapping, cost_pico_usd, pico_to_usd
from lavabench.errors import ConfigError

CONF = Path(__file__).resolve().parent.parent / "conf" / "catalog"

# api-facts.md, "The catalog (USD per 1M tokens, input / output)".
API_FACTS_PRICES = {
    "deepseek-v4-pro": ("1.74", "3.48"), "glm-4p7": ("0.60", "2.20"),
    "glm-5p1": ("1.40", "4.40"), "deepseek-v3p1": ("0.56", "1.68"),
    "mixtral-8x22b-instruct": ("1.20", "1.20"), "deepseek-v3p2": ("0.56", "1.68"),
    "glm-5": ("1.00", "3.20"), "qwen3p6-plus": ("0.50", "3.00"),
    "kimi-k2p5-turbo": ("0.99", "4.94"), "minimax-m2p5": ("0.30", "1.20"),
    "kimi-k2p6": ("0.95", "4.00"), "minimax-m2p7": ("0.30", "1.20"),
    "llama-v3p3-70b-instruct": ("0.90", "0.90"), "minimax-m3": ("0.30", "1.20"),
    "kimi-k2-instruct": ("0.60", "2.50"), "qwen3-vl-30b-a3b-thinking": ("0.15", "0.60"),
    "kimi-k2-thinking": ("0.60", "2.50"), "gpt-oss-120b": ("0.15", "0.60"),
    "kimi-k2p5": ("0.60", "3.00"), "gpt-oss-20b": ("0.07", "0.30"),
}  # fmt: skip


def _lava_catalog():
    return catalog_from_mapping(yaml.safe_load((CONF / "lava.yaml").read_text()))


def test_catalog_has_the_20_models_with_api_facts_prices() -> None:
    catalog = _lava_catalog()
    assert set(catalog.models) == set(API_FACTS_PRICES)
    for name, (inp, out) in API_FACTS_PRICES.items():
        model = catalog.models[name]
        assert (model.price.input, model.price.output) == (Decimal(inp), Decimal(out)), name
        assert model.price.cached_input is None
    assert catalog.prices_read_on == "2026-11-24"
    assert catalog.models["kimi-k2p5-turbo"].id == "accounts/fireworks/routers/kimi-k2p5-turbo"
    assert catalog.models["gpt-oss-20b"].id == "accounts/fireworks/models/gpt-oss-20b"
    assert not catalog.models["llama-v3p3-70b-instruct"].reasoning
    assert catalog.models["kimi-k2p6"].vision


def test_cost_worked_examples() -> None:
    price = Price(input=Decimal("0.15"), output=Decimal("0.60"), cached_input=Decimal("0.015"))
    # 1000 prompt tokens of which 400 cached, 200 completion:
    # 600 x 0.15 + 400 x 0.015 + 200 x 0.60 = 90 + 6 + 120 = 216 USD per 1e6 -> 0.000216 USD
    pico = cost_pico_usd(price, prompt_tokens=1000, completion_tokens=200, cached_tokens=400)
    assert pico_to_usd(pico) == Decimal("0.000216")
    no_cached_price = Price(input=Decimal("0.15"), output=Decimal("0.60"))
    pico = cost_pico_usd(
        no_cached_price, prompt_tokens=1000, completion_tokens=200, cached_tokens=400
    )
    assert pico_to_usd(pico) == Decimal("0.00027")  # cached at the input price


def test_cost_sum_over_a_million_rows_is_exact() -> None:
    rng = random.Random(7)
    price = Price(input=Decimal("0.07"), output=Decimal("0.30"), cached_input=Decimal("0.035"))
    total_pico, total_decimal = 0, Decimal(0)
    for _ in range(1_000_000 // 50):  # 20k distinct rows, each counted 50 times
        p, c = rng.randint(1, 4000), rng.randint(1, 2000)
        k = rng.randint(0, p)
        pico = cost_pico_usd(price, prompt_tokens=p, completion_tokens=c, cached_tokens=k)
        exact = ((p - k) * price.input + k * price.cached_input + c * price.output) / Decimal(10**6)
        assert pico_to_usd(pico) == exact
        total_pico += 50 * pico
        total_decimal += 50 * exact
    assert pico_to_usd(total_pico) == total_decimal


def test_price_with_too_many_decimals_is_rejected_with_its_key() -> None:
    conf = {"models": {"m": {"input_usd_per_mtok": "0.1234567", "output_usd_per_mtok": "1",
                             "context_length": 8}}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"catalog.models.m.input_usd_per_mtok"):
        catalog_from_mapping(conf)


def test_selection_one_list_all_and_unknown() -> None:
    catalog = _lava_catalog()
    assert [m.name for m in catalog.select("glm-5")] == ["glm-5"]
    assert [m.name for m in catalog.select(["gpt-oss-20b", "glm-5"])] == ["gpt-oss-20b", "glm-5"]
    assert len(catalog.select("all")) == 20
    with pytest.raises(ConfigError, match=r"unknown model.*nope"):
        catalog.select(["nope"])


def test_fireworks_catalog_inherits_and_overrides_cached_prices() -> None:
    from hydra import compose, initialize_config_dir

    from lavabench.config import CONF_DIR, register_schemas

    register_schemas()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name="config", overrides=["catalog=fireworks"])
    catalog = catalog_from_mapping(cfg.catalog)
    assert len(catalog.models) == 20
    assert catalog.models["gpt-oss-120b"].price.cached_input == Decimal("0.015")
    assert catalog.models["gpt-oss-120b"].price.input == Decimal("0.15")
    assert catalog.models["mixtral-8x22b-instruct"].price.cached_input is None
