"""Bad input is refused cleanly, and stream mix-ups are absorbed, never half-recorded.

The trackers sit on a server's request path, so the contract (validation.py) is all-or-nothing: a
rejected call raises ``InvalidMetricInput`` (a ``ValueError``) naming the offending argument and
leaves *every* tracker and the registry exactly as they were; the message never repeats an API
key. Stream calls naming an unknown or duplicate stream id do not raise at all: they are dropped
and counted in ``fakeai_stream_events_dropped_total``. Label values are arbitrary user text, so
the exposition must escape them and parse back to the same strings.

Every rejection row runs against a ``Telemetry`` that already holds some state (a billed request,
a failure, a budget, an open stream), so "unchanged" is compared against something non-trivial:
the full ``generate_latest`` text plus the in-process ``get_*`` views of all five trackers.
"""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fakeai_metrics import ErrorMetricsTracker, InvalidMetricInput, KeyIds, Telemetry
from fakeai_metrics.testing import ManualClock, samples

EP = "/v1/chat/completions"
MODEL = "gpt-4o"
KEY = "sk-live-key-1"
SECRET = "sk-SECRET-abc123"
OPEN = "stream-open"  # seeded open stream: prompt_tokens=10, api_key=KEY, one token
DROPPED = "fakeai_stream_events_dropped_total"


# --- state helpers -------------------------------------------------------------------------------

def _views(t: Telemetry) -> dict:
    """Everything the five trackers report in process (deterministic on a frozen clock)."""
    return {
        "metrics": t.metrics.get_metrics(),
        "metrics.active": t.metrics.get_active_streams(),
        "cost.summary": t.cost.get_summary(),
        "cost.key": t.cost.get_cost_by_key(KEY),
        "cost.secret": t.cost.get_cost_by_key(SECRET),
        "cost.budget": t.cost.check_budget(KEY),
        "models": t.models.get_all_models_stats(),
        "errors": t.errors.get_metrics(),
        "errors.slo": t.errors.get_slo_status().to_dict(),
        "errors.recent": t.errors.get_recent_errors(limit=1000),
        "errors.patterns": t.errors.get_error_patterns(min_count=1, recent_only=False),
        "streaming": t.streaming.get_metrics().to_dict(),
        "streaming.active": t.streaming.get_active_stream_count(),
    }


def _state(t: Telemetry) -> tuple[bytes, dict]:
    return generate_latest(t.registry), _views(t)


def _assert_unchanged(t: Telemetry, before: tuple[bytes, dict]) -> None:
    text_before, views_before = before
    text_after, views_after = _state(t)
    changed = [k for k in views_before if views_before[k] != views_after[k]]
    assert not changed, f"in-process views changed: {changed}"
    assert text_after == text_before, "the exposition changed"


@pytest.fixture
def seeded(telemetry: Telemetry, metrics_clock: ManualClock) -> Telemetry:
    t = telemetry
    t.cost.set_budget(KEY, 10.0, alert_threshold=0.5)
    t.record_request(endpoint=EP, model=MODEL, latency_s=0.2, prompt_tokens=100,
                     completion_tokens=20, cached_tokens=10, api_key=KEY)
    t.record_failure(endpoint=EP, model=MODEL, status_code=503, error_type="Overloaded",
                     message="busy", latency_s=0.1, api_key=KEY)
    t.start_stream(OPEN, endpoint=EP, model=MODEL, prompt_tokens=10, api_key=KEY)
    metrics_clock.advance(0.05)
    t.stream_token(OPEN, chunk_size_bytes=4)
    metrics_clock.advance(0.01)
    return t


# --- the rejection matrix --------------------------------------------------------------------------
# Each row: (call(t, value), value, argument name the message must contain), with a readable id.

BAD_COUNTS = [("negative", -1), ("float", 3.0), ("bool", True), ("none", None),
              ("huge", 10**12 + 1)]

