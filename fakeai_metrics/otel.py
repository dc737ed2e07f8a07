"""The OpenTelemetry side: GenAI semantic-convention instruments fed by the trackers' own calls.

A tracker given a ``meter_provider`` builds one of the ``*Instruments`` classes below. Histograms
are recorded in the same call that updates the Prometheus state — per request or per stream, never
per token (an SDK ``record`` costs microseconds; a token must cost well under one). Counters and
gauges are observable: their callbacks read the very counters Prometheus exports, at collection
time, so they cost nothing per request and agree with ``/metrics`` by construction.
With ``meter_provider=None`` nothing in this module runs. Only the OpenTelemetry API is imported;
the SDK is the application's choice (``meter_provider()`` below builds one when asked).

API keys appear only as the same id as on the Prometheus side (attribute ``fakeai.api_key.id``).
Recording happens outside the tracker's lock, and observable-gauge callbacks take that lock, so the
two locks are never held in opposite orders.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as gm
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

Attributes = dict[str, str]

#: Bucket advice from the GenAI semantic conventions.
TTFT_ADVICE = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
               7.5, 10.0)
TPOT_ADVICE = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
DURATION_ADVICE = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                   40.96, 81.92)
TOKEN_ADVICE = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                16777216, 67108864)

#: OpenAI-compatible routes and their ``gen_ai.operation.name``.
OPERATIONS = {
    "/v1/chat/completions": ga.GenAiOperationNameValues.CHAT.value,
    "/v1/responses": ga.GenAiOperationNameValues.CHAT.value,
    "/v1/completions": ga.GenAiOperationNameValues.TEXT_COMPLETION.value,
    "/v1/embeddings": ga.GenAiOperationNameValues.EMBEDDINGS.value,
}
API_KEY_ID = "fakeai.api_key.id"
#: The SLO an observation belongs to (the ``slo`` label on the Prometheus side).
SLO_NAME = "fakeai.slo.name"
INPUT = ga.GenAiTokenTypeValues.INPUT.value
OUTPUT = ga.GenAiTokenTypeValues.OUTPUT.value
_ERROR = (ERROR_TYPE, "error")


def get_meter(provider: MeterProvider) -> Meter:
    from . import __version__
    return provider.get_meter("fakeai_metrics", __version__)


#: Attribute sets kept per instrument class (label caps bound them well below this).
MAX_CACHED = 10_000


class _Attrs:
    """GenAI attribute sets, built once per (endpoint, model, extra...) and reused.

    ``endpoint`` gives ``gen_ai.operation.name`` (omitted for a route that is no GenAI
    operation) and ``model`` ``gen_ai.request.model``; either may be None where the number has no
    such dimension (spend is per key and model, not route).
    """

    def __init__(self, provider_name: str) -> None:
        self.provider_name = provider_name
        self._cache: dict[tuple[str | None | tuple[str, str], ...], Attributes] = {}

    def __call__(self, endpoint: str | None, model: str | None,
                 *extra: tuple[str, str]) -> Attributes:
        key = (endpoint, model) + extra
        found = self._cache.get(key)
        if found is None:
            found = {ga.GEN_AI_PROVIDER_NAME: self.provider_name}
            operation = OPERATIONS.get(endpoint or "")
            if operation is not None:
                found[ga.GEN_AI_OPERATION_NAME] = operation
            if model is not None:
                found[ga.GEN_AI_REQUEST_MODEL] = model
            found.update(extra)
            if len(self._cache) < MAX_CACHED:
                self._cache[key] = found
        return found


#: Streams are chat completions unless told otherwise (the streaming tracker sees no route).
STREAM_OPERATION = "/v1/chat/completions"

Snapshot = Callable[[], dict[tuple[str, ...], float]]


def _observable(meter: Meter, kind: str, name: str, unit: str, description: str,
                rows: Callable[[], Iterable[tuple[float, Attributes]]]) -> None:
    """An observable instrument whose callback reads ``rows()`` at collection time."""
    def callback(options: CallbackOptions) -> list[Observation]:
        return [Observation(value, attrs) for value, attrs in rows()]
    create = {"counter": meter.create_observable_counter,
              "up_down_counter": meter.create_observable_up_down_counter,
              "gauge": meter.create_observable_gauge}[kind]
    create(name, [callback], unit=unit, description=description)


class StreamingInstruments:
    def __init__(self, meter: Meter, provider_name: str, active: Snapshot) -> None:
        self.attrs = _Attrs(provider_name)
        self.ttft = meter.create_histogram(
            gm.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN, unit="s",
            description="Time to generate the first token.",
            explicit_bucket_boundaries_advisory=TTFT_ADVICE)
        self.tpot = meter.create_histogram(
            gm.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN, unit="s",
            description="Per stream: (last token - first token) / (tokens - 1).",
            explicit_bucket_boundaries_advisory=TPOT_ADVICE)
        _observable(meter, "up_down_counter", "fakeai.stream.active", "{stream}", "Open streams.",
                    lambda: [(n, self.attrs(STREAM_OPERATION, model))
                             for (model,), n in active().items()])

    def first_token(self, model: str, ttft: float) -> None:
        self.ttft.record(ttft, self.attrs(STREAM_OPERATION, model))

    def completed(self, model: str, tpot: float) -> None:
        self.tpot.record(tpot, self.attrs(STREAM_OPERATION, model))


class ModelInstruments:
    def __init__(self, meter: Meter, provider_name: str) -> None:
        self.attrs = _Attrs(provider_name)
        self.duration = meter.create_histogram(
            gm.GEN_AI_SERVER_REQUEST_DURATION, unit="s",
            description="Whole-request latency.",
            explicit_bucket_boundaries_advisory=DURATION_ADVICE)

    def request(self, endpoint: str, model: str, seconds: float, error: bool) -> None:
        attrs = self.attrs(endpoint, model, _ERROR) if error else self.attrs(endpoint, model)
        self.duration.record(seconds, attrs)


class CostInstruments:
    def __init__(self, meter: Meter, provider_name: str, cost: Snapshot,
                 budgets: Callable[[], Iterable[tuple[str, float, float]]]) -> None:
        self.attrs = _Attrs(provider_name)
        self._usage_attrs: dict[tuple[str, str], tuple[Attributes, Attributes]] = {}
        self.tokens = meter.create_histogram(
            gm.GEN_AI_CLIENT_TOKEN_USAGE, unit="{token}",
            description="Tokens per request by gen_ai.token.type (input/output).",
            explicit_bucket_boundaries_advisory=TOKEN_ADVICE)
        _observable(meter, "counter", "fakeai.usage.cost", "USD", "Spend by API key id and model.",
                    lambda: [(usd, self.attrs(None, model, (API_KEY_ID, key)))
                             for (key, model), usd in cost().items()])
        _observable(meter, "gauge", "fakeai.budget.used", "USD",
                    "Spend in the current budget period.",
                    lambda: [(spent, {API_KEY_ID: key}) for key, _, spent in budgets()])
        _observable(meter, "gauge", "fakeai.budget.limit", "USD",
                    "Budget limit of the current period.",
                    lambda: [(limit, {API_KEY_ID: key}) for key, limit, _ in budgets()])

    def usage(self, endpoint: str, model: str, prompt: int, completion: int) -> None:
        # both attribute sets in one lookup: this runs for every billed request
        pair = self._usage_attrs.get((endpoint, model))
        if pair is None:
            pair = (self.attrs(endpoint, model, (ga.GEN_AI_TOKEN_TYPE, INPUT)),
                    self.attrs(endpoint, model, (ga.GEN_AI_TOKEN_TYPE, OUTPUT)))
            if len(self._usage_attrs) < MAX_CACHED:
                self._usage_attrs[(endpoint, model)] = pair
        record = self.tokens.record
        record(prompt, pair[0])
        record(completion, pair[1])


class ErrorInstruments:
    """Counters observed from the tracker's own counters: no OpenTelemetry work per request."""

    def __init__(self, meter: Meter, provider_name: str, requests: Snapshot, errors: Snapshot,
                 burn_rates: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        attrs = _Attrs(provider_name)
        _observable(meter, "counter", "fakeai.request.count", "{request}",
                    "Finished requests by outcome.",
                    lambda: [(n, attrs(endpoint, model, ("fakeai.outcome", outcome)))
                             for (endpoint, model, outcome), n in requests().items()])
        _observable(meter, "counter", "fakeai.error.count", "{error}",
                    "Failed requests by error.type and HTTP status code.",
                    lambda: [(n, attrs(endpoint, None, (ERROR_TYPE, kind),
                                       ("http.response.status_code", code)))
                             for (endpoint, kind, code), n in errors().items()])
        _observable(meter, "gauge", "fakeai.slo.error_budget.burn_rate", "1",
                    "Error ratio over the window divided by the error budget.",
                    lambda: [(rate, {SLO_NAME: slo, "fakeai.slo.window": window})
                             for slo, window, rate in burn_rates()])


class GoodputInstruments:
    """Latency-SLO counters observed from the tracker's own counters: nothing per request."""

    def __init__(self, meter: Meter, requests: Snapshot, good: Snapshot) -> None:
        _observable(meter, "counter", "fakeai.slo.requests", "{request}",
                    "Finished requests a latency SLO matched.",
                    lambda: [(n, {SLO_NAME: slo}) for (slo,), n in requests().items()])
        _observable(meter, "counter", "fakeai.slo.good_requests", "{request}",
                    "Matched requests within every latency bound of the SLO (goodput).",
                    lambda: [(n, {SLO_NAME: slo}) for (slo,), n in good().items()])


def meter_provider(*, registry: Any = None, otlp: bool = False,
                   export_interval_ms: int | None = None) -> MeterProvider:
    """A ready SDK ``MeterProvider`` exporting to a prometheus_client registry and/or OTLP.

    ``registry``: a ``CollectorRegistry`` whose ``/metrics`` should also show the OTel data
    (needs ``opentelemetry-exporter-prometheus``, extra ``[otel]``). ``otlp=True`` adds an
    OTLP/HTTP exporter configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables (extra
    ``[otlp]``). Resource attributes come from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``.
    """
    from opentelemetry.sdk.metrics import MeterProvider as SDKMeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.resources import Resource

    readers: list[MetricReader] = []
    if registry is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        readers.append(PrometheusMetricReader(registry=registry))
    if otlp:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        readers.append(PeriodicExportingMetricReader(
            OTLPMetricExporter(), export_interval_millis=export_interval_ms))
    if not readers:
        raise ValueError("meter_provider() needs registry=... and/or otlp=True")
    return SDKMeterProvider(metric_readers=readers, resource=Resource.create())
