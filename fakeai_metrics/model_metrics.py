"""ModelMetricsTracker: requests, tokens, latency, errors and cost per model.

It exports ``fakeai_request_duration_seconds{endpoint, model}``; its latency percentiles come from
that histogram's own counts. It also holds ``fakeai_finish_reasons_total{model, finish_reason}``,
which ``Telemetry`` counts for each successful request whose finish reason it was given. Request
outcomes are exported by ``ErrorMetricsTracker`` and tokens by ``CostTracker``, so a request seen
by all three is counted once per metric. ``user`` values are treated like API keys (hashed or
aliased) since callers often pass the key there; at most ``max_users_per_model`` distinct users
are kept per model, the rest are counted as ``__other__``.

Standalone, it prices models as FakeAI's model tracker does (its per-1K table, re-exported here as
``MODEL_PRICING`` / ``DEFAULT_PRICING``); ``Telemetry`` gives it the cost tracker's table instead
and prices each request once (``PriceTable.cost``) for both, so both report one cost. Requests per
model and hour are kept for the last 25 hours only.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import catalog as c
from . import validation as v
from .instruments import Distribution, Histogram
from .keys import KeyIds, scrub_path
from .limits import OTHER
from .pricing import (
    DEFAULT_PRICING_PER_1K as DEFAULT_PRICING,
    MODEL_PRICING_PER_1K as MODEL_PRICING,
    MODEL_TRACKER_FALLBACK,
    MODEL_TRACKER_PRICES,
    Price,
    PriceTable,
)
from .tracker import Tracker

__all__ = ["DEFAULT_PRICING", "MODEL_PRICING", "ModelMetricsTracker", "ModelStats"]

#: The endpoint label of latencies given without one (``track_latency``).
NO_ENDPOINT = c.UNKNOWN_ENDPOINT

_MAX_TOKENS = v.MAX_TOKENS
_MAX_MS = v.MAX_SECONDS * 1000
RANKING_METRICS = ("request_count", "latency", "error_rate", "cost", "tokens")
_FINISH_REASONS = frozenset(c.FINISH_REASONS)


def finish_reason_label(finish_reason: str) -> str:
    """The ``finish_reason`` label of a reason a server gave: one of ``catalog.FINISH_REASONS``,
    else ``other``."""
    return finish_reason if finish_reason in _FINISH_REASONS else c.OTHER_FINISH_REASON


@dataclass(slots=True)
class _ModelStats:
    requests: int = 0
    prompt: int = 0
    completion: int = 0
    errors: int = 0
    cost: float = 0.0
    first: float = 0.0
    last: float = 0.0
    endpoints: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    hours: dict[int, int] = field(default_factory=dict)  # hour start -> requests
    #: the hour requests are being counted in: its start, end and count so far (kept apart
    #: from ``hours`` so that counting a request is one comparison and one add)
    hour_start: int = -1
    hour_end: float = -1.0
    hour_count: int = 0

    def new_hour(self, now: float) -> None:
        """Count a request outside the current hour: that hour becomes the current one."""
        if self.hour_count:
            self.hours[self.hour_start] = self.hours.get(self.hour_start, 0) + self.hour_count
        hour = int(now // 3600) * 3600
        for old in [h for h in self.hours if h < hour - 86400]:
            del self.hours[old]
        self.hour_start, self.hour_end = hour, hour + 3600.0
        self.hour_count = self.hours.pop(hour, 0) + 1

    def requests_by_hour(self) -> dict[int, int]:
        counts = dict(self.hours)
        if self.hour_count:
            counts[self.hour_start] = counts.get(self.hour_start, 0) + self.hour_count
        return counts


@dataclass
class ModelStats:
    """FakeAI's per-model statistics object, for callers that build one themselves.

    The tracker does not use it: it keeps every latency and a timeline entry per request, which
    grows with traffic; ``ModelMetricsTracker`` keeps counts and histograms instead. Costs use
    FakeAI's model-tracker prices (``MODEL_PRICING`` per 1K tokens, else ``DEFAULT_PRICING``).
    """

    model: str
    request_count: int = 0
    total_prompt_tokens: int = 0
    total_completion_tokens: int = 0
    total_tokens: int = 0
    total_latency_ms: float = 0.0
    error_count: int = 0
    latencies: list[float] = field(default_factory=list)
    endpoint_requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    user_requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    user_tokens: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    request_timeline: list[tuple[float, int]] = field(default_factory=list)
    first_request_time: float | None = None
    last_request_time: float | None = None

    def add_request(self, prompt_tokens: int, completion_tokens: int, latency_ms: float,
                    endpoint: str | None = None, user: str | None = None,
                    error: bool = False) -> None:
        now = time.time()
        tokens = prompt_tokens + completion_tokens
        self.request_count += 1
        self.total_prompt_tokens += prompt_tokens
        self.total_completion_tokens += completion_tokens
        self.total_tokens += tokens
        self.total_latency_ms += latency_ms
        if latency_ms > 0:
            self.latencies.append(latency_ms)
        self.error_count += bool(error)
        if endpoint:
            self.endpoint_requests[endpoint] += 1
        if user:
            self.user_requests[user] += 1
            self.user_tokens[user] += tokens
        self.request_timeline.append((now, 1))
        if self.first_request_time is None:
            self.first_request_time = now
        self.last_request_time = now

    def get_avg_latency_ms(self) -> float:
        return self.total_latency_ms / self.request_count if self.request_count else 0.0

    def get_error_rate(self) -> float:
        """Errors per request, in percent."""
        return self.error_count / self.request_count * 100 if self.request_count else 0.0

    def get_latency_percentiles(self) -> dict[str, float]:
        """p50/p90/p95/p99 of the latencies, interpolated linearly between ranks (numpy's
        default method)."""
        data = sorted(self.latencies)
        return {f"p{q}": _interpolated(data, q / 100) for q in (50, 90, 95, 99)}

    def calculate_cost(self) -> float:
        rates = MODEL_PRICING.get(self.model, DEFAULT_PRICING)
        return (self.total_prompt_tokens / 1000 * rates["input"]
                + self.total_completion_tokens / 1000 * rates["output"])

    def get_uptime_seconds(self) -> float:
        if self.first_request_time is None or self.last_request_time is None:
            return 0.0
        return self.last_request_time - self.first_request_time


def _interpolated(data: list[float], q: float) -> float:
    if not data:
        return 0.0
    rank = q * (len(data) - 1)
    low = int(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


class ModelMetricsTracker(Tracker):
    """FakeAI's ``ModelMetricsTracker``: per-model requests, tokens, latency, errors, cost, users
    and hourly counts, and the model comparisons and rankings built on them."""

    owner = "models"
    default_clock = staticmethod(time.time)

    def __init__(self, *, prices: Mapping[str, Price] | PriceTable | None = None,
                 key_ids: KeyIds | None = None, max_users_per_model: int = 1000,
                 **kwargs: Any) -> None:
        """``prices``: a ``PriceTable``, or ``Price``s over FakeAI's model-tracker table."""
        v.count("max_users_per_model", max_users_per_model)
        if key_ids is not None and not isinstance(key_ids, KeyIds):
            raise v.InvalidMetricInput(f"key_ids must be a KeyIds, got {type(key_ids).__name__}")
        prices_table = prices if isinstance(prices, PriceTable) else PriceTable(
            prices, MODEL_TRACKER_FALLBACK, table=MODEL_TRACKER_PRICES, fine_tuned={})
        super().__init__(**kwargs)
        self.prices = prices_table
        self.key_ids = key_ids or KeyIds()
        self.max_users_per_model = max_users_per_model
        self._models: dict[str, _ModelStats] = {}
        self._duration: Histogram = self._instrument(c.REQUEST_DURATION)
        self._finish_reasons = self._instrument(c.FINISH_REASONS_TOTAL)
        #: (model, endpoint) as given -> their (endpoint, model) labels, for track_request
        self._series: dict[tuple[object, object], tuple[str, str]] = {}

    def track_request(self, model: str, endpoint: str, prompt_tokens: int = 0,
                      completion_tokens: int = 0, latency_ms: float | None = None,
                      user: str | None = None, error: bool = False,
                      cached_tokens: int = 0, *, error_type: str | None = None) -> None:
        """One finished request; ``latency_ms`` None means not measured (not observed).

        ``error_type`` (a failure's class or code) is OpenTelemetry's ``error.type`` on the
        request duration; a failure without one reports ``_OTHER``.

        ``cached_tokens`` (part of ``prompt_tokens``) only changes the cost, which is priced on
        the model name as given, before any cardinality cap folds it into ``__other__``.
        """
        # Cheap checks of the common case; anything else gets the full checks, which raise the
        # same error they always did (or accept and convert, e.g. an int latency).
        if not (type(prompt_tokens) is int and type(cached_tokens) is int
                and 0 <= cached_tokens <= prompt_tokens <= _MAX_TOKENS
                and type(completion_tokens) is int and 0 <= completion_tokens <= _MAX_TOKENS
                and (latency_ms is None or type(latency_ms) is float
                     and 0.0 <= latency_ms <= _MAX_MS)
                and type(error) is bool):
            latency_ms = _check_request(model, endpoint, prompt_tokens, completion_tokens,
                                        latency_ms, cached_tokens, error)
        if error_type is not None:
            v.label("error_type", error_type)
        try:  # a (model, endpoint) seen before: checked and resolved then
            series = self._series.get((model, endpoint))
        except TypeError:  # unhashable: not a label, the checks say so
            series = None
        if series is None:
            v.label("model", model)
            v.label("endpoint", endpoint)
        user_id = None
        if user is not None:
            user_id = self.key_ids(user, "user")
            if user in endpoint:
                series = self._series_of(model, scrub_path(endpoint, user), None)
        if series is None:
            series = self._series_of(model, endpoint, (model, endpoint))
        if error_type is not None:
            error_type = self.limits.error_type(error_type)
        cost = self.prices.cost(model, prompt_tokens, completion_tokens, cached_tokens)[0]
        self._record(series, prompt_tokens, completion_tokens, latency_ms, user_id, error, cost,
                     error_type)

    def _series_of(self, model: str, endpoint: str,
                   keep_as: tuple[str, str] | None) -> tuple[str, str]:
        """The ``(endpoint, model)`` labels of a checked model and request path, kept for the
        next call under ``keep_as`` (the arguments as given) unless a cap folded a label (a
        folded value counts its overflow on each call)."""
        limits = self.limits
        model_label = limits.model(model)
        series = (limits.endpoint(endpoint), model_label)
        if keep_as is not None and c.OTHER not in series and len(self._series) < 10_000:
            self._series[keep_as] = series
        return series

    def _record(self, series: tuple[str, str], prompt_tokens: int, completion_tokens: int,
                latency_ms: float | None, user_id: str | None, error: bool, cost: float,
                error_type: str | None = None, finish_reason: str | None = None) -> None:
        """``track_request`` with checked values: ``series`` the ``(endpoint, model)`` labels,
        ``error_type`` a resolved label, ``user_id`` the user's id, ``cost`` the request's
        (priced on the model name as given, before any cap folds it), ``finish_reason`` a label
        (``finish_reason_label``) to count, or None."""
        endpoint, model = series
        now = self._clock()
        lock = self._lock
        lock.acquire()  # not `with`: see Tracker
        try:
            try:  # subscripts, not .get(): no method call (a first time is the miss)
                st = self._models[model]
            except KeyError:
                st = self._models[model] = _ModelStats(first=now)
            if st.hour_start <= now < st.hour_end:
                st.hour_count += 1
            else:
                st.new_hour(now)
            st.requests += 1
            st.prompt += prompt_tokens
            st.completion += completion_tokens
            if error:
                st.errors += 1
            st.cost += cost
            st.last = now
            try:
                st.endpoints[endpoint] += 1
            except KeyError:
                st.endpoints[endpoint] = 1
            if user_id is not None:
                if user_id not in st.users and len(st.users) >= self.max_users_per_model:
                    user_id = OTHER
                st.users[user_id] = st.users.get(user_id, 0) + 1
            if latency_ms is not None:
                self._duration.observe(series, latency_ms / 1000.0)
            if finish_reason is not None:
                self._finish_reasons.inc((model, finish_reason))
        finally:
            lock.release()
        if self._otel is not None and latency_ms is not None:
            self._otel.request(endpoint, model, latency_ms / 1000.0, error, error_type)

    def _count_finish(self, model: str, finish_reason: str) -> None:
        """Count a finish reason (a label) of a request recorded without ``_record``."""
        with self._lock:
            self._finish_reasons.inc((model, finish_reason))

    def _stats(self, model: str, now: float) -> _ModelStats:
        """The model's stats, made on first use; call under the lock."""
        st = self._models.get(model)
        if st is None:
            st = self._models[model] = _ModelStats(first=now, last=now)
        return st

    def track_tokens(self, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Tokens (and their cost) for a model, without counting a request."""
        v.label("model", model)
        v.tokens("prompt_tokens", prompt_tokens)
        v.tokens("completion_tokens", completion_tokens)
        cost = self.prices.cost(model, prompt_tokens, completion_tokens)[0]
        model = self.limits.model(model)
        now = self._clock()
        with self._lock:
            st = self._stats(model, now)
            st.prompt += prompt_tokens
            st.completion += completion_tokens
            st.cost += cost

    def track_latency(self, model: str, latency_ms: float) -> None:
        """One latency observation for a model (endpoint label ``unknown``), no request."""
        v.label("model", model)
        seconds = v.milliseconds("latency_ms", latency_ms) / 1000.0
        model = self.limits.model(model)
        now = self._clock()
        with self._lock:
            self._stats(model, now)
            self._duration.observe((NO_ENDPOINT, model), seconds)
        if self._otel is not None:
            self._otel.request(NO_ENDPOINT, model, seconds, False)

    def _otel_instruments(self, meter: Any, provider_name: str) -> Any:
        from .otel import ModelInstruments
        return ModelInstruments(meter, provider_name)

    # --- reading -----------------------------------------------------------------------------

    def get_multi_dimensional_stats(self) -> dict[str, Any]:
        """Requests by model x endpoint, model x user (ids), and model x hour (last 24 h)."""
        since = int(self._clock() // 3600) * 3600 - 86400
        with self._lock:
            models = [(m, st) for m, st in self._models.items() if st.requests]
            return {
                "model_by_endpoint": {m: dict(st.endpoints) for m, st in models},
                "model_by_user": {m: dict(st.users) for m, st in models if st.users},
                "model_by_time_24h": {
                    m: recent for m, st in models
                    if (recent := [{"timestamp": h, "count": n}
                                   for h, n in sorted(st.requests_by_hour().items())
                                   if h >= since])},
            }


    def _latency(self, model: str) -> Distribution:
        total = Distribution()
        for (_, m), dist in self._duration.series.items():
            if m == model:
                total.merge(dist)
        return total

    def get_model_stats(self, model: str) -> dict[str, Any]:
        """Stats of one model; an unknown model gives FakeAI's ``{"request_count": 0, "error"}``."""
        with self._lock:
            st = self._models.get(model)
            if st is None:
                return {"model": model, "request_count": 0, "error": "Model not found"}
            lat = self._latency(model)
            cost = st.cost
            latency = {"avg_ms": lat.mean * 1000,
                       "min_ms": lat.min * 1000 if lat.count else 0.0,
                       "max_ms": lat.max * 1000 if lat.count else 0.0}
            for q in (50, 90, 95, 99):
                value = self._duration.quantile(lat, q / 100) * 1000
                latency[f"p{q}_ms"] = latency[f"p{q}"] = value
            return {
                "model": model,
                "request_count": st.requests,
                "tokens": {"prompt": st.prompt, "completion": st.completion,
                           "total": st.prompt + st.completion},
                "latency": latency,
                "errors": {"count": st.errors,
                           "rate_percent": st.errors / st.requests * 100 if st.requests else 0.0},
                "cost": {"total_usd": cost,
                         "per_request_usd": cost / st.requests if st.requests else 0.0},
                "endpoints": dict(st.endpoints),
                "users": dict(st.users),
                "uptime_seconds": st.last - st.first,
                "first_request": st.first,
                "last_request": st.last,
            }

    def get_all_models_stats(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            models = list(self._models)
        return {m: self.get_model_stats(m) for m in models}

    def get_cost_by_model(self) -> dict[str, float]:
        with self._lock:
            return {m: st.cost for m, st in self._models.items()}

    def compare_models(self, model1: str, model2: str) -> dict[str, Any]:
        a, b = self.get_model_stats(model1), self.get_model_stats(model2)
        if "error" in a or "error" in b:
            return {"error": "One or both models not found", "model1": model1, "model2": model2}
        values = {
            "request_count": (a["request_count"], b["request_count"]),
            "avg_latency_ms": (a["latency"]["avg_ms"], b["latency"]["avg_ms"]),
            "error_rate_percent": (a["errors"]["rate_percent"], b["errors"]["rate_percent"]),
            "total_cost_usd": (a["cost"]["total_usd"], b["cost"]["total_usd"]),
            "cost_per_request_usd": (a["cost"]["per_request_usd"], b["cost"]["per_request_usd"]),
            "total_tokens": (a["tokens"]["total"], b["tokens"]["total"]),
        }
        comparison = {
            name: {"model1": x, "model2": y, "delta": y - x,
                   "percent_change": (y - x) / x * 100 if x > 0 else 0.0}
            for name, (x, y) in values.items()
        }

        def lower(name: str) -> str:
            x, y = values[name]
            return model1 if x < y else model2

        return {"model1": model1, "model2": model2, "comparison": comparison,
                "winner": {"latency": lower("avg_latency_ms"),
                           "error_rate": lower("error_rate_percent"),
                           "cost_efficiency": lower("cost_per_request_usd")}}

    def get_model_ranking(self, metric: str = "request_count",
                          limit: int = 10) -> list[dict[str, Any]]:
        """Models by ``metric``, highest first."""
        if metric not in RANKING_METRICS:
            raise ValueError(f"metric must be one of {RANKING_METRICS}, got {metric!r}")
        keys = {"request_count": lambda s: s["request_count"],
                "latency": lambda s: s["latency"]["avg_ms"],
                "error_rate": lambda s: s["errors"]["rate_percent"],
                "cost": lambda s: s["cost"]["total_usd"],
                "tokens": lambda s: s["tokens"]["total"]}
        stats = list(self.get_all_models_stats().values())
        return sorted(stats, key=keys[metric], reverse=True)[:limit]

    def reset_stats(self) -> None:
        """Forget everything; the exported histogram and finish reasons start again from zero."""
        with self._lock:
            self._models.clear()
            self._duration.clear()
            self._finish_reasons.clear()


def _check_request(model: object, endpoint: object, prompt_tokens: object,
                   completion_tokens: object, latency_ms: object, cached_tokens: object,
                   error: object) -> float | None:
    """The full checks of ``track_request``'s arguments, in order; the latency as a float."""
    v.usage(model, endpoint, prompt_tokens, completion_tokens, cached_tokens)
    if not isinstance(error, bool):
        raise v.InvalidMetricInput(f"error must be a bool, got {type(error).__name__}")
    return None if latency_ms is None else v.milliseconds("latency_ms", latency_ms)
