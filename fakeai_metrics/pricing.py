"""Model prices and the cost of one request.

Prices are US dollars per million tokens. Cached tokens are a subset of the prompt tokens (as in
OpenAI's ``usage.prompt_tokens_details.cached_tokens``) and are billed at the cached price; a model
without a cached price bills them at its input price.

A ``PriceTable`` answers "what does this model name cost?" once per name (the answer is cached) from,
in order: the caller's own prices (a mapping, or an operator's price file), then either the
``genai-prices`` database or FakeAI's built-in table (the default). A name resolves exactly, then
without a provider prefix (``openai/gpt-4o``), then without a date or version suffix
(``gpt-4o-2024-11-20``). FakeAI's fine-tuned names (``ft:<base>:org::id``) cost the fine-tuned
rates of ``<base>`` when it has them. A model that still has no price is billed at the fallback
price (gpt-3.5-turbo's unless the caller says otherwise) and reported as unpriced.

The constants below are FakeAI's tables, under FakeAI's names: ``MODEL_PRICING`` (USD per million
tokens, ``fakeai.cost_tracker``), ``IMAGE_PRICING``, ``AUDIO_PRICING``, ``FINE_TUNING_PRICING``, and
the model tracker's per-1K table ``MODEL_PRICING_PER_1K`` / ``DEFAULT_PRICING_PER_1K``
(``fakeai.model_metrics.MODEL_PRICING`` / ``DEFAULT_PRICING``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple

from . import validation as v

if TYPE_CHECKING:
    from .genai import GenaiPrices


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


# --- FakeAI's tables -------------------------------------------------------------------------


class ModelPricing(NamedTuple):
    """FakeAI's ``cost_tracker.ModelPricing``: USD per million tokens."""

    model_id: str
    input_price_per_million: float
    output_price_per_million: float
    cached_input_price_per_million: float | None = None


class ImagePricing(NamedTuple):
    """FakeAI's price of one image by model, size and quality (its ``IMAGE_PRICING`` rows)."""

    model: str
    size: str
    quality: str
    price: float


class AudioPricing(NamedTuple):
    """FakeAI's text-to-speech price per million characters by model (its ``AUDIO_PRICING`` rows)."""

    model: str
    price_per_million_chars: float


def _table(rows: list[tuple[tuple[str, ...], float, float, float | None]]
           ) -> dict[str, ModelPricing]:
    return {m: ModelPricing(m, i, o, c) for models, i, o, c in rows for m in models}