TOKEN_SITES = [
    ("cost.record_usage", "prompt_tokens",
     lambda t, n: t.cost.record_usage(KEY, MODEL, EP, n, 1)),
    ("cost.record_usage", "completion_tokens",
     lambda t, n: t.cost.record_usage(KEY, MODEL, EP, 10, n)),
    ("cost.record_usage", "cached_tokens",
     lambda t, n: t.cost.record_usage(KEY, MODEL, EP, 10, 1, cached_tokens=n)),
    ("models.track_request", "prompt_tokens",
     lambda t, n: t.models.track_request(MODEL, EP, prompt_tokens=n)),
    ("models.track_request", "completion_tokens",
     lambda t, n: t.models.track_request(MODEL, EP, completion_tokens=n)),
    ("metrics.track_tokens", "count", lambda t, n: t.metrics.track_tokens(EP, n)),
    ("streaming.start_stream", "prompt_tokens",
     lambda t, n: t.streaming.start_stream("new", MODEL, prompt_tokens=n)),
    ("telemetry.record_request", "prompt_tokens",
     lambda t, n: t.record_request(endpoint=EP, model=MODEL, latency_s=0.1, prompt_tokens=n,
                                   api_key=KEY)),
    ("telemetry.record_request", "completion_tokens",
     lambda t, n: t.record_request(endpoint=EP, model=MODEL, latency_s=0.1,
                                   completion_tokens=n, api_key=KEY)),
    ("telemetry.record_request", "cached_tokens",
     lambda t, n: t.record_request(endpoint=EP, model=MODEL, latency_s=0.1, prompt_tokens=10,
                                   cached_tokens=n, api_key=KEY)),
    ("telemetry.start_stream", "prompt_tokens",
     lambda t, n: t.start_stream("new", endpoint=EP, model=MODEL, prompt_tokens=n)),
]

