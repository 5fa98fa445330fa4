"""The model catalog (prices, ids, flags) and the exact cost of one request.

Prices are kept as Decimal and costs as integer pico-USD (1e-12 USD), so that summing a
million rows is exact: a price of at most six decimals per 1M tokens is a whole number of
pico-USD per token. Floats appear only for display.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from lavabench.errors import ConfigError

PICO_PER_USD = 10**12
_PICO_PER_TOKEN_PER_USD_PER_MTOK = 10**6  # 1 USD per 1M tokens = 1e6 pico-USD per token


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens; `cached_input` None means cached tokens cost the input price."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None

    def pico_per_token(self) -> tuple[int, int, int]:
        """(input, cached input, output) in integer pico-USD per token.

        Computed once per Price (every answer is priced on the event loop, and the Decimal
        arithmetic cost ~1.5% of it at c=256): kept beside the frozen fields."""
        known: tuple[int, int, int] | None = self.__dict__.get("_pico_per_token")
        if known is not None:
            return known
        cached = self.cached_input if self.cached_input is not None else self.input
        known = (
            _to_pico_per_token(self.input),
            _to_pico_per_token(cached),
            _to_pico_per_token(self.output),
        )
        object.__setattr__(self, "_pico_per_token", known)
        return known


@dataclass(frozen=True)
class Model:
    """One catalog entry. `name` is ours (config key); `id` is what goes on the wire."""

    name: str
    id: str
    price: Price
    context_length: int
    reasoning: bool = False
    vision: bool = False


@dataclass(frozen=True)
class Catalog:
    provider: str
    prices_read_on: str
    prices_source: str
    models: Mapping[str, Model]

    def select(self, selection: str | Iterable[str]) -> list[Model]:
        """Resolve `model=` (one name, a list of names, or "all") in catalog order."""
        if isinstance(selection, str):
            names = list(self.models) if selection == "all" else [selection]
        else:
            names = list(selection)
            if names == ["all"]:
                names = list(self.models)
        if not names:
            raise ConfigError("model: the selection is empty; give a name, a list, or 'all'")
        unknown = [n for n in names if n not in self.models]
        if unknown:
            hints = []
            for name in unknown:
                close = difflib.get_close_matches(name, list(self.models), n=3, cutoff=0.5)
                hints.append(
                    f"{name!r}" + (f" (did you mean {', '.join(close)}?)" if close else "")
                )
            raise ConfigError(
                f"model: unknown model {'; '.join(hints)}. Known: {', '.join(self.models)} "
                "(or model=all). Add new models under conf/catalog/."
            )
        if len(set(names)) != len(names):
            raise ConfigError(f"model: a model is listed twice in {names}")
        return [self.models[n] for n in names]

    def prices_table(self, names: Iterable[str] | None = None) -> dict[str, dict[str, str | None]]:
        """Prices as strings, for run metadata: what a run was costed with."""
        chosen = self.models if names is None else {n: self.models[n] for n in names}
        return {
            name: {
                "id": m.id,
                "input_usd_per_mtok": str(m.price.input),
                "output_usd_per_mtok": str(m.price.output),
                "cached_input_usd_per_mtok": (
                    None if m.price.cached_input is None else str(m.price.cached_input)
                ),
                "prices_read_on": self.prices_read_on,
            }
            for name, m in chosen.items()
        }


def cost_pico_usd(
    price: Price, *, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0
) -> int:
    """Exact cost of one request from the server's `usage`, in pico-USD.

    Fireworks counts cached tokens inside `prompt_tokens`, so uncached = prompt - cached.
    """
    if min(prompt_tokens, completion_tokens, cached_tokens) < 0:
        raise ValueError("token counts must be >= 0")
    cached = min(cached_tokens, prompt_tokens)
    per_in, per_cached, per_out = price.pico_per_token()
    return (prompt_tokens - cached) * per_in + cached * per_cached + completion_tokens * per_out


def pico_to_usd(pico: int) -> Decimal:
    return Decimal(pico) / PICO_PER_USD


def _to_pico_per_token(usd_per_mtok: Decimal) -> int:
    pico = usd_per_mtok * _PICO_PER_TOKEN_PER_USD_PER_MTOK
    if pico != pico.to_integral_value():
        raise ConfigError(f"price {usd_per_mtok} USD/1M tokens has more than 6 decimals; round it")
    return int(pico)


def _decimal(value: Any, key: str, *, nullable: bool = False) -> Decimal | None:
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"{key}: a price is required (USD per 1M tokens)")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f'{key}: expected a number like "0.60", got {value!r}')
    try:
        # str() of a float is its shortest repr, so 0.6 becomes exactly Decimal("0.6").
        price = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{key}: {value!r} is not a number") from None
    if not price.is_finite() or price < 0:
        raise ConfigError(f"{key}: {value!r} must be a finite price >= 0")
    try:
        _to_pico_per_token(price)
    except ConfigError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    return price


def catalog_from_mapping(conf: Mapping[str, Any]) -> Catalog:
    """Build and check the catalog from the composed `catalog` config node."""
    raw_models = conf.get("models") or {}
    if not raw_models:
        raise ConfigError("catalog.models: no models defined (see conf/catalog/lava.yaml)")
    models: dict[str, Model] = {}
    for name, entry in raw_models.items():
        key = f"catalog.models.{name}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{key}: expected a mapping of id, prices and flags")
        model_id = entry.get("id") or f"accounts/fireworks/models/{name}"
        context_length = entry.get("context_length")
        if not isinstance(context_length, int) or context_length <= 0:
            raise ConfigError(f"{key}.context_length: expected a positive integer")
        input_price = _decimal(entry.get("input_usd_per_mtok"), f"{key}.input_usd_per_mtok")
        output_price = _decimal(entry.get("output_usd_per_mtok"), f"{key}.output_usd_per_mtok")
        assert input_price is not None and output_price is not None
        models[name] = Model(
            name=name,
            id=str(model_id),
            price=Price(
                input=input_price,
                output=output_price,
                cached_input=_decimal(
                    entry.get("cached_input_usd_per_mtok"),
                    f"{key}.cached_input_usd_per_mtok",
                    nullable=True,
                ),
            ),
            context_length=context_length,
            reasoning=bool(entry.get("reasoning", False)),
            vision=bool(entry.get("vision", False)),
        )
    return Catalog(
        provider=str(conf.get("provider", "fireworks")),
        prices_read_on=str(conf.get("prices_read_on", "")),
        prices_source=str(conf.get("prices_source", "")),
        models=models,
    )