MODEL_PRICING: dict[str, ModelPricing] = _table([
    (("gpt-4", "gpt-4-0613"), 30.0, 60.0, None),
    (("gpt-4-32k", "gpt-4-32k-0613"), 60.0, 120.0, None),
    (("gpt-4-turbo", "gpt-4-turbo-preview", "gpt-4-1106-preview", "gpt-4-0125-preview"),
     10.0, 30.0, None),
    (("gpt-4o", "gpt-4o-2024-05-13"), 5.0, 15.0, 2.5),
    (("gpt-4o-2024-08-06", "openai/gpt-oss-120b"), 2.5, 10.0, 1.25),
    (("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai/gpt-oss-20b"), 0.15, 0.6, 0.075),
    (("gpt-3.5-turbo", "gpt-3.5-turbo-0125"), 0.5, 1.5, None),
    (("gpt-3.5-turbo-1106",), 1.0, 2.0, None),
    (("gpt-3.5-turbo-16k",), 3.0, 4.0, None),
    (("o1", "o1-preview", "deepseek-ai/DeepSeek-R1"), 15.0, 60.0, None),
    (("o1-mini", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"), 3.0, 12.0, None),
    (("text-embedding-3-small",), 0.02, 0.0, None),
    (("text-embedding-3-large",), 0.13, 0.0, None),
    (("text-embedding-ada-002",), 0.10, 0.0, None),
    (("mixtral-8x7b",), 0.5, 0.5, None),
    (("mixtral-8x22b",), 1.0, 1.0, None),
    (("deepseek-v3",), 0.27, 1.1, None),
])

IMAGE_PRICING: list[ImagePricing] = [
    ImagePricing("dall-e-3", "1024x1024", "standard", 0.040),
    ImagePricing("dall-e-3", "1024x1024", "hd", 0.080),
    ImagePricing("dall-e-3", "1024x1792", "standard", 0.080),
    ImagePricing("dall-e-3", "1024x1792", "hd", 0.120),
    ImagePricing("dall-e-3", "1792x1024", "standard", 0.080),
    ImagePricing("dall-e-3", "1792x1024", "hd", 0.120),
    ImagePricing("dall-e-2", "1024x1024", "standard", 0.020),
    ImagePricing("dall-e-2", "512x512", "standard", 0.018),
    ImagePricing("dall-e-2", "256x256", "standard", 0.016),
]
#: FakeAI's price of an image whose (model, size, quality) is not in ``IMAGE_PRICING``.
DEFAULT_IMAGE_PRICE = 0.020

AUDIO_PRICING: dict[str, AudioPricing] = {
    m: AudioPricing(m, p) for m, p in (("tts-1", 15.0), ("tts-1-hd", 30.0), ("whisper-1", 6.0))}

FINE_TUNING_PRICING: dict[str, dict[str, float]] = {
    "gpt-4o-2024-08-06": {"training": 25.0, "input": 3.75, "output": 15.0},
    "gpt-4o-mini-2024-07-18": {"training": 3.0, "input": 0.30, "output": 1.20},
    "gpt-3.5-turbo": {"training": 8.0, "input": 3.0, "output": 6.0},
}

#: FakeAI's model-tracker table, USD per 1K tokens (it disagrees with ``MODEL_PRICING`` in places,
#: e.g. deepseek-v3 costs 100x more here; a standalone ``ModelMetricsTracker`` keeps it).
MODEL_PRICING_PER_1K: dict[str, dict[str, float]] = {
    m: {"input": i, "output": o} for models, i, o in [
        (("openai/gpt-oss-120b", "gpt-oss-120b"), 0.01, 0.03),
        (("openai/gpt-oss-20b", "gpt-oss-20b"), 0.003, 0.009),
        (("gpt-4", "gpt-4-0314", "gpt-4-0613"), 0.03, 0.06),
        (("gpt-4-32k", "gpt-4-32k-0314", "gpt-4-32k-0613"), 0.06, 0.12),
        (("gpt-4-turbo", "gpt-4-turbo-preview", "gpt-4-turbo-2024-04-09", "gpt-4-1106-preview",
          "gpt-4-0125-preview", "gpt-4-vision-preview"), 0.01, 0.03),
        (("gpt-4o", "gpt-4o-2024-05-13"), 0.005, 0.015),
        (("gpt-4o-2024-08-06",), 0.0025, 0.01),
        (("gpt-4o-mini", "gpt-4o-mini-2024-07-18"), 0.00015, 0.0006),
        (("gpt-3.5-turbo", "gpt-3.5-turbo-0125"), 0.0005, 0.0015),
        (("gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613", "gpt-3.5-turbo-instruct"), 0.0015, 0.002),
        (("gpt-3.5-turbo-1106",), 0.001, 0.002),
        (("gpt-3.5-turbo-16k", "gpt-3.5-turbo-16k-0613"), 0.003, 0.004),
        (("deepseek-ai/DeepSeek-R1",), 0.014, 0.028),
        (("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",), 0.006, 0.012),
        (("deepseek-v3",), 0.027, 0.11),
        (("mixtral-8x7b",), 0.0007, 0.0007),
        (("mixtral-8x22b",), 0.002, 0.006),
        (("claude-3-opus-20240229",), 0.015, 0.075),
        (("claude-3-sonnet-20240229", "claude-3-5-sonnet-20240620"), 0.003, 0.015),
        (("claude-3-haiku-20240307",), 0.00025, 0.00125),
        (("claude-3-5-haiku-20241022",), 0.001, 0.005),
        (("text-embedding-ada-002",), 0.0001, 0.0),
        (("text-embedding-3-small",), 0.00002, 0.0),
        (("text-embedding-3-large",), 0.00013, 0.0),
        (("meta-llama/Llama-3.1-70B-Instruct",), 0.0009, 0.0009),
        (("meta-llama/Llama-3.1-8B-Instruct",), 0.0002, 0.0002),
        (("dall-e-3",), 0.04, 0.08),
        (("dall-e-2",), 0.02, 0.02),
        (("tts-1",), 0.015, 0.0),
        (("tts-1-hd",), 0.03, 0.0),
        (("whisper-1",), 0.006, 0.0),
    ] for m in models}
DEFAULT_PRICING_PER_1K: dict[str, float] = {"input": 0.001, "output": 0.002}


def _price(p: ModelPricing) -> Price:
    return Price(p.input_price_per_million, p.output_price_per_million,
                 p.cached_input_price_per_million)


def _per_1k(p: Mapping[str, float]) -> Price:
    return Price(p["input"] * 1000, p["output"] * 1000)


#: ``MODEL_PRICING`` as ``Price``s: the default table.
DEFAULT_PRICES: Mapping[str, Price] = {m: _price(p) for m, p in MODEL_PRICING.items()}
#: Fine-tuned models: the base model's fine-tuned input/output rates, no cached discount.
FINE_TUNED_PRICES: Mapping[str, Price] = {
    m: Price(p["input"], p["output"]) for m, p in FINE_TUNING_PRICING.items()}
#: The model tracker's table and fallback (FakeAI's ``model_metrics``) as ``Price``s.
MODEL_TRACKER_PRICES: Mapping[str, Price] = {
    m: _per_1k(p) for m, p in MODEL_PRICING_PER_1K.items()}
MODEL_TRACKER_FALLBACK = _per_1k(DEFAULT_PRICING_PER_1K)
FALLBACK_MODEL = "gpt-3.5-turbo"

IMAGE_ENDPOINT = "/v1/images/generations"
AUDIO_ENDPOINTS = frozenset({"/v1/audio/speech", "/v1/audio/transcriptions"})
_IMAGES = {(p.model, p.size, p.quality): p.price for p in IMAGE_PRICING}

_PROVIDER = re.compile(r"^[\w.-]+/")
_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4}|preview|latest)$")


