"""Every exported metric in one place: name, type, unit, labels, buckets, help and owner, and its
OpenTelemetry instrument (name, kind, UCUM unit, bucket advice) and the attribute of each label.

Trackers, the OpenTelemetry side, the alert rules and the dashboards all read this module, so a
name, and a fixed label value, is spelled once. Names here carry no namespace; ``full_name`` adds it (``fakeai_`` by default).
Each metric has exactly one owning tracker, so five trackers on one registry never collide and a
request is counted once however many trackers see it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as gm
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

DEFAULT_NAMESPACE = "fakeai"

# --- Fixed label values ------------------------------------------------------------------------
#: ``outcome`` of a finished request (``requests_total``).
SUCCESS = "success"
ERROR = "error"
#: ``outcome`` of a finished stream (``streams_total``, ``endpoint_streams_total``).
COMPLETED = "completed"
FAILED = "failed"
#: ``type`` of ``tokens_total``: all input, the cached part of it, output.
PROMPT = "prompt"
CACHED = "cached"
COMPLETION = "completion"
#: ``model`` of a request counted without one (``requests_total``).
UNKNOWN_MODEL = "unknown"
#: ``endpoint`` of a latency observed without one (``ModelMetricsTracker.track_latency``).
UNKNOWN_ENDPOINT = "unknown"
#: Any capped label's value once its cap is reached (``LabelLimits``).
OTHER = "__other__"

Kind = Literal["counter", "gauge", "histogram"]
#: An OpenTelemetry instrument kind; all but ``histogram`` are observable (read at collection).
OtelKind = Literal["histogram", "counter", "up_down_counter", "gauge"]
Owner = Literal["endpoints", "cost", "models", "errors", "streaming", "limits", "goodput"]
#: the gauge modes prometheus_client's multiprocess mode knows
MultiprocessMode = Literal["all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum",
                           "mostrecent", "livemostrecent"]

#: TTFT and whole-request latency, seconds: 1 ms .. 60 s, with 2.0 s (a common TTFT objective).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
    1.0, 1.5, 2.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 60.0,
)
#: Inter-token latency and TPOT, seconds: 1 ms .. 2.5 s, fine enough to tell 5 ms from 10 ms.
TOKEN_LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
)
#: Output tokens per second of one stream.
TOKENS_PER_SECOND_BUCKETS: tuple[float, ...] = (
    1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 500.0,
    1000.0, 2000.0, 5000.0,
)

#: Windows of the exported SLO burn-rate gauge, seconds by label.
BURN_RATE_WINDOWS: dict[str, int] = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21600}


# --- OpenTelemetry ----------------------------------------------------------------------------
#: Bucket advice of the GenAI semantic conventions (semconv 0.66b2).
TTFT_ADVICE = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
               7.5, 10.0)
TPOT_ADVICE = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
DURATION_ADVICE = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                   40.96, 81.92)
TOKEN_ADVICE = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                16777216, 67108864)

#: ``gen_ai.provider.name``, on every instrument with a route or model dimension.
PROVIDER_ATTRIBUTE = ga.GEN_AI_PROVIDER_NAME
#: The OpenTelemetry attribute of each Prometheus label (``otel.py`` translates the values:
#: route to operation name, token type to input/output, ``unknown`` model left off).
OTEL_ATTRIBUTES: dict[str, str] = {
    "endpoint": ga.GEN_AI_OPERATION_NAME,
    "model": ga.GEN_AI_REQUEST_MODEL,
    "type": ga.GEN_AI_TOKEN_TYPE,
    "error_type": ERROR_TYPE,
    "status_code": HTTP_RESPONSE_STATUS_CODE,
    "api_key": "fakeai.api_key.id",
    "outcome": "fakeai.outcome",
    "slo": "fakeai.slo.name",
    "window": "fakeai.slo.window",
}
#: ``gen_ai.token.type`` of a ``type`` label value; cached tokens are part of the input.
OTEL_TOKEN_TYPES: dict[str, str] = {PROMPT: ga.GenAiTokenTypeValues.INPUT.value,
                                    COMPLETION: ga.GenAiTokenTypeValues.OUTPUT.value}
#: ``gen_ai.operation.name`` of each OpenAI-compatible route; other routes get no such attribute.
OTEL_OPERATIONS: dict[str, str] = {
    "/v1/chat/completions": ga.GenAiOperationNameValues.CHAT.value,
    "/v1/responses": ga.GenAiOperationNameValues.CHAT.value,
    "/v1/completions": ga.GenAiOperationNameValues.TEXT_COMPLETION.value,
    "/v1/embeddings": ga.GenAiOperationNameValues.EMBEDDINGS.value,
}


@dataclass(frozen=True)
class OtelSpec:
    """The OpenTelemetry instrument that reports a catalog metric. ``unit`` is UCUM; ``labels``
    are the Prometheus label names whose values it carries as attributes, in this order
    (``OTEL_ATTRIBUTES`` names them; left empty in the catalog: the metric's own labels)."""

    name: str
    kind: OtelKind
    unit: str
    description: str
    buckets: tuple[float, ...] = ()
    labels: tuple[str, ...] = ()

    @property
    def genai(self) -> bool:
        """A route or model dimension: then it carries ``gen_ai.provider.name`` too."""
        return bool({"endpoint", "model"} & set(self.labels))

    def attributes(self) -> tuple[str, ...]:
        return ((PROVIDER_ATTRIBUTE,) if self.genai else ()) + tuple(
            OTEL_ATTRIBUTES[label] for label in self.labels)


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric. ``name`` has no namespace; counters keep their ``_total`` suffix."""

    name: str
    kind: Kind
    unit: str
    labels: tuple[str, ...]
    help: str
    owner: Owner
    buckets: tuple[float, ...] = ()
    #: Gauges only: how prometheus_client's multiprocess mode combines workers' values;
    #: None = the gauge is not exported in multiprocess mode (a recording rule gives it).
    multiprocess_mode: MultiprocessMode | None = "livesum"
    #: Its OpenTelemetry instrument; None = not reported to OpenTelemetry.
    otel: OtelSpec | None = None

    def full_name(self, namespace: str = DEFAULT_NAMESPACE) -> str:
        return f"{namespace}_{self.name}" if namespace else self.name


def _m(name: str, kind: Kind, unit: str, labels: tuple[str, ...], owner: Owner, help: str,
       buckets: tuple[float, ...] = (), multiprocess_mode: MultiprocessMode | None = "livesum",
       otel: OtelSpec | None = None) -> MetricSpec:
    if otel is not None and not otel.labels:
        otel = replace(otel, labels=labels)
    return MetricSpec(name, kind, unit, labels, help, owner, buckets, multiprocess_mode, otel)


# --- StreamingMetricsTracker: per-stream latency and throughput ------------------------------
#: OpenTelemetry attributes of a stream: the streaming tracker sees no route, so streams are
#: reported as chat completions (``otel.STREAM_OPERATION``).
STREAM_LABELS = ("endpoint", "model")
TTFT = _m("time_to_first_token_seconds", "histogram", "seconds", ("model",), "streaming",
          "Time from stream start to its first token.", LATENCY_BUCKETS,
          otel=OtelSpec(gm.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN, "histogram", "s",
                        "Time to the first token of streams that completed.", TTFT_ADVICE,
                        STREAM_LABELS))
ITL = _m("inter_token_latency_seconds", "histogram", "seconds", ("model",), "streaming",
         "Gap between consecutive tokens of a stream, one observation per gap.",
         TOKEN_LATENCY_BUCKETS)
TPOT = _m("time_per_output_token_seconds", "histogram", "seconds", ("model",), "streaming",
          "Per stream with >= 2 tokens: (last token - first token) / (tokens - 1).",
          TOKEN_LATENCY_BUCKETS,
          otel=OtelSpec(gm.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN, "histogram", "s",
                        "Per completed stream: (last token - first token) / (tokens - 1).",
                        TPOT_ADVICE, STREAM_LABELS))
TPS = _m("output_tokens_per_second", "histogram", "tokens/s", ("model",), "streaming",
         "Per completed stream: tokens / (completion - start).", TOKENS_PER_SECOND_BUCKETS)
STREAMS_ACTIVE = _m("streams_active", "gauge", "streams", ("model",), "streaming",
                    "Streams started and not yet completed or failed.",
                    otel=OtelSpec("fakeai.stream.active", "up_down_counter", "{stream}",
                                  "Open streams.", labels=STREAM_LABELS))
STREAMS = _m("streams_total", "counter", "streams", ("model", "outcome"), "streaming",
             "Finished streams by outcome (completed/failed).")
STREAM_BYTES = _m("stream_bytes_total", "counter", "bytes", ("model",), "streaming",
                  "Bytes of stream chunks sent.")
STREAM_EVENTS_DROPPED = _m(
    "stream_events_dropped_total", "counter", "events", ("event", "reason"), "streaming",
    "Stream calls ignored rather than raised: unknown or duplicate stream id, capacity.")

# --- ModelMetricsTracker: whole requests by model ----------------------------------------------
REQUEST_DURATION = _m("request_duration_seconds", "histogram", "seconds", ("endpoint", "model"),
                      "models", "Whole-request latency by endpoint and model.", LATENCY_BUCKETS,
                      otel=OtelSpec(gm.GEN_AI_SERVER_REQUEST_DURATION, "histogram", "s",
                                    "Whole-request latency; error.type on failures.",
                                    DURATION_ADVICE, ("endpoint", "model", "error_type")))

#: ``finish_reason`` of ``finish_reasons_total``: OpenAI's values (``length``: the answer was cut
#: at the token limit), and ``other`` for any other value, so a client or an upstream server
#: cannot make new series.
#: the finish reason of an answer cut at its token limit (a truncated answer)
TRUNCATED = "length"
FINISH_REASONS: tuple[str, ...] = ("stop", TRUNCATED, "content_filter", "tool_calls",
                                   "function_call")
OTHER_FINISH_REASON = "other"
# No OpenTelemetry instrument: semconv 0.66b2 has ``gen_ai.response.finish_reasons`` only as a
# span attribute, and no GenAI metric carries it; none is invented here.
FINISH_REASONS_TOTAL = _m(
    "finish_reasons_total", "counter", "requests", ("model", "finish_reason"), "models",
    "Successful requests by the finish_reason the model gave: stop, length (answer truncated at "
    "the token limit), content_filter, tool_calls, function_call, or other.")

# --- ErrorMetricsTracker: outcomes, errors, SLO --------------------------------------------------
REQUESTS = _m("requests_total", "counter", "requests", ("endpoint", "model", "outcome"), "errors",
              "Finished requests by outcome (success/error): the SLO's events.",
              otel=OtelSpec("fakeai.request.count", "counter", "{request}",
                            "Finished requests by outcome."))
ERRORS = _m("errors_total", "counter", "errors", ("endpoint", "error_type", "status_code"),
            "errors", "Failed requests by error type and HTTP status code.",
            otel=OtelSpec("fakeai.error.count", "counter", "{error}",
                          "Failed requests by error.type and HTTP status code."))
SLO_OBJECTIVE = _m("slo_objective_ratio", "gauge", "ratio", ("slo",), "errors",
                   "Target success ratio of the SLO.", multiprocess_mode="mostrecent")
SLO_BURN_RATE = _m("slo_burn_rate", "gauge", "ratio", ("slo", "window"), "errors",
                   "Error ratio over the window divided by the error budget (1 - objective).",
                   multiprocess_mode=None,
                   otel=OtelSpec("fakeai.slo.error_budget.burn_rate", "gauge", "1",
                                 "Error ratio over the window divided by the error budget."))

# --- GoodputTracker: latency SLOs (Telemetry(slos=...)) ---------------------------------------
SLO_REQUESTS = _m("slo_requests_total", "counter", "requests", ("slo",), "goodput",
                  "Finished requests a latency SLO matched (failed ones included).",
                  otel=OtelSpec("fakeai.slo.requests", "counter", "{request}",
                                "Finished requests a latency SLO matched."))
SLO_GOOD_REQUESTS = _m("slo_good_requests_total", "counter", "requests", ("slo",), "goodput",
                       "Matched requests that succeeded within every latency bound of the SLO; "
                       "goodput is its rate.",
                       otel=OtelSpec("fakeai.slo.good_requests", "counter", "{request}",
                                     "Matched requests within every latency bound of the SLO "
                                     "(goodput)."))

# --- CostTracker: spend, tokens, budgets ---------------------------------------------------------
COST = _m("cost_usd_total", "counter", "USD", ("api_key", "model"), "cost",
          "Spend in US dollars by hashed API key id (or alias) and model.",
          otel=OtelSpec("fakeai.usage.cost", "counter", "{USD}",
                        "Spend by API key id and model."))
TOKENS = _m("tokens_total", "counter", "tokens", ("model", "type"), "cost",
            "Billed tokens by type: prompt (all input), cached (subset of prompt), completion.",
            # Per request, like gen_ai.client.token.usage, which is a client metric: a server
            # reporting it would be counted again beside its clients' own (see README).
            otel=OtelSpec("fakeai.token.usage", "histogram", "{token}",
                          "Tokens per request by gen_ai.token.type (input/output; "
                          "embeddings: input only).", TOKEN_ADVICE, ("endpoint", "model", "type")))
UNPRICED = _m("unpriced_requests_total", "counter", "requests", ("model",), "cost",
              "Requests for a model missing from the price table, billed at the fallback price.")
BUDGET_LIMIT = _m("budget_limit_usd", "gauge", "USD", ("api_key",), "cost",
                  "Budget limit of the current period; keys without a budget have no series.",
                  multiprocess_mode="mostrecent",
                  otel=OtelSpec("fakeai.budget.limit", "gauge", "{USD}",
                                "Budget limit of the current period."))
BUDGET_SPENT = _m("budget_spent_usd", "gauge", "USD", ("api_key",), "cost",
                  "Spend in the current budget period.",
                  otel=OtelSpec("fakeai.budget.used", "gauge", "{USD}",
                                "Spend in the current budget period."))
BUDGET_THRESHOLD = _m("budget_alert_threshold_ratio", "gauge", "ratio", ("api_key",), "cost",
                      "Fraction of the limit at which the budget alert fires.",
                      multiprocess_mode="mostrecent")
BUDGET_STORE_ERRORS = _m("budget_store_errors_total", "counter", "errors", ("operation",), "cost",
                         "Budget store calls that failed (a shared store down or slow); the "
                         "process answered from what it knew and kept its spend to push later.")

# --- MetricsTracker: the per-endpoint view -------------------------------------------------------
ENDPOINT_REQUESTS = _m("endpoint_requests_total", "counter", "requests", ("endpoint",),
                       "endpoints", "Requests started, by endpoint.")
ENDPOINT_LATENCY = _m("endpoint_response_seconds", "histogram", "seconds", ("endpoint",),
                      "endpoints", "Response latency by endpoint.", LATENCY_BUCKETS)
ENDPOINT_TOKENS = _m("endpoint_tokens_total", "counter", "tokens", ("endpoint",), "endpoints",
                     "Tokens reported by endpoint.")
ENDPOINT_ERRORS = _m("endpoint_errors_total", "counter", "errors", ("endpoint",), "endpoints",
                     "Errors by endpoint.")
ENDPOINT_STREAMS = _m("endpoint_streams_total", "counter", "streams", ("endpoint", "outcome"),
                      "endpoints", "Finished streams by endpoint and outcome.")
ENDPOINT_STREAMS_ACTIVE = _m("endpoint_streams_active", "gauge", "streams", ("endpoint",),
                             "endpoints", "Open streams by endpoint.")

# --- LabelLimits: cardinality caps ----------------------------------------------------------------
LABEL_OVERFLOW = _m("label_overflow_total", "counter", "values", ("label",), "limits",
                    "Label values reported as __other__ because their label's cap was reached.")

CATALOG: tuple[MetricSpec, ...] = tuple(
    v for v in list(globals().values()) if isinstance(v, MetricSpec)
)


def owned_by(owner: Owner) -> tuple[MetricSpec, ...]:
    return tuple(m for m in CATALOG if m.owner == owner)


def markdown_table(namespace: str = DEFAULT_NAMESPACE) -> str:
    """The catalog as the Markdown table the README carries (a test keeps them equal)."""
    rows = ["| name | type | labels | owner | meaning |", "|---|---|---|---|---|"]
    rows += [f"| `{m.full_name(namespace)}` | {m.kind} | {', '.join(m.labels)} | {m.owner} | {m.help} |"
             for m in CATALOG]
    return "\n".join(rows) + "\n"


def _otel_kind(kind: OtelKind) -> str:
    return kind if kind == "histogram" else "observable " + kind.replace("_", "-")


def otel_markdown_table() -> str:
    """The OpenTelemetry instruments as the Markdown table the README carries (a test keeps
    them equal)."""
    rows = ["| instrument | kind | unit | attributes | Prometheus twin |", "|---|---|---|---|---|"]
    rows += [f"| `{o.name}` | {_otel_kind(o.kind)} | `{o.unit}` | {', '.join(o.attributes())} | "
             f"`{m.full_name()}` |" for m in CATALOG if (o := m.otel) is not None]
    return "\n".join(rows) + "\n"


# --- Recorded series and alerts (the rules in grafana/alerts/, read by the dashboards) ----------
# Recording-rule names follow Prometheus' ``level:metric:operation``; the level is the namespace.

def error_ratio_record(window: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """Failed / finished requests over ``window`` (an alert window or the SLO period), by job."""
    return f"{namespace}:sli_error:ratio_rate{window}"


def sli_rate_records(namespace: str = DEFAULT_NAMESPACE) -> tuple[str, str]:
    """Finished and failed requests per second over 5m, by job: the SLI's events."""
    return f"{namespace}:sli_requests:rate5m", f"{namespace}:sli_errors:rate5m"


def budget_remaining_record(namespace: str = DEFAULT_NAMESPACE) -> str:
    """Share of the period's error budget left (1 = untouched, < 0 = overspent), by job."""
    return f"{namespace}:error_budget_remaining:ratio"


def slo_bad_ratio_record(window: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """1 - good / matched requests of every latency SLO over ``window``, by job and slo."""
    return f"{namespace}:slo_bad:ratio_rate{window}"


def slo_rate_records(namespace: str = DEFAULT_NAMESPACE) -> tuple[str, str]:
    """Matched and good requests per second over 5m, by job and slo."""
    return f"{namespace}:slo_requests:rate5m", f"{namespace}:slo_good_requests:rate5m"


def slo_budget_remaining_record(namespace: str = DEFAULT_NAMESPACE) -> str:
    """Share of a latency SLO's error budget left over its period, by job and slo."""
    return f"{namespace}:slo_error_budget_remaining:ratio"


def budget_used_record(namespace: str = DEFAULT_NAMESPACE) -> str:
    """Spent / limit per budgeted API key, by job."""
    return f"{namespace}:budget_spent:ratio"


#: Windows of the recorded spend rate (``spend_rate_record``).
SPEND_RATE_WINDOWS: tuple[str, ...] = ("5m", "1h")


def spend_rate_record(window: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """Spend in USD per second over ``window`` (one of SPEND_RATE_WINDOWS), by job and key."""
    return f"{namespace}:cost_usd:rate{window}"


# Alert names are a contract: runbook sections, tests and Alertmanager routes use them.
#: Every bundled alert's name starts with this (the dashboards select ``alertname=~"FakeAI.*"``).
ALERT_PREFIX = "FakeAI"
ALERT_BURN = "FakeAIErrorBudgetBurn"
ALERT_BUDGET_THRESHOLD = "FakeAIBudgetAlertThreshold"
ALERT_BUDGET_EXCEEDED = "FakeAIBudgetExceeded"
ALERT_ABSENT = "FakeAIMetricsAbsent"
#: The alerts of the default rule files.
ALERTS: tuple[str, ...] = (ALERT_BURN, ALERT_BUDGET_THRESHOLD, ALERT_BUDGET_EXCEEDED, ALERT_ABSENT)
#: The latency SLOs' burn alert, only in the rules generated with latency SLOs.
ALERT_LATENCY_BURN = "FakeAILatencySLOBurn"
#: ``severity`` label values of the bundled alerts.
PAGE = "page"
TICKET = "ticket"
WARNING = "warning"
CRITICAL = "critical"
#: Names of the labels whose fixed values are above (SUCCESS/ERROR, COMPLETED/FAILED; PROMPT...).
OUTCOME_LABEL = "outcome"
TOKEN_TYPE_LABEL = "type"
