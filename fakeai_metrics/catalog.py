"""Every exported metric in one place: name, type, unit, labels, buckets, help and owner.

Trackers, the OpenTelemetry side, the alert rules and the dashboards all read this module, so a
name is spelled once. Names here carry no namespace; ``full_name`` adds it (``fakeai_`` by default).
Each metric has exactly one owning tracker, so five trackers on one registry never collide and a
request is counted once however many trackers see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_NAMESPACE = "fakeai"

Kind = Literal["counter", "gauge", "histogram"]
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

    def full_name(self, namespace: str = DEFAULT_NAMESPACE) -> str:
        return f"{namespace}_{self.name}" if namespace else self.name


def _m(name: str, kind: Kind, unit: str, labels: tuple[str, ...], owner: Owner, help: str,
       buckets: tuple[float, ...] = (),
       multiprocess_mode: MultiprocessMode | None = "livesum") -> MetricSpec:
    return MetricSpec(name, kind, unit, labels, help, owner, buckets, multiprocess_mode)


# --- StreamingMetricsTracker: per-stream latency and throughput ------------------------------
TTFT = _m("time_to_first_token_seconds", "histogram", "seconds", ("model",), "streaming",
          "Time from stream start to its first token.", LATENCY_BUCKETS)
ITL = _m("inter_token_latency_seconds", "histogram", "seconds", ("model",), "streaming",
         "Gap between consecutive tokens of a stream, one observation per gap.",
         TOKEN_LATENCY_BUCKETS)
TPOT = _m("time_per_output_token_seconds", "histogram", "seconds", ("model",), "streaming",
          "Per stream with >= 2 tokens: (last token - first token) / (tokens - 1).",
          TOKEN_LATENCY_BUCKETS)
TPS = _m("output_tokens_per_second", "histogram", "tokens/s", ("model",), "streaming",
         "Per completed stream: tokens / (completion - start).", TOKENS_PER_SECOND_BUCKETS)
STREAMS_ACTIVE = _m("streams_active", "gauge", "streams", ("model",), "streaming",
                    "Streams started and not yet completed or failed.")
STREAMS = _m("streams_total", "counter", "streams", ("model", "outcome"), "streaming",
             "Finished streams by outcome (completed/failed).")
STREAM_BYTES = _m("stream_bytes_total", "counter", "bytes", ("model",), "streaming",
                  "Bytes of stream chunks sent.")
STREAM_EVENTS_DROPPED = _m(
    "stream_events_dropped_total", "counter", "events", ("event", "reason"), "streaming",
    "Stream calls ignored rather than raised: unknown or duplicate stream id, capacity.")

# --- ModelMetricsTracker: whole requests by model ----------------------------------------------
REQUEST_DURATION = _m("request_duration_seconds", "histogram", "seconds", ("endpoint", "model"),
                      "models", "Whole-request latency by endpoint and model.", LATENCY_BUCKETS)

# --- ErrorMetricsTracker: outcomes, errors, SLO --------------------------------------------------
REQUESTS = _m("requests_total", "counter", "requests", ("endpoint", "model", "outcome"), "errors",
              "Finished requests by outcome (success/error): the SLO's events.")
ERRORS = _m("errors_total", "counter", "errors", ("endpoint", "error_type", "status_code"),
            "errors", "Failed requests by error type and HTTP status code.")
SLO_OBJECTIVE = _m("slo_objective_ratio", "gauge", "ratio", ("slo",), "errors",
                   "Target success ratio of the SLO.", multiprocess_mode="mostrecent")
SLO_BURN_RATE = _m("slo_burn_rate", "gauge", "ratio", ("slo", "window"), "errors",
                   "Error ratio over the window divided by the error budget (1 - objective).",
                   multiprocess_mode=None)

# --- GoodputTracker: latency SLOs (Telemetry(slos=...)) ---------------------------------------
SLO_REQUESTS = _m("slo_requests_total", "counter", "requests", ("slo",), "goodput",
                  "Finished requests a latency SLO matched (failed ones included).")
SLO_GOOD_REQUESTS = _m("slo_good_requests_total", "counter", "requests", ("slo",), "goodput",
                       "Matched requests that succeeded within every latency bound of the SLO; "
                       "goodput is its rate.")

# --- CostTracker: spend, tokens, budgets ---------------------------------------------------------
COST = _m("cost_usd_total", "counter", "USD", ("api_key", "model"), "cost",
          "Spend in US dollars by hashed API key id (or alias) and model.")
TOKENS = _m("tokens_total", "counter", "tokens", ("model", "type"), "cost",
            "Billed tokens by type: prompt (all input), cached (subset of prompt), completion.")
UNPRICED = _m("unpriced_requests_total", "counter", "requests", ("model",), "cost",
              "Requests for a model missing from the price table, billed at the fallback price.")
BUDGET_LIMIT = _m("budget_limit_usd", "gauge", "USD", ("api_key",), "cost",
                  "Budget limit of the current period; keys without a budget have no series.",
                  multiprocess_mode="mostrecent")
BUDGET_SPENT = _m("budget_spent_usd", "gauge", "USD", ("api_key",), "cost",
                  "Spend in the current budget period.")
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