def media_cost(model: str, endpoint: str, metadata: Mapping[str, Any]) -> tuple[float, bool] | None:
    """(cost, priced) of an image or audio request as FakeAI bills it; None for other endpoints.

    Images: the (model, ``size``, ``quality``) price times ``n`` (defaults 1024x1024, standard,
    1), or $0.02 per image when the table has no such row (unpriced). Audio: ``characters`` / 1e6
    times the model's rate per million characters; an unknown audio model costs 0 (unpriced).
    The metadata values are validated; a bad one raises ``InvalidMetricInput`` naming its key.
    """
    if endpoint == IMAGE_ENDPOINT:
        size = _meta_str(metadata, "size", "1024x1024")
        quality = _meta_str(metadata, "quality", "standard")
        n = _meta_int(metadata, "n", 1)
        price = _IMAGES.get((model, size, quality))
        return (DEFAULT_IMAGE_PRICE * n, False) if price is None else (price * n, True)
    if endpoint in AUDIO_ENDPOINTS:
        chars = _meta_int(metadata, "characters", 0)
        audio = AUDIO_PRICING.get(model)
        return (0.0, False) if audio is None else (
            chars / 1_000_000 * audio.price_per_million_chars, True)
    return None


def _meta_str(metadata: Mapping[str, Any], key: str, default: str) -> str:
    value = metadata.get(key, default)
    return v.label(f"metadata[{key!r}]", value)


def _meta_int(metadata: Mapping[str, Any], key: str, default: int) -> int:
    return v.tokens(f"metadata[{key!r}]", metadata.get(key, default))


# --- operator price files --------------------------------------------------------------------

_FILE_FIELDS = {"input": "input", "output": "output", "cached": "cached_input"}