BAD_LATENCIES = [("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf),
                 ("negative", -0.001), ("string", "0.1")]

LATENCY_SITES = [
    ("metrics.track_response", "latency", lambda t, x: t.metrics.track_response(EP, x)),
    ("models.track_request", "latency_ms",
     lambda t, x: t.models.track_request(MODEL, EP, 1, 1, latency_ms=x)),
    ("telemetry.record_request", "latency_s",
     lambda t, x: t.record_request(endpoint=EP, model=MODEL, latency_s=x, prompt_tokens=1,
                                   api_key=KEY)),
    ("telemetry.record_failure", "latency_s",
     lambda t, x: t.record_failure(endpoint=EP, model=MODEL, status_code=500,
                                   error_type="ServerError", latency_s=x, api_key=KEY)),
]

EMPTY, INT, NONE, BYTES = ("empty", ""), ("int", 42), ("none", None), ("bytes", b"x")

LABEL_SITES = [
    ("metrics.track_request", "endpoint", lambda t, x: t.metrics.track_request(x),
     (EMPTY, INT, NONE)),
    ("metrics.start_stream", "stream_id", lambda t, x: t.metrics.start_stream(x, EP),
     (EMPTY, NONE)),
    ("cost.record_usage", "model", lambda t, x: t.cost.record_usage(KEY, x, EP, 1, 1),
     (EMPTY, INT, NONE)),
    ("cost.record_usage", "endpoint", lambda t, x: t.cost.record_usage(KEY, MODEL, x, 1, 1),
     (EMPTY, NONE)),
    # (api_key=None is accepted: it bills the key id "anonymous")
    ("cost.record_usage", "api_key", lambda t, x: t.cost.record_usage(x, MODEL, EP, 1, 1),
     (EMPTY, INT, BYTES)),
    ("cost.set_budget", "api_key", lambda t, x: t.cost.set_budget(x, 5.0), (EMPTY, INT)),
    ("models.track_request", "model", lambda t, x: t.models.track_request(x, EP, 1, 1),
     (EMPTY, NONE)),
    ("models.track_request", "endpoint", lambda t, x: t.models.track_request(MODEL, x, 1, 1),
     (EMPTY, INT)),
    ("models.track_request", "user",
     lambda t, x: t.models.track_request(MODEL, EP, 1, 1, user=x), (EMPTY,)),
    ("errors.record_success", "endpoint", lambda t, x: t.errors.record_success(x, MODEL),
     (EMPTY, NONE)),
    ("errors.record_success", "model", lambda t, x: t.errors.record_success(EP, x),
     (EMPTY, INT)),
    ("errors.record_error", "endpoint", lambda t, x: t.errors.record_error(x, 500, "E"),
     (EMPTY, NONE)),
    ("errors.record_error", "error_type", lambda t, x: t.errors.record_error(EP, 500, x),
     (EMPTY, NONE)),
    ("errors.record_error", "model",
     lambda t, x: t.errors.record_error(EP, 500, "E", model=x), (EMPTY, INT)),
    ("errors.record_error", "api_key",
     lambda t, x: t.errors.record_error(EP, 500, "E", api_key=x),
     (EMPTY, INT, ("list", ["sk-in-a-list"]))),
    ("errors.record_error", "error_message",
     lambda t, x: t.errors.record_error(EP, 500, "E", x), (INT, NONE)),
    ("streaming.start_stream", "stream_id", lambda t, x: t.streaming.start_stream(x, MODEL),
     (EMPTY, NONE)),
    ("streaming.start_stream", "model", lambda t, x: t.streaming.start_stream("new", x),
     (EMPTY, NONE)),
    ("telemetry.record_request", "endpoint",
     lambda t, x: t.record_request(endpoint=x, model=MODEL, latency_s=0.1), (EMPTY, NONE)),
    ("telemetry.record_request", "model",
     lambda t, x: t.record_request(endpoint=EP, model=x, latency_s=0.1), (EMPTY, NONE)),
    ("telemetry.record_request", "api_key",
     lambda t, x: t.record_request(endpoint=EP, model=MODEL, latency_s=0.1, prompt_tokens=1,
                                   api_key=x), (EMPTY, INT)),
    ("telemetry.record_failure", "endpoint",
     lambda t, x: t.record_failure(endpoint=x, model=MODEL, status_code=500, error_type="E"),
     (EMPTY,)),
    ("telemetry.record_failure", "model",
     lambda t, x: t.record_failure(endpoint=EP, model=x, status_code=500, error_type="E"),
     (EMPTY, INT)),
    ("telemetry.record_failure", "error_type",
     lambda t, x: t.record_failure(endpoint=EP, model=MODEL, status_code=500, error_type=x),
     (EMPTY,)),
    ("telemetry.record_failure", "api_key",
     lambda t, x: t.record_failure(endpoint=EP, model=MODEL, status_code=500, error_type="E",
                                   api_key=x), (EMPTY, INT, ("list", ["sk-in-a-list"]))),
    ("telemetry.start_stream", "stream_id",
     lambda t, x: t.start_stream(x, endpoint=EP, model=MODEL), (EMPTY,)),
    ("telemetry.start_stream", "model",
     lambda t, x: t.start_stream("new", endpoint=EP, model=x), (EMPTY,)),
    # The stream paths must validate before the first tracker records (all-or-nothing).
    ("telemetry.start_stream", "endpoint",
     lambda t, x: t.start_stream("new", endpoint=x, model=MODEL), (EMPTY,)),
    ("telemetry.start_stream", "api_key",
     lambda t, x: t.start_stream("new", endpoint=EP, model=MODEL, api_key=x), (EMPTY, INT)),
]

BAD_STATUS = [("99", 99), ("600", 600), ("zero", 0), ("negative", -1), ("string", "500"),
              ("float", 500.0), ("bool", True), ("none", None)]

STATUS_SITES = [
    ("errors.record_error", lambda t, s: t.errors.record_error(EP, s, "E", "boom", model=MODEL)),
    ("telemetry.record_failure",
     lambda t, s: t.record_failure(endpoint=EP, model=MODEL, status_code=s, error_type="E",
                                   api_key=KEY)),
]

OTHER_ROWS = [
    # cached tokens are a subset of the prompt
    ("cost.record_usage-cached>prompt", "cached_tokens",
     lambda t: t.cost.record_usage(KEY, MODEL, EP, 5, 1, cached_tokens=6)),
    ("telemetry.record_request-cached>prompt", "cached_tokens",
     lambda t: t.record_request(endpoint=EP, model=MODEL, latency_s=0.1, prompt_tokens=5,
                                cached_tokens=6, api_key=KEY)),
    ("telemetry.finish_stream-cached>prompt", "cached_tokens",
     lambda t: t.finish_stream(OPEN, cached_tokens=11)),
    ("telemetry.finish_stream-completion_tokens=negative", "completion_tokens",
     lambda t: t.finish_stream(OPEN, completion_tokens=-1)),
    ("telemetry.finish_stream-completion_tokens=float", "completion_tokens",
     lambda t: t.finish_stream(OPEN, completion_tokens=2.0)),
    ("telemetry.fail_stream-status_code=700", "status_code",
     lambda t: t.fail_stream(OPEN, status_code=700)),
    # budgets: limit > 0 and finite, alert threshold in (0, 1]
    *[(f"cost.set_budget-limit={name}", "limit", lambda t, x=x: t.cost.set_budget(KEY, x))
      for name, x in [("negative", -1.0), ("zero", 0), ("zero-float", 0.0), ("nan", math.nan),
                      ("inf", math.inf), ("bool", True), ("none", None), ("string", "10")]],
    *[(f"cost.set_budget-alert_threshold={name}", "alert_threshold",
       lambda t, x=x: t.cost.set_budget(KEY, 20.0, alert_threshold=x))
      for name, x in [("zero", 0.0), ("negative", -0.1), ("above-one", 1.01), ("nan", math.nan),
                      ("inf", math.inf), ("bool", True)]],
    *[(f"cost.set_budget-new-key-limit={name}", "limit",
       lambda t, x=x: t.cost.set_budget("sk-fresh", x)) for name, x in [("negative", -5.0)]],
]


def _rows():
    for site, arg, call in TOKEN_SITES:
        for name, bad in BAD_COUNTS:
            yield pytest.param(lambda t, call=call, bad=bad: call(t, bad), arg,
                               id=f"{site}-{arg}={name}")
    for site, arg, call in LATENCY_SITES:
        for name, bad in BAD_LATENCIES:
            yield pytest.param(lambda t, call=call, bad=bad: call(t, bad), arg,
                               id=f"{site}-{arg}={name}")
    for site, arg, call, bads in LABEL_SITES:
        for name, bad in bads:
            yield pytest.param(lambda t, call=call, bad=bad: call(t, bad), arg,
                               id=f"{site}-{arg}={name}")
    for site, call in STATUS_SITES:
        for name, bad in BAD_STATUS:
            yield pytest.param(lambda t, call=call, bad=bad: call(t, bad), "status_code",
                               id=f"{site}-status_code={name}")
    for row_id, arg, call in OTHER_ROWS:
        yield pytest.param(call, arg, id=row_id)


@pytest.mark.parametrize("call, argument", list(_rows()))
def test_rejected_call_names_argument_and_changes_nothing(seeded, call, argument):
    before = _state(seeded)
    with pytest.raises(ValueError) as excinfo:
        call(seeded)
    assert isinstance(excinfo.value, InvalidMetricInput), type(excinfo.value)
    assert argument in str(excinfo.value), f"message does not name {argument!r}: {excinfo.value}"
    _assert_unchanged(seeded, before)


@pytest.mark.parametrize("call", [
    pytest.param(lambda t: t.record_request(endpoint=EP, model=MODEL, latency_s=1e306,
                                            prompt_tokens=1, api_key=KEY),
                 id="telemetry.record_request"),
    pytest.param(lambda t: t.record_failure(endpoint=EP, model=MODEL, status_code=500,
                                            error_type="E", latency_s=1e306),
                 id="telemetry.record_failure"),
])
def test_huge_finite_latency_is_all_or_nothing(seeded, call):
    """1e306 s is finite (so valid as seconds) but overflows to inf once turned into ms."""
    before_requests = sum(samples(seeded.registry, "fakeai_requests_total").values())
    before = _state(seeded)
    try:
        call(seeded)
    except ValueError:
        _assert_unchanged(seeded, before)
    else:
        after = sum(samples(seeded.registry, "fakeai_requests_total").values())
        assert after == before_requests + 1


@pytest.mark.parametrize("objective", [0, 0.0, 1, 1.0, -0.1, 1.5, math.nan, math.inf, True, None],
                         ids=["int-0", "0.0", "int-1", "1.0", "negative", "1.5", "nan", "inf",
                              "bool", "none"])
def test_error_tracker_rejects_slo_outside_open_unit_interval(objective):
    registry = CollectorRegistry(auto_describe=True)
    with pytest.raises(InvalidMetricInput, match="error_budget_slo"):
        ErrorMetricsTracker(error_budget_slo=objective, registry=registry, clock=ManualClock())
    assert generate_latest(registry) == b"", "a rejected tracker left series in the registry"
    # Nothing half-registered: a valid tracker can still take the registry.
    ErrorMetricsTracker(error_budget_slo=0.99, registry=registry, clock=ManualClock())
    assert samples(registry, "fakeai_slo_objective_ratio") == {(("slo", "availability"),): 0.99}


# --- unknown, duplicate and repeated stream ids: dropped and counted, never raised ---------------

def _without_dropped(registry: CollectorRegistry) -> list:
    """Every exported sample except the dropped-events counter."""
    return sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                  for f in registry.collect() for s in f.samples if s.name != DROPPED)


