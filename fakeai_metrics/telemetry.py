"""Telemetry: the five trackers on one registry, and the one-call paths a server needs.

A finished request and a stream's lifecycle each fan out to the trackers that own their numbers,
so ``sum(fakeai_requests_total)`` equals the requests recorded however many trackers see them.
Each path checks its request once, resolves its labels once (the endpoint and model after the
cardinality caps, the key's id) and records through the trackers' internal methods, which check
nothing again: the public tracker calls check and then run those same methods.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

from prometheus_client import REGISTRY, CollectorRegistry

from . import validation as v
from .catalog import CATALOG, COMPLETED, DEFAULT_NAMESPACE, FAILED, SUCCESS, Owner, owned_by
from .budgets import BudgetStore
from .cost_tracker import ANONYMOUS, BATCH_ENDPOINT, CostTracker
from .metrics import MetricsTracker
from .error_metrics_tracker import ErrorMetricsTracker
from .goodput_tracker import GoodputStatus, GoodputTracker, check_window
from .keys import KeyIds, clip_message, scrub_path
from .latency_slo import SLOSource, resolve
from .limits import limits_for
from .model_metrics import ModelMetricsTracker, finish_reason_label
from .pricing import Price, PriceTable, as_price_table
from .stores import open_store
from .streaming_metrics_tracker import StreamingMetricsTracker
from .collector import Buckets, Clock, check_namespace, check_parts

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

    ``slos`` (``LatencySLO``s, or the path of a YAML spec for ``load_slos``) are judged on every
    finished request they match (``goodput``, ``slo_status``); ``slo_window_seconds`` is the
    window of ``slo_status``.
    ``budget_store`` is the cost tracker's (a ``redis://`` URL makes budgets fleet-wide; see
    ``CostTracker``). ``shared_slo=True`` also counts the availability SLO (status, burn-rate
    gauge) over every process on that store (``ErrorMetricsTracker.share_slo``).
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY,
                 meter_provider: MeterProvider | None = None, *,
                 namespace: str = DEFAULT_NAMESPACE, slo_objective: float = 0.999,
                 buckets: Buckets | None = None, clock: Clock | None = None,
                 wall_clock: Clock | None = None,
                 prices: Mapping[str, Price] | PriceTable | None = None,
                 label_limits: Mapping[str, int] | None = None,
                 genai_provider: str = "openai", slos: SLOSource | None = None,
                 slo_window_seconds: float = 300,
                 budget_store: BudgetStore | str | None = None,
                 shared_slo: bool = False) -> None:
        # Everything that can be refused is checked before anything registers, so a corrected
        # retry on the same registry works.
        v.ratio("slo_objective", slo_objective, high_closed=False)
        check_namespace(namespace)
        v.label("genai_provider", genai_provider)
        check_parts(registry, meter_provider, clock, buckets)
        check_parts(None, None, wall_clock, None, clock_name="wall_clock")
        prices = as_price_table(prices)  # one table: the model and cost views agree
        if label_limits is not None and not isinstance(label_limits, Mapping):
            raise v.InvalidMetricInput("label_limits must map label kinds to caps")
        unknown = set(buckets or {}) - _HISTOGRAMS
        if unknown:
            raise v.InvalidMetricInput(f"buckets: no histogram named {sorted(unknown)}")
        checked = {name: v.bounds(f"buckets[{name!r}]", b) for name, b in (buckets or {}).items()}
        latency_slos = resolve(slos)
        check_window(slo_window_seconds, "slo_window_seconds")
        if not isinstance(shared_slo, bool):
            raise v.InvalidMetricInput(f"shared_slo must be a bool, got {type(shared_slo).__name__}")
        budget_store = open_store(budget_store)
        if shared_slo and not hasattr(budget_store, "share_slo"):  # (an in-process store)
            raise v.InvalidMetricInput("shared_slo needs a shared budget_store (a redis:// URL)")
        self.registry = registry
        self.key_ids = KeyIds()
        self.limits = limits_for(registry, namespace, **(label_limits or {}))
        common: dict[str, Any] = dict(
            registry=registry, meter_provider=meter_provider, namespace=namespace,
            limits=self.limits, genai_provider=genai_provider)

        def mine(owner: Owner) -> dict[str, Any]:
            return {s.name: checked[s.name] for s in owned_by(owner) if s.name in checked}

        self.streaming = StreamingMetricsTracker(clock=clock, buckets=mine("streaming"), **common)
        self.metrics = MetricsTracker(clock=clock, buckets=mine("endpoints"), **common)
        self.models = ModelMetricsTracker(clock=wall_clock, prices=prices, key_ids=self.key_ids,
                                          buckets=mine("models"), **common)
        self.errors = ErrorMetricsTracker(error_budget_slo=slo_objective, clock=wall_clock,
                                          key_ids=self.key_ids, **common)
        self.cost = CostTracker(clock=wall_clock, prices=prices, key_ids=self.key_ids,
                                budget_store=budget_store, **common)
        self.goodput = GoodputTracker(latency_slos, window_seconds=slo_window_seconds,
                                      clock=clock, **common)
        self._prices = prices  # the models' and the cost view's table: a request priced once
        if shared_slo:
            self.errors.share_slo(budget_store)
        self._stream_routes: dict[str, _Route] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Flush and stop what runs in the background (a shared budget store's sync thread)."""
        self.cost.close()

    def now(self) -> float:
        """The streams' clock: pass its value as ``start_stream(started_at=...)``."""
        return self.streaming._clock()

    def alias_key(self, api_key: str, alias: str) -> None:
        self.key_ids.alias(api_key, alias)

    def slo_status(self, name: str) -> GoodputStatus:
        """Latency SLO ``name`` over the last ``slo_window_seconds``: totals, good ratio,
        goodput per second and burn rate (InvalidMetricInput for an unknown name)."""
        return self.goodput.status(name)

    def record_request(self, *, endpoint: str, model: str, latency_s: float,
                       prompt_tokens: int = 0, completion_tokens: int = 0,
                       cached_tokens: int = 0, api_key: str | None = None,
                       finish_reason: str | None = None) -> float:
        """A successful non-streamed request; returns its cost.

        ``finish_reason`` (the body's ``choices[0].finish_reason``) is counted in
        ``fakeai_finish_reasons_total`` (values outside ``catalog.FINISH_REASONS`` as ``other``).

        Checked once, here: the common case by a few type and range tests, anything else by
        the full checks (which raise what they always did, or accept and convert). The
        trackers then get checked values and resolved labels through their internal paths.
        """
        if not (type(endpoint) is str and endpoint and endpoint.isascii()
                and type(model) is str and model and model.isascii()
                and type(prompt_tokens) is int and type(completion_tokens) is int
                and type(cached_tokens) is int and 0 <= cached_tokens <= prompt_tokens
                and 0 <= completion_tokens and prompt_tokens + completion_tokens <= v.MAX_TOKENS
                and type(latency_s) is float and 0.0 <= latency_s <= v.MAX_SECONDS
                and (api_key is None or type(api_key) is str and api_key and api_key.isascii())
                and (finish_reason is None or type(finish_reason) is str and finish_reason
                     and finish_reason.isascii())):
            _check_usage(endpoint, model, prompt_tokens, completion_tokens, cached_tokens,
                         api_key)
            latency_s = v.seconds("latency_s", latency_s)
            v.optional(v.label, "finish_reason", finish_reason)
        if api_key is not None and api_key in endpoint:
            endpoint = scrub_path(endpoint, api_key)
        limits = self.limits
        limits.begin_request()
        try:
            label, model_label, kid, key = self._labels(endpoint, model, api_key)
            cost, known = self._prices.cost(model, prompt_tokens, completion_tokens,
                                            cached_tokens)
            self.metrics._record_request(label, latency_s, prompt_tokens + completion_tokens)
            self.models._record((label, model_label), prompt_tokens, completion_tokens,
                                latency_s * 1000.0, api_key and kid, False, cost, None,
                                None if finish_reason is None
                                else finish_reason_label(finish_reason))
            self.errors._record_success((label, model_label, SUCCESS))
            self.goodput.record(model, endpoint, True, latency_s)
            return self.cost._record_usage(kid, key, model, endpoint == BATCH_ENDPOINT, label,
                                           prompt_tokens, completion_tokens, cached_tokens,
                                           cost, known)
        finally:
            limits.end_request()

    def _labels(self, endpoint: str, model: str,
                api_key: str | None) -> tuple[str, str, str, str]:
        """A checked request's endpoint and model labels, its key's id and the key's label
        (``anonymous`` for both without a key), resolved once for every tracker; call between
        ``limits.begin_request`` and ``end_request``."""
        limits = self.limits
        label, model_label = limits.endpoint(endpoint), limits.model(model)
        if api_key is None:
            return label, model_label, ANONYMOUS, ANONYMOUS
        kid = self.key_ids(api_key)
        return label, model_label, kid, limits.api_key(kid)

    def record_failure(self, *, endpoint: str, model: str | None, status_code: int,
                       error_type: str, message: str = "", latency_s: float | None = None,
                       api_key: str | None = None, request_id: str | None = None) -> None:
        """A failed request (streamed or not); nothing is billed."""
        v.label("endpoint", endpoint)
        v.optional(v.label, "model", model)
        v.status_code(status_code)
        v.label("error_type", error_type)
        message = v.text("message", message)
        v.optional(v.seconds, "latency_s", latency_s)
        v.optional(v.label, "api_key", api_key)
        v.optional(v.label, "request_id", request_id)
        endpoint = scrub_path(endpoint, api_key)
        key_ids = self.key_ids
        limits = self.limits
        limits.begin_request()
        try:
            # the labels, once, in the order a direct record_error resolves them
            label = limits.endpoint(endpoint)
            model_label = None if model is None else limits.model(model)
            error_label = limits.error_type(error_type)
            kid = None if api_key is None else key_ids(api_key)
            self.errors._record_error(label, model_label, error_label, status_code,
                                      clip_message(key_ids.scrub(message, api_key)), kid,
                                      request_id, None)
            metrics = self.metrics
            metrics._count_label("requests", label)
            metrics._count_label("errors", label)
            if model_label is not None:
                self.models._record((label, model_label), 0, 0,
                                    None if latency_s is None else latency_s * 1000.0,
                                    kid, True, 0.0, error_label)
            self.goodput.record(model, endpoint, False, latency_s or 0.0)
        finally:
            limits.end_request()

    def start_stream(self, stream_id: str, *, endpoint: str, model: str,
                     prompt_tokens: int = 0, api_key: str | None = None,
                     started_at: float | None = None) -> None:
        """Open a stream. ``started_at`` (a value of ``now()``) backdates it to the request's
        arrival. A duplicate open id, or a stream beyond the streaming tracker's
        ``max_active_streams``, is ignored and counted as dropped; it is then not counted as a
        request either (memory stays bounded by the cap)."""
        if not (type(stream_id) is str and stream_id and stream_id.isascii()
                and type(endpoint) is str and endpoint and endpoint.isascii()
                and type(model) is str and model and model.isascii()
                and type(prompt_tokens) is int and 0 <= prompt_tokens <= v.MAX_TOKENS
                and (api_key is None or type(api_key) is str and api_key and api_key.isascii())
                and (started_at is None or type(started_at) is float
                     and 0.0 <= started_at < math.inf)):
            # not the common case: the full checks, in order, raise what they always did
            v.label("stream_id", stream_id)
            _check_usage(endpoint, model, prompt_tokens, 0, 0, api_key)
            v.optional(v.non_negative, "started_at", started_at)
        if api_key is not None and api_key in endpoint:
            endpoint = scrub_path(endpoint, api_key)
        limits = self.limits
        folded = limits.begin_request()
        try:
            with self._lock:
                if stream_id in self._stream_routes:
                    self.streaming.drop("start", "duplicate_stream")
                    return
                if not self.streaming._start_stream(stream_id, model, prompt_tokens,
                                                    started_at):
                    return  # counted by the streaming tracker
                self._stream_routes[stream_id] = _Route(endpoint, model, api_key,
                                                        prompt_tokens, folded)
            metrics = self.metrics
            label = limits.endpoint(endpoint)
            metrics._count_label("requests", label)
            metrics._stream_opened(label)  # the stream's state is the streaming tracker's
        finally:
            limits.end_request()

    def stream_token(self, stream_id: str, chunk_size_bytes: int | None = 0) -> None:
        """One token: one tracker call, one lock; the endpoint view learns the count at the end."""
        self.streaming.record_token(stream_id, "", chunk_size_bytes)

    def finish_stream(self, stream_id: str, *, finish_reason: str = "stop",
                      completion_tokens: int | None = None, prompt_tokens: int | None = None,
                      cached_tokens: int = 0) -> float:
        """Complete a stream: latency, tokens, outcome, finish reason and cost; returns the cost.

        ``completion_tokens`` defaults to the tokens the stream recorded and ``prompt_tokens``
        to the count given at start; a server that learns the usage from the final chunk passes
        them. An unknown id is ignored (counted as dropped).
        """
        if not (type(finish_reason) is str and finish_reason and finish_reason.isascii()
                and (completion_tokens is None or type(completion_tokens) is int
                     and 0 <= completion_tokens <= v.MAX_TOKENS)
                and (prompt_tokens is None or type(prompt_tokens) is int
                     and 0 <= prompt_tokens <= v.MAX_TOKENS)
                and type(cached_tokens) is int and 0 <= cached_tokens <= v.MAX_TOKENS):
            v.label("finish_reason", finish_reason)
            v.optional(v.tokens, "completion_tokens", completion_tokens)
            v.optional(v.tokens, "prompt_tokens", prompt_tokens)
            v.tokens("cached_tokens", cached_tokens)
        with self._lock:
            route = self._route(stream_id, COMPLETED)
            if route is None:
                return 0.0
            prompt = route.prompt_tokens if prompt_tokens is None else prompt_tokens
            if not (cached_tokens <= prompt
                    and prompt + (completion_tokens or 0) <= v.MAX_TOKENS):
                # the route's labels were checked at start: only the counts' sums can fail
                _check_usage(route.endpoint, route.model, prompt, completion_tokens or 0,
                             cached_tokens, route.api_key)
            del self._stream_routes[stream_id]  # only the caller that removes it finishes it
        limits = self.limits
        limits.begin_request(route.folded)
        try:
            summary = self.streaming._finish(stream_id, COMPLETED, finish_reason, None)
            seen = summary.tokens if summary is not None else 0
            completion = seen if completion_tokens is None else completion_tokens
            endpoint, model, api_key = route.endpoint, route.model, route.api_key
            label, model_label, kid, key = self._labels(endpoint, model, api_key)
            cost, known = self._prices.cost(model, prompt, completion, cached_tokens)
            metrics = self.metrics
            metrics._stream_closed(label, COMPLETED,
                                   None if summary is None else summary.duration_s, seen,
                                   None if summary is None else summary.ttft_s)
            metrics._count_tokens(label, prompt + completion)
            reason = finish_reason_label(finish_reason)
            if summary is None:
                self.models._count_finish(model_label, reason)
            else:
                self.models._record((label, model_label), prompt, completion,
                                    summary.duration_s * 1000.0, api_key and kid, False, cost,
                                    None, reason)
                # A stream that sent no token: the client waited its whole duration for one.
                ttft = summary.duration_s if summary.ttft_s is None else summary.ttft_s
                self.goodput.record(model, endpoint, True, summary.duration_s, ttft,
                                    summary.tpot_s)
            self.errors._record_success((label, model_label, SUCCESS))
            return self.cost._record_usage(kid, key, model, endpoint == BATCH_ENDPOINT, label,
                                           prompt, completion, cached_tokens, cost, known)
        finally:
            limits.end_request()

    def fail_stream(self, stream_id: str, *, status_code: int = 500,
                    error_type: str = "StreamError", message: str = "") -> float:
        """A stream that ended in an error or a disconnect: an error, and the tokens already
        sent are billed (they were generated). Returns that cost; an unknown id is ignored."""
        v.status_code(status_code)
        v.label("error_type", error_type)
        message = v.text("message", message)
        with self._lock:
            route = self._route(stream_id, FAILED)
            if route is None:
                return 0.0
            del self._stream_routes[stream_id]
        limits = self.limits
        limits.begin_request(route.folded)
        try:
            endpoint, model, api_key = route.endpoint, route.model, route.api_key
            stored = clip_message(self.key_ids.scrub(message, api_key))  # kept by two trackers
            summary = self.streaming._finish(stream_id, FAILED, None, stored)
            label, model_label, kid, key = self._labels(endpoint, model, api_key)
            error_label = limits.error_type(error_type)
            sent = summary.tokens if summary is not None else 0
            prompt = route.prompt_tokens
            cost, known = self._prices.cost(model, prompt, sent)
            self.metrics._stream_closed(label, FAILED, None)
            if summary is not None:
                self.models._record((label, model_label), prompt, sent,
                                    summary.duration_s * 1000.0, api_key and kid, True, cost,
                                    error_label)
                self.goodput.record(model, endpoint, False, summary.duration_s)
            self.errors._record_error(label, model_label, error_label, status_code, stored,
                                      api_key and kid, None, None)
            return self.cost._record_usage(kid, key, model, endpoint == BATCH_ENDPOINT, label,
                                           prompt, sent, 0, cost, known)
        finally:
            limits.end_request()

    def _route(self, stream_id: str, event: str) -> _Route | None:
        """The open stream's route, or None (counted as dropped); call under the lock."""
        try:
            route = self._stream_routes.get(stream_id)
        except TypeError:  # unhashable: no stream has that id
            route = None
        if route is None:
            self.streaming.drop(event, "unknown_stream")
        return route


class _Route(NamedTuple):
    """What the hub remembers of an open stream to finish it in every tracker."""

    endpoint: str
    model: str
    api_key: str | None
    prompt_tokens: int
    folded: set[tuple[str, str]]  # label values folded at start, counted once already


def _check_usage(endpoint: str, model: str, prompt: int, completion: int, cached: int,
                 api_key: str | None) -> None:
    """Validate a request's usage before any tracker records it, so a bad call changes nothing."""
    v.usage(model, endpoint, prompt, completion, cached)
    if prompt + completion > v.MAX_TOKENS:
        raise v.InvalidMetricInput(
            f"prompt_tokens + completion_tokens must be at most {v.MAX_TOKENS}")
    v.optional(v.label, "api_key", api_key)