def load_price_file(path: str | Path) -> dict[str, Price]:
    """An operator's prices: a YAML or JSON mapping ``model -> {input, output, cached}`` in USD
    per million tokens (``cached`` optional). A ``models:`` top-level key may wrap the mapping.

    Every problem raises ``InvalidMetricInput`` naming the file and the field
    (``prices.yaml: models['llama-70b'].output must be a number >= 0``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise v.InvalidMetricInput(f"price file {path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise v.InvalidMetricInput(f"price file {path}: not UTF-8 text") from None
    data = _parse(path, text)
    if isinstance(data, dict) and set(data) == {"models"}:
        data = data["models"]
    if not isinstance(data, dict) or not data:
        raise v.InvalidMetricInput(
            f"{path.name}: expected a non-empty mapping of model -> prices, "
            f"got {type(data).__name__}")
    return {_model_name(path, model): _file_price(path, model, entry)
            for model, entry in data.items()}


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise v.InvalidMetricInput(
                f"{path.name}: invalid JSON at line {e.lineno}: {e.msg}") from None
    try:
        import yaml
    except ImportError:
        raise v.InvalidMetricInput(
            f"{path.name}: reading YAML needs PyYAML (pip install pyyaml), or use a .json file"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise v.InvalidMetricInput(f"{path.name}: invalid YAML{where}") from None


def _model_name(path: Path, model: object) -> str:
    if not isinstance(model, str) or not model.strip():
        raise v.InvalidMetricInput(f"{path.name}: model names must be non-empty strings, "
                                   f"got {model!r}")
    return model


def _file_price(path: Path, model: object, entry: object) -> Price:
    where = f"{path.name}: models[{model!r}]"
    if not isinstance(entry, dict):
        raise v.InvalidMetricInput(f"{where} must be a mapping with input and output, "
                                   f"got {type(entry).__name__}")
    unknown = set(entry) - set(_FILE_FIELDS)
    if unknown:
        raise v.InvalidMetricInput(f"{where} has unknown field(s) {sorted(map(str, unknown))}; "
                                   f"allowed: input, output, cached")
    values: dict[str, float | None] = {"cached_input": None}
    for name, attr in _FILE_FIELDS.items():
        value = entry.get(name)
        if value is None:
            if name == "cached":
                continue
            raise v.InvalidMetricInput(f"{where}.{name} is missing (USD per million tokens)")
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < 0:
            raise v.InvalidMetricInput(f"{where}.{name} must be a number >= 0 "
                                       f"(USD per million tokens), got {value!r}")
        values[attr] = float(value)
    return Price(values["input"], values["output"], values["cached_input"])  # type: ignore[arg-type]


# --- the table ---------------------------------------------------------------------------------

Lookup = Callable[[str], "Price | None"]


class PriceTable:
    """Prices by model name, each name looked up once and cached (at most 10,000 names).

    ``prices`` (the caller's or a price file's) win; then ``genai`` (a ``GenaiPrices``) when
    given, else ``table`` (FakeAI's by default) with ``fine_tuned`` for ``ft:<base>:…`` names.
    """

    def __init__(self, prices: Mapping[str, Price] | None = None,
                 fallback: Price | None = None, *, table: Mapping[str, Price] = DEFAULT_PRICES,
                 fine_tuned: Mapping[str, Price] = FINE_TUNED_PRICES,
                 genai: GenaiPrices | None = None) -> None:
        for name, given in (("prices", prices), ("table", table), ("fine_tuned", fine_tuned)):
            _check_prices(name, given)
        if genai is not None and not _is_genai(genai):
            raise v.InvalidMetricInput(f"genai must be a GenaiPrices, got {type(genai).__name__}")
        if fallback is not None and not isinstance(fallback, Price):
            raise v.InvalidMetricInput(f"fallback_price must be a Price, got "
                                       f"{type(fallback).__name__}")
        self._own = dict(prices or {})
        self._table = {} if genai is not None else dict(table)
        self._fine_tuned = dict(fine_tuned)
        self.genai = genai
        self.fallback = fallback if fallback is not None else DEFAULT_PRICES[FALLBACK_MODEL]
        self._found: dict[str, tuple[Price, bool]] = {}

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> "PriceTable":
        """The operator's price file over the default (or ``genai=``) prices."""
        return cls(load_price_file(path), **kwargs)

    @property
    def source(self) -> str:
        """Where prices not given by the caller come from: ``fakeai`` or ``genai-prices``."""
        return "fakeai" if self.genai is None else "genai-prices"

    def resolve(self, model: str) -> str | None:
        """The table entry a model name is billed as (own prices or the built-in table), or None."""
        for name in _candidates(model):
            if name in self._own or name in self._table:
                return name
        return None

    def price(self, model: str) -> tuple[Price, bool]:
        """The model's price and whether it was found (False: the fallback applies)."""
        found = self._found.get(model)
        if found is None:
            found = self._lookup(model)
            if len(self._found) < 10_000:
                self._found[model] = found
        return found

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int,
             cached_tokens: int = 0) -> tuple[float, bool]:
        """A request's cost in USD and whether its model has a price (False: the fallback's).

        The one pricing of a request: the trackers call it when used alone, and ``Telemetry``
        calls it once per request and hands the cost to the model and cost views."""
        price, known = self._found.get(model) or self.price(model)
        return price.cost(prompt_tokens, completion_tokens, cached_tokens), known

    def _lookup(self, model: str) -> tuple[Price, bool]:
        for name in _candidates(model):
            own = self._own.get(name)
            if own is not None:
                return own, True
        if model.startswith("ft:"):
            tuned = self._fine_tuned.get(model.split(":")[1])
            if tuned is not None:
                return tuned, True
        if self.genai is not None:
            found = self.genai.lookup(model)
            return (found, True) if found is not None else (self.fallback, False)
        entry = next((c for c in _candidates(model) if c in self._table), None)
        return (self._table[entry], True) if entry is not None else (self.fallback, False)


