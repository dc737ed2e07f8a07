"""Telemetry: the five trackers on one registry, and the one-call paths a server needs.

A finished request and a stream's lifecycle each fan out to the trackers that own their numbers,
so ``sum(fakeai_requests_total)`` equals the requests recorded however many trackers see them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

from prometheus_client import REGISTRY, CollectorRegistry

from . import validation as v
from .catalog import CATALOG, DEFAULT_NAMESPACE, owned_by
from .cost import CostTracker
from .endpoints import MetricsTracker
from .errors import ErrorMetricsTracker
from .keys import KeyIds
from .limits import limits_for
from .models import ModelMetricsTracker
from .pricing import Price, PriceTable, as_price_table
from .streaming import StreamingMetricsTracker
from .tracker import Buckets, Clock

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider


_HISTOGRAMS = {s.name for s in CATALOG if s.kind == "histogram"}


class Telemetry:
    """Owns ``metrics``, ``cost``, ``models``, ``errors`` and ``streaming`` on one registry.

    ``meter_provider`` is handed to every tracker, which then also records into OpenTelemetry.
    ``clock`` (monotonic seconds) times requests and streams; ``wall_clock`` stamps budgets and
    error records. ``prices`` (``Price``s by model, or a ``PriceTable`` such as
    ``PriceTable.from_file(path)`` or ``PriceTable(genai=GenaiPrices())``) prices both the cost
    and the model views. ``label_limits`` sets the cardinality caps (``LabelLimits`` keywords:
    ``models``, ``endpoints``, ``api_keys``, ``error_types``). Usage without an API key is billed
    to the key id ``anonymous``, so tokens are counted whether or not a key was sent.
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY,
                 meter_provider: MeterProvider | None = None, *,
                 namespace: str = DEFAULT_NAMESPACE, slo_objective: float = 0.999,
                 buckets: Buckets | None = None, clock: Clock | None = None,
                 wall_clock: Clock | None = None,
                 prices: Mapping[str, Price] | PriceTable | None = None,
                 label_limits: Mapping[str, int] | None = None,
                 genai_provider: str = "openai") -> None:
        # Everything that can be refused is checked before anything registers, so a corrected
        # retry on the same registry works.
        v.ratio("slo_objective", slo_objective, high_closed=False)
        buckets = {name: list(b) for name, b in (buckets or {}).items()}
        unknown = set(buckets) - _HISTOGRAMS
        if unknown:
            raise ValueError(f"no histogram named {sorted(unknown)}")
        prices = as_price_table(prices)  # one table: the model and cost views agree
        self.registry = registry
        self.key_ids = KeyIds()
        self.limits = limits_for(registry, namespace, **(label_limits or {}))
        common = dict(registry=registry, meter_provider=meter_provider, namespace=namespace,
                      limits=self.limits, genai_provider=genai_provider)

        def mine(owner: str) -> dict[str, Any]:
            return {s.name: buckets[s.name] for s in owned_by(owner) if s.name in buckets}

        self.streaming = StreamingMetricsTracker(clock=clock, buckets=mine("streaming"), **common)
        self.metrics = MetricsTracker(clock=clock, buckets=mine("endpoints"), **common)
        self.models = ModelMetricsTracker(clock=wall_clock, prices=prices, key_ids=self.key_ids,
                                          buckets=mine("models"), **common)
        self.errors = ErrorMetricsTracker(error_budget_slo=slo_objective, clock=wall_clock,
                                          key_ids=self.key_ids, **common)
        self.cost = CostTracker(clock=wall_clock, prices=prices, key_ids=self.key_ids, **common)
        self._stream_routes: dict[str, _Route] = {}
        self._lock = threading.Lock()

    def now(self) -> float:
        """The streams' clock: pass its value as ``start_stream(started_at=...)``."""
        return self.streaming._clock()

    def alias_key(self, api_key: str, alias: str) -> None:
        self.key_ids.alias(api_key, alias)

    def record_request(self, *, endpoint: str, model: str, latency_s: float,
                       prompt_tokens: int = 0, completion_tokens: int = 0,
                       cached_tokens: int = 0, api_key: str | None = None) -> float:
        """A successful non-streamed request; returns its cost."""
        _check_usage(endpoint, model, prompt_tokens, completion_tokens, cached_tokens, api_key)
        v.seconds("latency_s", latency_s)
        self.metrics.track_request(endpoint)
        self.metrics.track_response(endpoint, latency_s)
        self.metrics.track_tokens(endpoint, prompt_tokens + completion_tokens)
        self.models.track_request(model, endpoint, prompt_tokens, completion_tokens,
                                  latency_s * 1000.0, user=api_key, cached_tokens=cached_tokens)
        self.errors.record_success(endpoint, model)
        return self.cost.record_usage(api_key, model, endpoint, prompt_tokens, completion_tokens,
                                      cached_tokens)

    def record_failure(self, *, endpoint: str, model: str | None, status_code: int,
                       error_type: str, message: str = "", latency_s: float | None = None,
                       api_key: str | None = None, request_id: str | None = None) -> None:
        """A failed request (streamed or not); nothing is billed."""
        if latency_s is not None:
            v.seconds("latency_s", latency_s)
        self.errors.record_error(endpoint, status_code, error_type, message, model=model,
                                 api_key=api_key, request_id=request_id)
        self.metrics.track_request(endpoint)
        self.metrics.track_error(endpoint)
        if model is not None:
            self.models.track_request(model, endpoint, 0, 0,
                                      None if latency_s is None else latency_s * 1000.0,
                                      user=api_key, error=True)

    def start_stream(self, stream_id: str, *, endpoint: str, model: str,
                     prompt_tokens: int = 0, api_key: str | None = None,
                     started_at: float | None = None) -> None:
        """Open a stream. ``started_at`` (a value of ``now()``) backdates it to the request's
        arrival. A duplicate open id, or a stream beyond the streaming tracker's
        ``max_active_streams``, is ignored and counted as dropped; it is then not counted as a
        request either (memory stays bounded by the cap)."""
        v.label("stream_id", stream_id)
        _check_usage(endpoint, model, prompt_tokens, 0, 0, api_key)
        with self._lock:
            if stream_id in self._stream_routes:
                self.streaming.drop("start", "duplicate_stream")
                return
            if not self.streaming.start_stream(stream_id, model, prompt_tokens,
                                               started_at=started_at):
                return  # counted by the streaming tracker
            self._stream_routes[stream_id] = _Route(endpoint, model, api_key, prompt_tokens)
        self.metrics.track_request(endpoint)
        self.metrics.start_stream(stream_id, endpoint, started_at=started_at)

    def stream_token(self, stream_id: str, chunk_size_bytes: int = 0) -> None:
        """One token: one tracker call, one lock; the endpoint view learns the count at the end."""
        self.streaming.record_token(stream_id, "", chunk_size_bytes)

    def finish_stream(self, stream_id: str, *, finish_reason: str = "stop",
                      completion_tokens: int | None = None, prompt_tokens: int | None = None,
                      cached_tokens: int = 0) -> float:
        """Complete a stream: latency, tokens, outcome and cost; returns the cost.

        ``completion_tokens`` defaults to the tokens the stream recorded and ``prompt_tokens``
        to the count given at start; a server that learns the usage from the final chunk passes
        them. An unknown id is ignored (counted as dropped).
        """
        if completion_tokens is not None:
            v.tokens("completion_tokens", completion_tokens)
        if prompt_tokens is not None:
            v.tokens("prompt_tokens", prompt_tokens)
        v.tokens("cached_tokens", cached_tokens)
        with self._lock:
            route = self._stream_routes.get(stream_id)
            if route is None:
                self.streaming.drop("completed", "unknown_stream")
                return 0.0
            prompt = route.prompt_tokens if prompt_tokens is None else prompt_tokens
            _check_usage(route.endpoint, route.model, prompt, completion_tokens or 0,
                         cached_tokens, route.api_key)
            del self._stream_routes[stream_id]  # only the caller that removes it finishes it
        summary = self.streaming.complete_stream(stream_id, finish_reason)
        seen = summary.tokens if summary is not None else 0
        completion = seen if completion_tokens is None else completion_tokens
        endpoint, model, api_key = route.endpoint, route.model, route.api_key
        self.metrics.complete_stream(stream_id, endpoint, tokens=seen,
                                     ttft_s=summary.ttft_s if summary is not None else None)
        self.metrics.track_tokens(endpoint, prompt + completion)
        if summary is not None:
            self.models.track_request(model, endpoint, prompt, completion,
                                      summary.duration_s * 1000.0, user=api_key,
                                      cached_tokens=cached_tokens)
        self.errors.record_success(endpoint, model)
        return self.cost.record_usage(api_key, model, endpoint, prompt, completion,
                                      cached_tokens)

    def fail_stream(self, stream_id: str, *, status_code: int = 500,
                    error_type: str = "StreamError", message: str = "") -> float:
        """A stream that ended in an error or a disconnect: an error, and the tokens already
        sent are billed (they were generated). Returns that cost; an unknown id is ignored."""
        v.status_code(status_code)
        v.label("error_type", error_type)
        v.text("message", message)
        with self._lock:
            route = self._stream_routes.pop(stream_id, None)
            if route is None:
                self.streaming.drop("failed", "unknown_stream")
                return 0.0
        endpoint, model, api_key = route.endpoint, route.model, route.api_key
        summary = self.streaming.fail_stream(stream_id, self.key_ids.scrub(message, api_key))
        sent = summary.tokens if summary is not None else 0
        self.metrics.fail_stream(stream_id, endpoint, message)
        if summary is not None:
            self.models.track_request(model, endpoint, route.prompt_tokens, sent,
                                      summary.duration_s * 1000.0, user=api_key, error=True)
        self.errors.record_error(endpoint, status_code, error_type, message, model=model,
                                 api_key=api_key)
        return self.cost.record_usage(api_key, model, endpoint, route.prompt_tokens, sent)


class _Route(NamedTuple):
    """What the hub remembers of an open stream to finish it in every tracker."""

    endpoint: str
    model: str
    api_key: str | None
    prompt_tokens: int


def _check_usage(endpoint: str, model: str, prompt: int, completion: int, cached: int,
                 api_key: str | None) -> None:
    """Validate a request's usage before any tracker records it, so a bad call changes nothing."""
    v.usage(model, endpoint, prompt, completion, cached)
    if prompt + completion > v.MAX_TOKENS:
        raise v.InvalidMetricInput(
            f"prompt_tokens + completion_tokens must be at most {v.MAX_TOKENS}")
    if api_key is not None:
        v.label("api_key", api_key)