def _dropped(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {(dict(k)["event"], dict(k)["reason"]): v
            for k, v in samples(registry, DROPPED).items()}


@pytest.fixture
def live_stream(streaming_tracker, metrics_clock):
    streaming_tracker.start_stream("live", MODEL, prompt_tokens=7)
    metrics_clock.advance(0.1)
    streaming_tracker.record_token("live", "a", chunk_size_bytes=3)
    metrics_clock.advance(0.02)
    streaming_tracker.record_token("live", "b", chunk_size_bytes=3)
    metrics_clock.advance(0.5)
    return streaming_tracker


@pytest.mark.parametrize("call", [
    pytest.param(lambda s: s.record_token("ghost", "x", chunk_size_bytes=5), id="record_token"),
    pytest.param(lambda s: s.complete_stream("ghost"), id="complete_stream"),
    pytest.param(lambda s: s.fail_stream("ghost", "boom"), id="fail_stream"),
])
def test_unknown_stream_id_is_dropped_and_counted(live_stream, metrics_registry, call):
    exported, stats = _without_dropped(metrics_registry), live_stream.get_metrics()
    dropped_before = _dropped(metrics_registry)

    assert call(live_stream) is None

    assert _without_dropped(metrics_registry) == exported
    assert live_stream.get_metrics() == stats
    assert live_stream.get_active_stream_count() == 1
    dropped_after = _dropped(metrics_registry)
    changed = {k: dropped_after[k] - dropped_before.get(k, 0) for k in dropped_after
               if dropped_after[k] != dropped_before.get(k, 0)}
    assert len(changed) == 1 and list(changed.values()) == [1], changed
    ((event, reason),) = changed
    assert reason == "unknown_stream"
    assert event


def test_each_unknown_stream_call_has_its_own_event_label(live_stream, metrics_registry):
    live_stream.record_token("ghost")
    live_stream.complete_stream("ghost")
    live_stream.fail_stream("ghost")
    live_stream.record_token("ghost")
    dropped = _dropped(metrics_registry)
    assert sum(dropped.values()) == 4
    assert {reason for _, reason in dropped} == {"unknown_stream"}
    assert sorted(dropped.values()) == [1, 1, 2]  # three distinct events, tokens counted twice


def test_duplicate_start_stream_is_ignored_and_counted(streaming_tracker, metrics_registry,
                                                       metrics_clock):
    streaming_tracker.start_stream("s", MODEL, prompt_tokens=5)
    metrics_clock.advance(1.0)
    exported = _without_dropped(metrics_registry)

    streaming_tracker.start_stream("s", "other-model", prompt_tokens=99)  # must not raise

    assert _without_dropped(metrics_registry) == exported
    assert _dropped(metrics_registry) == {("start", "duplicate_stream"): 1}
    assert streaming_tracker.get_active_stream_count() == 1
    # The original stream is intact: its start time, model and prompt tokens.
    metrics_clock.advance(0.25)
    streaming_tracker.record_token("s", "tok")
    summary = streaming_tracker.complete_stream("s")
    assert summary.model == MODEL and summary.prompt_tokens == 5
    assert summary.ttft_s == pytest.approx(1.25)
    assert samples(metrics_registry, "fakeai_streams_total") == {
        (("model", MODEL), ("outcome", "completed")): 1}


@pytest.mark.parametrize("second", [
    pytest.param(lambda s: s.complete_stream("s"), id="complete-again"),
    pytest.param(lambda s: s.fail_stream("s"), id="fail-after-complete"),
])
def test_stream_finished_twice_counts_the_second_as_unknown(streaming_tracker, metrics_registry,
                                                            metrics_clock, second):
    streaming_tracker.start_stream("s", MODEL)
    metrics_clock.advance(0.1)
    streaming_tracker.record_token("s")
    metrics_clock.advance(0.1)
    assert streaming_tracker.complete_stream("s") is not None
    exported, stats = _without_dropped(metrics_registry), streaming_tracker.get_metrics()

    assert second(streaming_tracker) is None

    assert _without_dropped(metrics_registry) == exported
    assert streaming_tracker.get_metrics() == stats
    assert stats.completed_streams == 1 and stats.failed_streams == 0
    dropped = _dropped(metrics_registry)
    assert sum(dropped.values()) == 1
    assert [reason for _, reason in dropped] == ["unknown_stream"]


# --- API keys never appear in exception messages ------------------------------------------------

def _open_secret_stream(t: Telemetry) -> None:
    t.start_stream("secret-stream", endpoint=EP, model=MODEL, prompt_tokens=3, api_key=SECRET)


SECRET_ROWS = [
    ("cost.record_usage-negative-prompt",
     lambda t: t.cost.record_usage(SECRET, MODEL, EP, -1, 1)),
    ("cost.record_usage-int-model", lambda t: t.cost.record_usage(SECRET, 42, EP, 1, 1)),
    ("cost.record_usage-cached>prompt",
     lambda t: t.cost.record_usage(SECRET, MODEL, EP, 5, 1, cached_tokens=6)),
    ("cost.set_budget-negative-limit", lambda t: t.cost.set_budget(SECRET, -5.0)),
    ("cost.set_budget-bad-threshold",
     lambda t: t.cost.set_budget(SECRET, 5.0, alert_threshold=2.0)),
    ("cost.alias_key-alias-is-the-key", lambda t: t.cost.alias_key(SECRET, SECRET)),
    ("cost.alias_key-empty-alias", lambda t: t.cost.alias_key(SECRET, "")),
    ("keyids.alias-alias-is-the-key", lambda t: KeyIds().alias(SECRET, SECRET)),
    ("models.track_request-negative-tokens",
     lambda t: t.models.track_request(MODEL, EP, -1, user=SECRET)),
    ("errors.record_error-status-700",
     lambda t: t.errors.record_error(EP, 700, "Auth", f"bad key {SECRET}", api_key=SECRET)),
    ("errors.record_error-empty-error_type",
     lambda t: t.errors.record_error(EP, 401, "", f"bad key {SECRET}", api_key=SECRET)),
    ("errors.record_error-non-string-message",
     lambda t: t.errors.record_error(EP, 401, "Auth", 42, api_key=SECRET)),
    ("errors.record_error-key-passed-as-status_code",
     lambda t: t.errors.record_error(EP, SECRET, "Auth", api_key=SECRET)),
    ("telemetry.record_request-bool-tokens",
     lambda t: t.record_request(endpoint=EP, model=MODEL, latency_s=0.1, prompt_tokens=True,
                                api_key=SECRET)),
    ("telemetry.record_request-nan-latency",
     lambda t: t.record_request(endpoint=EP, model=MODEL, latency_s=math.nan, api_key=SECRET)),
    ("telemetry.record_request-key-in-tuple",
     lambda t: t.record_request(endpoint=EP, model=MODEL, latency_s=0.1, api_key=(SECRET,))),
    ("telemetry.record_request-key-as-bytes",
     lambda t: t.record_request(endpoint=EP, model=MODEL, latency_s=0.1,
                                api_key=SECRET.encode())),
    ("telemetry.record_failure-status-1000",
     lambda t: t.record_failure(endpoint=EP, model=MODEL, status_code=1000, error_type="Auth",
                                message=f"invalid key {SECRET}", api_key=SECRET)),
    ("telemetry.record_failure-key-as-bytes",
     lambda t: t.record_failure(endpoint=EP, model=MODEL, status_code=401, error_type="Auth",
                                message=SECRET, api_key=SECRET.encode())),
    ("telemetry.start_stream-negative-prompt",
     lambda t: t.start_stream("s", endpoint=EP, model=MODEL, prompt_tokens=-1, api_key=SECRET)),
    ("telemetry.finish_stream-negative-completion",
     lambda t: (_open_secret_stream(t),
                t.finish_stream("secret-stream", completion_tokens=-1))),
]


@pytest.mark.parametrize("call", [pytest.param(c, id=i) for i, c in SECRET_ROWS])
def test_exception_messages_never_contain_the_raw_api_key(telemetry, call):
    with pytest.raises(ValueError) as excinfo:
        call(telemetry)
    chain, exc = [], excinfo.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for e in chain:
        assert SECRET not in str(e), f"{type(e).__name__} leaks the key: {e}"
        assert SECRET not in repr(e.args)
    assert SECRET.encode() not in generate_latest(telemetry.registry)


def test_key_in_a_recorded_error_message_is_scrubbed_everywhere(telemetry):
    telemetry.record_failure(endpoint=EP, model=MODEL, status_code=401, error_type="Auth",
                             message=f"Invalid API key {SECRET} provided", api_key=SECRET)
    assert SECRET.encode() not in generate_latest(telemetry.registry)
    (record,) = telemetry.errors.get_recent_errors()
    assert SECRET not in record.error_message and SECRET not in repr(record)
    assert record.api_key and record.api_key != SECRET
    patterns = telemetry.errors.get_error_patterns(min_count=1)
    assert patterns and all(SECRET not in repr(p) for p in patterns)


# --- label values with quotes, backslashes, newlines and unicode round-trip ---------------------

WEIRD_NAMES = [
    pytest.param('quo"ted', id="quote"),
    pytest.param("back\\slash\\", id="backslash"),
    pytest.param("new\nline\n", id="newline"),
    pytest.param("模型-ümlaut-🚀", id="unicode"),
    pytest.param('evil",model="injected', id="label-injection"),
    pytest.param('all\\"of\n them ✓ \\n', id="everything"),
]


@pytest.mark.parametrize("name", WEIRD_NAMES)
def test_weird_label_values_round_trip_through_the_exposition(telemetry, metrics_clock,
                                                              metrics_registry, name):
    endpoint = f"/v1/{name}"
    telemetry.record_request(endpoint=endpoint, model=name, latency_s=0.2, prompt_tokens=10,
                             completion_tokens=2, api_key=KEY)
    telemetry.record_failure(endpoint=endpoint, model=name, status_code=500, error_type=name)
    telemetry.start_stream("s", endpoint=endpoint, model=name, prompt_tokens=1)
    metrics_clock.advance(0.05)
    telemetry.stream_token("s", chunk_size_bytes=2)
    telemetry.finish_stream("s")

    text = generate_latest(metrics_registry).decode("utf-8")
    parsed = {(s.name, tuple(sorted(s.labels.items())), s.value)
              for f in text_string_to_metric_families(text) for s in f.samples}
    collected = {(s.name, tuple(sorted(s.labels.items())), s.value)
                 for f in metrics_registry.collect() for s in f.samples}
    assert parsed == collected

    def label_values(sample_name: str, label: str) -> set[str]:
        return {dict(labels)[label] for n, labels, _ in parsed if n == sample_name}

    assert label_values("fakeai_requests_total", "model") == {name}
    assert label_values("fakeai_requests_total", "endpoint") == {endpoint}
    assert label_values("fakeai_errors_total", "error_type") == {name}
    assert label_values("fakeai_tokens_total", "model") == {name}
    assert label_values("fakeai_streams_total", "model") == {name}
    assert label_values("fakeai_endpoint_requests_total", "endpoint") == {endpoint}
    outcomes = {(dict(lb)["model"], dict(lb)["outcome"]): v for n, lb, v in parsed
                if n == "fakeai_requests_total"}
    assert outcomes == {(name, "success"): 2, (name, "error"): 1}
