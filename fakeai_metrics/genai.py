"""Prices from pydantic's ``genai-prices`` database (the optional ``genai`` extra).

One lookup per model name (``PriceTable`` caches the answer). The provider comes from the
configuration (``provider=``) or from the model name: ``anthropic/claude-3-5-sonnet`` is looked up
as ``claude-3-5-sonnet`` at provider ``anthropic`` when that is a provider the database knows;
otherwise the database picks the provider from the model name itself.

A model with flat prices becomes a plain ``Price`` (input, output and cache-read rates per million
tokens), so billing it costs what a built-in price costs. A model whose prices have tiers (the
rate depends on the prompt's size) keeps the database's own ``ModelPrice`` and is billed by its
``calc_price`` on each request: about 90 us a call on the development machine, against well under
1 us for a flat ``Price``, which is why flat prices are converted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .pricing import Price
from .validation import InvalidMetricInput


def _snapshot() -> Any:
    try:
        from genai_prices import data_snapshot
    except ImportError:
        raise InvalidMetricInput(
            "genai prices need the genai-prices package: pip install 'fakeai-metrics[genai]'"
        ) from None
    return data_snapshot.get_snapshot()


@dataclass(frozen=True)
class TieredPrice(Price):
    """A ``Price`` whose cost comes from genai-prices' tiered ``ModelPrice`` (base rates shown)."""

    model_price: Any = field(default=None, compare=False)

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        from genai_prices import Usage
        usage = Usage(input_tokens=prompt_tokens, cache_read_tokens=cached_tokens,
                      output_tokens=completion_tokens)
        return float(self.model_price.calc_price(usage)["total_price"])


class GenaiPrices:
    """Model prices from genai-prices; ``provider`` (e.g. ``openai``) pins the provider."""

    def __init__(self, provider: str | None = None) -> None:
        self._snapshot = _snapshot()
        self._providers = {p.id for p in self._snapshot.providers}
        if provider is not None and provider not in self._providers:
            raise InvalidMetricInput(
                f"genai_provider {provider!r} is not a genai-prices provider "
                f"(known: {', '.join(sorted(self._providers))})")
        self.provider = provider

    def counts(self) -> tuple[int, int]:
        """(models, providers) in the database."""
        providers = self._snapshot.providers
        return sum(len(p.models) for p in providers), len(providers)

    def lookup(self, model: str) -> Price | None:
        """The model's current price, or None when the database has no such model."""
        provider, name = self.provider, model
        head, sep, rest = model.partition("/")
        if provider is None and sep and head.lower() in self._providers:
            provider, name = head.lower(), rest
        try:
            _, info = self._snapshot.find_provider_model(name, None, provider, None)
        except LookupError:
            return None
        prices = info.get_prices(dt.datetime.now(dt.timezone.utc))
        rates = [getattr(prices, k) for k in ("input_mtok", "output_mtok", "cache_read_mtok")]
        if any(r is not None and not _flat(r) for r in rates):
            base = [float(getattr(r, "base", r) or 0) for r in rates]
            return TieredPrice(base[0], base[1], base[2] if rates[2] is not None else None,
                               model_price=prices)
        inp, out, cached = (None if r is None else float(r) for r in rates)
        return Price(inp or 0.0, out or 0.0, cached)


def _flat(rate: Any) -> bool:
    from decimal import Decimal
    return isinstance(rate, Decimal)
