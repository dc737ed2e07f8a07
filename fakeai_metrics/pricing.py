"""Model prices and the cost of one request.

Prices are US dollars per million tokens. Cached tokens are a subset of the prompt tokens (as in
OpenAI's ``usage.prompt_tokens_details.cached_tokens``) and are billed at the cached price; a model
without a cached price bills them at its input price. A model name resolves by exact match, then
without a provider prefix (``openai/gpt-4o``), then without a date or version suffix
(``gpt-4o-2024-08-06``, ``gpt-4-0613``). A model that still has no price is billed at the fallback
price (gpt-3.5-turbo's unless the caller says otherwise) and reported as unpriced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from . import validation as v


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens; each a finite number >= 0, checked when made."""

    input: float
    output: float
    cached_input: float | None = None

    def __post_init__(self) -> None:
        v.non_negative("input", self.input)
        v.non_negative("output", self.output)
        if self.cached_input is not None:
            v.non_negative("cached_input", self.cached_input)

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        cached_rate = self.input if self.cached_input is None else self.cached_input
        return ((prompt_tokens - cached_tokens) * self.input + cached_tokens * cached_rate
                + completion_tokens * self.output) / 1_000_000


DEFAULT_PRICES: Mapping[str, Price] = {
    "gpt-4o": Price(5.00, 15.00, 2.50),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "gpt-4-turbo": Price(10.00, 30.00),
    "gpt-4": Price(30.00, 60.00),
    "gpt-4-32k": Price(60.00, 120.00),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "o1": Price(15.00, 60.00, 7.50),
    "o1-mini": Price(3.00, 12.00, 1.50),
    "o1-preview": Price(15.00, 60.00, 7.50),
    "text-embedding-3-small": Price(0.02, 0.0),
    "text-embedding-3-large": Price(0.13, 0.0),
    "text-embedding-ada-002": Price(0.10, 0.0),
}
FALLBACK_MODEL = "gpt-3.5-turbo"

_PROVIDER = re.compile(r"^[\w.-]+/")
_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4}|preview|latest)$")


class PriceTable:
    """Prices by model, the built-in table overridden or extended by the caller's."""

    def __init__(self, prices: Mapping[str, Price] | None = None,
                 fallback: Price | None = None) -> None:
        if prices is not None and not isinstance(prices, Mapping):
            raise v.InvalidMetricInput(f"prices must map model names to Price, got "
                                       f"{type(prices).__name__}")
        for model, price in (prices or {}).items():
            v.label("prices model name", model)
            if not isinstance(price, Price):
                raise v.InvalidMetricInput(f"prices[{model!r}] must be a Price, got "
                                           f"{type(price).__name__}")
        if fallback is not None and not isinstance(fallback, Price):
            raise v.InvalidMetricInput(f"fallback_price must be a Price, got "
                                       f"{type(fallback).__name__}")
        self._prices = {**DEFAULT_PRICES, **(prices or {})}
        self.fallback = fallback if fallback is not None else self._prices[FALLBACK_MODEL]
        self._resolved: dict[str, str | None] = {}

    def resolve(self, model: str) -> str | None:
        """The table entry a model name is billed as, or None when it has no price."""
        try:
            return self._resolved[model]
        except KeyError:
            pass
        candidates = [model, _PROVIDER.sub("", model)]
        while True:
            stripped = _SUFFIX.sub("", candidates[-1])
            if stripped == candidates[-1]:
                break
            candidates.append(stripped)
        name = next((c for c in candidates if c in self._prices), None)
        if len(self._resolved) < 10_000:
            self._resolved[model] = name
        return name

    def price(self, model: str) -> tuple[Price, bool]:
        """The model's price and whether it was found (False: the fallback applies)."""
        name = self.resolve(model)
        return (self._prices[name], True) if name is not None else (self.fallback, False)