def _candidates(model: str) -> list[str]:
    """The name as given, without a provider prefix, then without date/version suffixes."""
    candidates = [model, _PROVIDER.sub("", model)]
    while True:
        stripped = _SUFFIX.sub("", candidates[-1])
        if stripped == candidates[-1]:
            return candidates
        candidates.append(stripped)


def model_tracker_prices() -> PriceTable:
    """A standalone ``ModelMetricsTracker``'s prices: FakeAI's per-1K table, its fallback, and
    no fine-tuned rates (FakeAI's model tracker bills ``ft:`` names at the fallback)."""
    return PriceTable(table=MODEL_TRACKER_PRICES, fine_tuned={}, fallback=MODEL_TRACKER_FALLBACK)


def _is_genai(value: object) -> bool:
    """Does ``value`` look up prices as ``genai.GenaiPrices`` does? (Checked by shape: genai.py
    builds on this module, so importing it here would make a circle.)"""
    return callable(getattr(value, "lookup", None))


def _check_prices(name: str, prices: object) -> None:
    """``prices`` is None or maps model names (labels) to ``Price``s."""
    if prices is None:
        return
    if not isinstance(prices, Mapping):
        raise v.InvalidMetricInput(f"{name} must map model names to Price, got "
                                   f"{type(prices).__name__}")
    for model, price in prices.items():
        v.label(f"{name} model name", model)
        if not isinstance(price, Price):
            raise v.InvalidMetricInput(f"{name}[{model!r}] must be a Price, got "
                                       f"{type(price).__name__}")


def as_price_table(prices: Mapping[str, Price] | PriceTable | None,
                   fallback: Price | None = None) -> PriceTable:
    """A tracker's ``prices=`` argument as a table: a ``PriceTable`` as given, or a mapping of
    extra/overriding prices over the default table."""
    if isinstance(prices, PriceTable):
        if fallback is not None:
            raise v.InvalidMetricInput("fallback_price: give it to the PriceTable, not beside it")
        return prices
    return PriceTable(prices, fallback)
