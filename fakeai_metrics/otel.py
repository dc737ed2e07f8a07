"""The OpenTelemetry side: GenAI semantic-convention instruments fed by the trackers' own calls.

A tracker given a ``meter_provider`` builds one of the ``*Instruments`` classes below. Histograms
are recorded in the same call that updates the Prometheus state — per request or per stream, never
per token (an SDK ``record`` costs microseconds; a token must cost well under one). Counters and
gauges are observable: their callbacks read the very counters Prometheus exports, at collection
time, so they cost nothing per request and agree with ``/metrics`` by construction.
With ``meter_provider=None`` nothing in this module runs. Only the OpenTelemetry API is imported;
the SDK is the application's choice (``meter_provider()`` below builds one when asked).

Every instrument name, unit and attribute name comes from the catalog (``MetricSpec.otel``,
``OTEL_ATTRIBUTES``); this module only translates label values into semantic-convention values
(semconv 0.66b2): a route becomes ``gen_ai.operation.name``, a token type ``input``/``output``,
a capped or missing error class ``_OTHER``; an unknown model leaves ``gen_ai.request.model`` off.
Only server metrics are emitted: ``gen_ai.client.*`` belong to the calling application.

API keys appear only as the same id as on the Prometheus side (attribute ``fakeai.api_key.id``).
Recording happens outside the tracker's lock, and observable-gauge callbacks take that lock, so the
two locks are never held in opposite orders.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, MeterProvider, Observation
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import \
    GenAiOperationNameValues
from opentelemetry.semconv.attributes.error_attributes import ErrorTypeValues

from . import catalog as c
from .catalog import MetricSpec, OtelSpec

Attributes = dict[str, str | int]
#: Label values of one series, in the order of the labels they belong to (None: no value).
Values = tuple[str | None, ...]
Snapshot = Callable[[], dict[tuple[str, ...], float]]

#: ``error.type`` when the class is not known or its label was capped.
OTHER_ERROR = ErrorTypeValues.OTHER.value
EMBEDDINGS = GenAiOperationNameValues.EMBEDDINGS.value
#: Streams are chat completions unless told otherwise (the streaming tracker sees no route).
STREAM_OPERATION = "/v1/chat/completions"
#: Attribute sets kept per instrument (label caps bound them well below this).
MAX_CACHED = 10_000


def get_meter(provider: MeterProvider) -> Meter:
    return provider.get_meter("fakeai_metrics", version("fakeai-metrics"))


def _error_type(value: str) -> str:
    return OTHER_ERROR if value == c.OTHER else value


#: Label value -> attribute value, for labels whose values differ between the two sides;
#: None = leave the attribute off.
_TRANSLATE: dict[str, Callable[[str], str | int | None]] = {
    "endpoint": c.OTEL_OPERATIONS.get,
    "model": lambda model: None if model == c.UNKNOWN_MODEL else model,
    "type": c.OTEL_TOKEN_TYPES.get,
    "error_type": _error_type,
    "status_code": int,
}


class _Attrs:
    """The attribute sets of one instrument, built once per series and reused.

    Called with the values of the instrument's ``labels`` (its ``OtelSpec.labels``, in order).
    """

    def __init__(self, provider_name: str, spec: OtelSpec) -> None:
        self.base: Attributes = {c.PROVIDER_ATTRIBUTE: provider_name} if spec.genai else {}
        self.labels = tuple((c.OTEL_ATTRIBUTES[label], _TRANSLATE.get(label))
                            for label in spec.labels)
        self._cache: dict[Values, Attributes] = {}

    def __call__(self, values: Values) -> Attributes:
        found = self._cache.get(values)
        if found is None:
            found = dict(self.base)
            for (name, translate), value in zip(self.labels, values):
                attribute = value if value is None or translate is None else translate(value)
                if attribute is not None:
                    found[name] = attribute
            if len(self._cache) < MAX_CACHED:
                self._cache[values] = found
        return found


def _otel(spec: MetricSpec) -> OtelSpec:
    if spec.otel is None:
        raise ValueError(f"{spec.name} has no OpenTelemetry instrument in the catalog")
    return spec.otel


def _histogram(meter: Meter, spec: MetricSpec) -> Histogram:
    o = _otel(spec)
    return meter.create_histogram(o.name, unit=o.unit, description=o.description,
                                  explicit_bucket_boundaries_advisory=o.buckets)


def _observable(meter: Meter, spec: MetricSpec, provider_name: str,
                rows: Callable[[], Iterable[tuple[Values, float]]]) -> None:
    """The observable instrument of ``spec``; its callback reads ``rows()`` (label values of
    the instrument's labels, and a value) at collection time."""
    o = _otel(spec)
    attrs = _Attrs(provider_name, o)

    def callback(options: CallbackOptions) -> list[Observation]:
        return [Observation(value, attrs(values)) for values, value in rows()]
    create = {"counter": meter.create_observable_counter,
              "up_down_counter": meter.create_observable_up_down_counter,
              "gauge": meter.create_observable_gauge}[o.kind]
    create(o.name, [callback], unit=o.unit, description=o.description)


def _rows(snapshot: Snapshot) -> Callable[[], Iterable[tuple[Values, float]]]:
    """Rows of an observable whose labels are its metric's own: the tracker's series."""
    return lambda: snapshot().items()


class StreamingInstruments:
    """TTFT and TPOT of each stream that completed (the conventions measure successful
    responses only: a failed stream records neither), and the open streams."""

    def __init__(self, meter: Meter, provider_name: str, active: Snapshot) -> None:
        self.attrs = _Attrs(provider_name, _otel(c.TTFT))  # the same labels as TPOT's
        self.ttft = _histogram(meter, c.TTFT)
        self.tpot = _histogram(meter, c.TPOT)
        _observable(meter, c.STREAMS_ACTIVE, provider_name,
                    lambda: [((STREAM_OPERATION, model), n) for (model,), n in active().items()])

    def completed(self, model: str, ttft: float | None, tpot: float | None) -> None:
        attrs = self.attrs((STREAM_OPERATION, model))
        if ttft is not None:
            self.ttft.record(ttft, attrs)
        if tpot is not None:
            self.tpot.record(tpot, attrs)


class ModelInstruments:
    """The model tracker's OpenTelemetry side: the semconv request-duration histogram, attributes
    built once per (endpoint, model, error type)."""

    def __init__(self, meter: Meter, provider_name: str) -> None:
        self.attrs = _Attrs(provider_name, _otel(c.REQUEST_DURATION))
        self.duration = _histogram(meter, c.REQUEST_DURATION)

    def request(self, endpoint: str, model: str, seconds: float, error: bool,
                error_type: str | None = None) -> None:
        """``error_type``: the failure's class or code (its capped label); None on a failure
        reports ``_OTHER``, and a success has no ``error.type``."""
        self.duration.record(seconds, self.attrs(
            (endpoint, model, (error_type or OTHER_ERROR) if error else None)))


class CostInstruments:
    """The cost tracker's OpenTelemetry side: the semconv token-usage histogram per request, and
    observable cost and budget gauges read from the tracker at collection."""

    def __init__(self, meter: Meter, provider_name: str, cost: Snapshot,
                 budgets: Callable[[], Iterable[tuple[str, float, float]]]) -> None:
        self.attrs = _Attrs(provider_name, _otel(c.TOKENS))
        self._usage_attrs: dict[tuple[str, str], tuple[Attributes, Attributes | None]] = {}
        self.tokens = _histogram(meter, c.TOKENS)
        _observable(meter, c.COST, provider_name, _rows(cost))
        _observable(meter, c.BUDGET_SPENT, provider_name,
                    lambda: [((key,), spent) for key, _, spent in budgets()])
        _observable(meter, c.BUDGET_LIMIT, provider_name,
                    lambda: [((key,), limit) for key, limit, _ in budgets()])

    def usage(self, endpoint: str, model: str, prompt: int, completion: int) -> None:
        """Input and output tokens of one request; an embeddings request has no output."""
        # both attribute sets in one lookup: this runs for every billed request
        pair = self._usage_attrs.get((endpoint, model))
        if pair is None:
            output = (None if c.OTEL_OPERATIONS.get(endpoint) == EMBEDDINGS
                      else self.attrs((endpoint, model, c.COMPLETION)))
            pair = (self.attrs((endpoint, model, c.PROMPT)), output)
            if len(self._usage_attrs) < MAX_CACHED:
                self._usage_attrs[(endpoint, model)] = pair
        record = self.tokens.record
        record(prompt, pair[0])
        if pair[1] is not None:
            record(completion, pair[1])


class ErrorInstruments:
    """Counters observed from the tracker's own counters: no OpenTelemetry work per request."""

    def __init__(self, meter: Meter, provider_name: str, requests: Snapshot, errors: Snapshot,
                 burn_rates: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        _observable(meter, c.REQUESTS, provider_name, _rows(requests))
        _observable(meter, c.ERRORS, provider_name, _rows(errors))
        _observable(meter, c.SLO_BURN_RATE, provider_name,
                    lambda: [((slo, window), rate) for slo, window, rate in burn_rates()])


class GoodputInstruments:
    """Latency-SLO counters observed from the tracker's own counters: nothing per request."""

    def __init__(self, meter: Meter, requests: Snapshot, good: Snapshot) -> None:
        _observable(meter, c.SLO_REQUESTS, "", _rows(requests))  # no GenAI dimension
        _observable(meter, c.SLO_GOOD_REQUESTS, "", _rows(good))


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
