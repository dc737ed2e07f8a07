"""Every argument of every public call, and of every configuration object, is checked up front.

The rows are generated from the signatures: each public method of the five trackers, the hub,
``KeyIds`` and ``LabelLimits`` must be either a recording call with a valid call in ``VALID`` or
listed in ``NOT_RECORDING`` with the reason, and each of its parameters must have a category in
``CATEGORY`` whose bad values it must refuse. A new method or a new argument without a row fails
``test_every_public_argument_has_a_row``, so none can be forgotten.

A refusal is ``InvalidMetricInput`` naming the argument, and changes nothing: the exposition and
every in-process view of the five trackers are compared before and after (``test_bad_input``'s
state helpers), against a hub that already holds state.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from fakeai_metrics import (CostTracker, ErrorMetricsTracker, InvalidMetricInput, KeyIds,
                            LabelLimits, MetricsTracker, ModelMetricsTracker, Price, PriceTable,
                            StreamingMetricsTracker, Telemetry)
from fakeai_metrics.catalog import owned_by
from fakeai_metrics.testing import ManualClock
from fakeai_metrics.tracker import Tracker
from test_bad_input import EP, KEY, MODEL, OPEN, _assert_unchanged, _state, seeded  # noqa: F401

NAN, INF = math.nan, math.inf
SURROGATE = "gpt\ud800x"  # valid in JSON ("\ud800"), not encodable as UTF-8

# --- recording calls -----------------------------------------------------------------------------

#: One valid call per recording method, every parameter given (on the ``seeded`` hub, where
#: ``OPEN`` is an open stream and ``KEY`` has a budget).
VALID: dict[str, dict[str, Any]] = {
    "Telemetry.alias_key": dict(api_key="sk-new-key", alias="team-a"),
    "Telemetry.record_request": dict(endpoint=EP, model=MODEL, latency_s=0.1, prompt_tokens=5,
                                     completion_tokens=5, cached_tokens=1, api_key=KEY,
                                     finish_reason="length"),
    "Telemetry.record_failure": dict(endpoint=EP, model=MODEL, status_code=500, error_type="E",
                                     message="m", latency_s=0.1, api_key=KEY,
                                     request_id="req-1"),
    "Telemetry.start_stream": dict(stream_id="new", endpoint=EP, model=MODEL, prompt_tokens=3,
                                   api_key=KEY, started_at=0.0),
    "Telemetry.stream_token": dict(stream_id=OPEN, chunk_size_bytes=3),
    "Telemetry.finish_stream": dict(stream_id=OPEN, finish_reason="stop", completion_tokens=3,
                                    prompt_tokens=10, cached_tokens=0),
    "Telemetry.fail_stream": dict(stream_id=OPEN, status_code=500, error_type="E", message="m"),
    "MetricsTracker.track_request": dict(endpoint=EP),
    "MetricsTracker.track_response": dict(endpoint=EP, latency=0.1),
    "MetricsTracker.track_tokens": dict(endpoint=EP, count=3),
    "MetricsTracker.track_error": dict(endpoint=EP),
    "MetricsTracker.start_stream": dict(stream_id="new", endpoint=EP, started_at=0.0),
    "MetricsTracker.track_stream_first_token": dict(stream_id=OPEN),
    "MetricsTracker.track_stream_token": dict(stream_id=OPEN),
    "MetricsTracker.complete_stream": dict(stream_id=OPEN, endpoint=EP, tokens=2, ttft_s=0.05),
    "MetricsTracker.fail_stream": dict(stream_id=OPEN, endpoint=EP, error_message="m"),
    "CostTracker.alias_key": dict(api_key="sk-new-key", alias="team-a"),
    "CostTracker.record_usage": dict(api_key=KEY, model=MODEL, endpoint=EP, prompt_tokens=5,
                                     completion_tokens=5, cached_tokens=1, metadata={}),
    "CostTracker.set_budget": dict(api_key=KEY, limit=5.0, period="daily", limit_type="hard",
                                   alert_threshold=0.5),
    "CostTracker.remove_budget": dict(api_key=KEY),
    "CostTracker.clear_history": dict(api_key=KEY),
    "ModelMetricsTracker.track_request": dict(model=MODEL, endpoint=EP, prompt_tokens=5,
                                              completion_tokens=5, latency_ms=10.0, user=KEY,
                                              error=True, cached_tokens=1, error_type="E"),
    "ErrorMetricsTracker.record_success": dict(endpoint=EP, model=MODEL),
    "ErrorMetricsTracker.record_error": dict(endpoint=EP, status_code=500, error_type="E",
                                             error_message="m", model=MODEL, api_key=KEY,
                                             request_id="r-1", user_id="u-1", stack_trace="tb"),
    "StreamingMetricsTracker.start_stream": dict(stream_id="new", model=MODEL, prompt_tokens=3,
                                                 temperature=0.7, max_tokens=10, client_id="c",
                                                 started_at=0.0),
    "StreamingMetricsTracker.record_token": dict(stream_id=OPEN, token="x", chunk_size_bytes=3),
    "StreamingMetricsTracker.complete_stream": dict(stream_id=OPEN, finish_reason="stop",
                                                    client_id="c"),
    "StreamingMetricsTracker.fail_stream": dict(stream_id=OPEN, error_message="m"),
    "StreamingMetricsTracker.drop": dict(event="start", reason="capacity"),
    "KeyIds.alias": dict(api_key="sk-new-key", alias="team-a"),
    "MetricsTracker.start_request_timer": dict(endpoint=EP),
    "MetricsTracker.end_request_timer": dict(endpoint=EP, request_id=12345),
    "ModelMetricsTracker.track_tokens": dict(model=MODEL, prompt_tokens=1, completion_tokens=1),
    "ModelMetricsTracker.track_latency": dict(model=MODEL, latency_ms=10.0),
    "ErrorMetricsTracker.record_request": dict(endpoint=EP, model=MODEL),
    "ErrorMetricsTracker.cleanup_old_patterns": dict(age_seconds=3600),
    "StreamingMetricsTracker.record_first_token_time": dict(stream_id=OPEN, ttft_ms=50.0),
    "StreamingMetricsTracker.record_backpressure": dict(stream_id=OPEN),
}

#: Public methods that record nothing a client sends, with why they are not rows.
NOT_RECORDING = {
    **{f"{cls}.{m}": "reads state" for cls, ms in {
        "Telemetry": ["now", "slo_status"],
        "MetricsTracker": ["get_active_streams", "get_metrics", "get_streaming_stats"],
        "CostTracker": ["allows", "check_budget", "get_cost_by_endpoint", "get_cost_by_key",
                        "get_cost_by_model", "get_summary", "get_total_cost"],
        "ModelMetricsTracker": ["compare_models", "get_all_models_stats", "get_cost_by_model",
                                "get_model_ranking", "get_model_stats"],
        "ErrorMetricsTracker": ["get_burn_rates", "get_error_patterns", "get_metrics",
                                "get_recent_errors", "get_slo_status"],
        "StreamingMetricsTracker": ["get_active_stream_count", "get_metrics",
                                    "get_stream_details"],
    }.items() for m in ms},
    **{f"CostTracker.{m}": "reads state" for m in (
        "get_batch_savings", "get_cache_savings", "get_optimization_suggestions",
        "get_projected_monthly_cost")},
    "MetricsTracker.get_csv_metrics": "reads state",
    "MetricsTracker.get_detailed_health": "reads state",
    "ModelMetricsTracker.get_multi_dimensional_stats": "reads state",
    **{f"{cls}.get_prometheus_metrics": "reads state (the tracker's own exposition)" for cls in (
        "MetricsTracker", "CostTracker", "ModelMetricsTracker", "ErrorMetricsTracker",
        "StreamingMetricsTracker", "LabelLimits")},
    **{f"{cls}.shutdown": "FakeAI's stop call: idempotent, takes no argument" for cls in (
        "MetricsTracker", "CostTracker")},
    **{f"{cls}.{m}": "forgets everything; takes no argument" for cls, m in [
        ("ModelMetricsTracker", "reset_stats"), ("ErrorMetricsTracker", "reset"),
        ("StreamingMetricsTracker", "reset")]},
    **{f"{cls}.{m}": "prometheus_client's collector protocol" for cls in (
        "MetricsTracker", "CostTracker", "ModelMetricsTracker", "ErrorMetricsTracker",
        "StreamingMetricsTracker", "LabelLimits") for m in ("collect", "describe")},
    **{f"LabelLimits.{m}": "plumbing the trackers call with values they have checked" for m in (
        "admit", "api_key", "begin_request", "end_request", "endpoint", "error_type",
        "label_of", "model")},
    **{f"{cls}.close": "stops the budget store's thread; takes no argument"
       for cls in ("Telemetry", "CostTracker")},
    "ErrorMetricsTracker.share_slo": "configuration (test_share_slo_needs_a_shared_store)",
    "KeyIds.__call__": "plumbing: every caller checks the key through it (label check inside)",
    "KeyIds.scrub": "plumbing: replaces keys the caller has checked",
}

#: Stream ids that name an open stream are looked up, not recorded: a bad one is dropped
#: (``test_stream_lookups_drop_bad_ids``).
LOOKUP_STREAM_IDS = {
    "Telemetry.stream_token", "Telemetry.finish_stream", "Telemetry.fail_stream",
    "MetricsTracker.track_stream_first_token", "MetricsTracker.track_stream_token",
    "MetricsTracker.complete_stream", "MetricsTracker.fail_stream",
    "StreamingMetricsTracker.record_token", "StreamingMetricsTracker.complete_stream",
    "StreamingMetricsTracker.fail_stream", "StreamingMetricsTracker.record_first_token_time",
    "StreamingMetricsTracker.record_backpressure",
}

LABEL = [("empty", ""), ("int", 42), ("bytes", b"x"), ("surrogate", SURROGATE)]
TOKENS = [("negative", -1), ("float", 3.0), ("bool", True), ("string", "5"), ("huge", 10**12 + 1)]
SECONDS = [("nan", NAN), ("inf", INF), ("negative", -0.001), ("string", "0.1"), ("bool", True),
           ("huge", 1e30)]
NUMBER = [("nan", NAN), ("inf", INF), ("negative", -1.0), ("string", "1"), ("bool", True)]
STATUS = [("99", 99), ("600", 600), ("string", "500"), ("float", 500.0), ("bool", True)]
TEXT = [("int", 42), ("bytes", b"x")]
BOOL = [("string", "yes"), ("int", 1)]
BYTES = [("negative", -1), ("huge", 10**30), ("float", 1.5), ("string", "3")]
POSITIVE = [("zero", 0), ("negative", -1.0), ("nan", NAN), ("inf", INF), ("string", "10"),
            ("bool", True)]
RATIO = [("zero", 0.0), ("above-one", 1.01), ("nan", NAN), ("bool", True)]
ENUM = [("unknown", "hourly"), ("int", 3)]
MAPPING = [("list", [1]), ("string", "x")]

#: Bad values by parameter name (``None`` is added for parameters without a None default).
CATEGORY: dict[str, list[tuple[str, Any]] | None] = {
    **dict.fromkeys(["endpoint", "model", "api_key", "user", "user_id", "error_type",
                     "stream_id", "request_id", "client_id", "finish_reason", "alias", "event",
                     "reason"], LABEL),
    **dict.fromkeys(["prompt_tokens", "completion_tokens", "cached_tokens", "count", "tokens",
                     "max_tokens"], TOKENS),
    **dict.fromkeys(["latency", "latency_s", "ttft_s", "latency_ms", "ttft_ms"], SECONDS),
    **dict.fromkeys(["temperature", "started_at"], NUMBER),
    **dict.fromkeys(["error_message", "message", "stack_trace"], TEXT),
    "status_code": STATUS, "error": BOOL, "chunk_size_bytes": BYTES, "limit": POSITIVE,
    "alert_threshold": RATIO, "period": ENUM, "limit_type": ENUM, "metadata": MAPPING,
    "token": None,  # FakeAI's token text: not looked at, not kept
    "age_seconds": [("nan", NAN), ("string", "1"), ("bool", True)],  # <= 0 clears all (FakeAI)
}
#: Where one method's argument is of another kind than the name says elsewhere.
OVERRIDE = {("MetricsTracker.end_request_timer", "request_id"):
            [("string", "x"), ("float", 1.5), ("bool", True)]}  # the int start_request_timer gave


def _owners() -> dict[str, Callable[[Telemetry], Any]]:
    """Qualified method name -> how to find its object on a hub."""
    owners: dict[str, Callable[[Telemetry], Any]] = {
        "Telemetry": lambda t: t, "MetricsTracker": lambda t: t.metrics,
        "CostTracker": lambda t: t.cost, "ModelMetricsTracker": lambda t: t.models,
        "ErrorMetricsTracker": lambda t: t.errors, "StreamingMetricsTracker": lambda t: t.streaming,
        "KeyIds": lambda t: t.key_ids, "LabelLimits": lambda t: t.limits,
    }
    return owners


PUBLIC_CLASSES = (Telemetry, MetricsTracker, CostTracker, ModelMetricsTracker, ErrorMetricsTracker,
                  StreamingMetricsTracker, KeyIds, LabelLimits)


def _public_methods() -> dict[str, inspect.Signature]:
    found = {}
    for cls in PUBLIC_CLASSES:
        for name, fn in inspect.getmembers(cls, inspect.isfunction):
            if name == "__init__" or (name.startswith("_") and name != "__call__"):
                continue
            found[f"{cls.__name__}.{name}"] = inspect.signature(fn)
    return found


def _parameters(sig: inspect.Signature) -> list[inspect.Parameter]:
    return [p for name, p in sig.parameters.items() if name != "self"]


def test_every_public_argument_has_a_row():
    methods = _public_methods()
    unlisted = sorted(set(methods) - set(VALID) - set(NOT_RECORDING))
    assert not unlisted, f"public methods with neither a VALID call nor a reason: {unlisted}"
    stale = sorted((set(VALID) | set(NOT_RECORDING)) - set(methods))
    assert not stale, f"rows for methods that no longer exist: {stale}"
    for qualified, kwargs in VALID.items():
        names = [p.name for p in _parameters(methods[qualified])]
        assert sorted(names) == sorted(kwargs), f"{qualified}: VALID must give every argument"
        missing = [n for n in names if n not in CATEGORY]
        assert not missing, f"{qualified}: no bad-value category for {missing}"


def _bad_rows():
    methods = _public_methods()
    owners = _owners()
    for qualified, kwargs in VALID.items():
        params = {p.name: p for p in _parameters(methods[qualified])}
        for name in kwargs:
            bads = OVERRIDE.get((qualified, name), CATEGORY.get(name))
            if bads is None or (name == "stream_id" and qualified in LOOKUP_STREAM_IDS):
                continue
            if "None" not in str(params[name].annotation):
                bads = [*bads, ("none", None)]
            for bad_id, bad in bads:
                yield pytest.param(qualified, owners[qualified.split(".")[0]], kwargs, name, bad,
                                   id=f"{qualified}-{name}={bad_id}")


def test_matrix_is_large():
    """The generated matrix covers every recording call (a guard against an empty generator)."""
    rows = list(_bad_rows())
    assert {r.values[0] for r in rows} | LOOKUP_STREAM_IDS == set(VALID)
    assert len(rows) > 400


@pytest.mark.parametrize("qualified, owner, kwargs, argument, bad", list(_bad_rows()))
def test_bad_argument_is_refused_and_changes_nothing(seeded, qualified, owner, kwargs, argument,
                                                     bad):
    method = getattr(owner(seeded), qualified.split(".")[1])
    before = _state(seeded)
    with pytest.raises(InvalidMetricInput) as excinfo:
        method(**{**kwargs, argument: bad})
    assert argument in str(excinfo.value), f"the message does not name {argument!r}: " \
                                           f"{excinfo.value}"
    assert KEY not in str(excinfo.value)
    _assert_unchanged(seeded, before)


@pytest.mark.parametrize("qualified", sorted(VALID))
def test_valid_row_is_accepted(seeded, qualified):
    """The VALID calls are valid, so each bad row differs from an accepted call in one value."""
    owner = _owners()[qualified.split(".")[0]](seeded)
    getattr(owner, qualified.split(".")[1])(**VALID[qualified])


@pytest.mark.parametrize("qualified", sorted(LOOKUP_STREAM_IDS))
@pytest.mark.parametrize("bad", [["unhashable"], {"a": 1}, 42, None, "ghost"],
                         ids=["list", "dict", "int", "none", "unknown"])
def test_stream_lookups_drop_bad_ids(seeded, qualified, bad):
    """An id that names no open stream (unhashable ones included) is dropped, never raised."""
    owner = _owners()[qualified.split(".")[0]](seeded)
    before = [s for s in _state(seeded)[0].splitlines() if b"dropped" not in s]
    getattr(owner, qualified.split(".")[1])(**{**VALID[qualified], "stream_id": bad})
    after = [s for s in _state(seeded)[0].splitlines() if b"dropped" not in s]
    assert after == before


# --- configuration -------------------------------------------------------------------------------

def _hist(cls: type) -> str:
    """A histogram ``cls`` owns (or one it does not, for a tracker that owns none)."""
    owner = getattr(cls, "owner", None)
    names = [s.name for s in owned_by(owner) if s.kind == "histogram"] if owner else []
    return names[0] if names else "time_to_first_token_seconds"


def _config_bad(cls: type) -> dict[str, list[tuple[str, Any, str | None]]]:
    """Bad values by constructor argument (a third item names the argument the message must
    name when it is a field inside the value)."""
    hist = _hist(cls)
    count = [("negative", -1, None), ("float", 1.5, None), ("bool", True, None),
             ("string", "3", None), ("none", None, None)]
    positive = [("zero", 0, None), ("negative", -1.0, None), ("nan", NAN, None),
                ("inf", INF, None), ("none", None, None)]
    ratio_open = [("zero", 0, None), ("one", 1.0, None), ("nan", NAN, None), ("bool", True, None),
                  ("none", None, None)]
    label = [("empty", "", None), ("int", 3, None), ("surrogate", SURROGATE, None)]
    money = [("negative", -5, None), ("nan", NAN, None), ("inf", INF, None),
             ("string", "1", None), ("bool", True, None)]
    prices = [("list", [1], None), ("float-price", {"m": 1.0}, None),
              ("empty-name", {"": Price(1, 1)}, None)]
    return {
        **dict.fromkeys(["max_active_streams", "max_completed_streams", "max_recent_errors",
                         "pattern_threshold", "max_patterns", "max_users_per_model", "models",
                         "endpoints", "api_keys", "error_types", "max_cached"], count),
        **dict.fromkeys(["window_seconds", "aggregation_window_seconds"], positive),
        **dict.fromkeys(["error_budget_slo", "slo_objective"], ratio_open),
        **dict.fromkeys(["slo_name", "genai_provider"], label),
        **dict.fromkeys(["input", "output"], [*money, ("none", None, None)]),
        "cached_input": money,
        **dict.fromkeys(["prices", "table", "fine_tuned"], prices),
        "genai": [("string", "x", None)],
        **dict.fromkeys(["fallback_price", "fallback"], [("float", 1.0, None),
                                                         ("tuple", (1, 2), None)]),
        "key_ids": [("string", "x", None)],
        "namespace": [("space", "a b", None), ("empty", "", None), ("int", 3, None)],
        "buckets": [("list", [1, 2], None), ("repeated", {hist: [1, 1, 2]}, None),
                    ("nan", {hist: [NAN]}, None), ("empty", {hist: []}, None),
                    ("unknown", {"no_such_histogram": [1]}, None)],
        **dict.fromkeys(["clock", "wall_clock"], [("not-callable", 5, None)]),
        "multiprocess": [("string", "yes", None), ("int", 1, None)],
        "limits": [("string", "x", None)],
        "registry": [("string", "x", None)],
        "meter_provider": [("string", "x", None)],
        "label_limits": [("list", [1], None), ("negative-cap", {"models": -1}, "models")],
        "secret": [("empty", "", None), ("int", 3, None)],
        "slos": [("int", 3, None), ("not-an-slo", ["chat"], None)],
        "slo_window_seconds": positive,
        "budget_store": [("http-url", "http://127.0.0.1:6379", None), ("int", 3, None)],
        "shared_slo": [("string", "yes", None), ("int", 1, None),
                       ("without-a-shared-store", True, None)],
    }


def _config_valid(cls: type) -> dict[str, Any]:
    price = Price(1.0, 2.0, 0.5)
    return {
        MetricsTracker: dict(window_seconds=60.0, max_active_streams=10),
        CostTracker: dict(prices={"m": price}, fallback_price=price, key_ids=KeyIds()),
        ModelMetricsTracker: dict(prices={"m": price}, key_ids=KeyIds(), max_users_per_model=5),
        ErrorMetricsTracker: dict(max_recent_errors=10, error_budget_slo=0.99,
                                  window_seconds=60, pattern_threshold=2,
                                  slo_name="availability", max_patterns=10, key_ids=KeyIds()),
        StreamingMetricsTracker: dict(max_active_streams=10, max_completed_streams=10,
                                      aggregation_window_seconds=60),
        LabelLimits: dict(models=5, endpoints=5, api_keys=5, error_types=5),
        Telemetry: dict(meter_provider=None, namespace="fakeai", slo_objective=0.99,
                        buckets={"time_to_first_token_seconds": [0.1, 1.0]},
                        clock=ManualClock(), wall_clock=ManualClock(), prices={"m": price},
                        label_limits={"models": 5}, genai_provider="openai"),
        KeyIds: dict(max_cached=10, secret="s3cret"),
        Price: dict(input=1.0, output=2.0, cached_input=0.5),
        PriceTable: dict(prices={"m": price}, fallback=price, table={"m": price},
                         fine_tuned={"m": price}, genai=None),
    }[cls]


TRACKER_BASE = dict(meter_provider=None, namespace="fakeai", buckets={}, clock=ManualClock(),
                    genai_provider="openai", multiprocess=False, limits=None)
CONFIG_CLASSES = (MetricsTracker, CostTracker, ModelMetricsTracker, ErrorMetricsTracker,
                  StreamingMetricsTracker, LabelLimits, Telemetry, KeyIds, Price, PriceTable)


def _config_params(cls: type) -> list[str]:
    sig = inspect.signature(cls.__init__)
    names = [p.name for p in _parameters(sig) if p.kind is not p.VAR_KEYWORD]
    if issubclass(cls, Tracker):  # **kwargs go to Tracker.__init__
        names += [n for n in TRACKER_BASE if n not in names]
    if issubclass(cls, Tracker) or cls is Telemetry:
        names = [n for n in names if n != "registry"] + ["registry"]
    return names


def _config_rows():
    for cls in CONFIG_CLASSES:
        bad = _config_bad(cls)
        for name in _config_params(cls):
            for bad_id, value, expected in bad[name]:
                yield pytest.param(cls, name, value, expected or name,
                                   id=f"{cls.__name__}-{name}={bad_id}")


def test_every_configuration_argument_has_a_row():
    for cls in CONFIG_CLASSES:
        missing = [n for n in _config_params(cls) if n not in _config_bad(cls)]
        assert not missing, f"{cls.__name__}: no bad-value row for {missing}"


def _build(cls: type, registry: CollectorRegistry, override: dict[str, Any] | None = None) -> Any:
    kwargs = dict(_config_valid(cls))
    if issubclass(cls, Tracker) or cls is Telemetry:
        if issubclass(cls, Tracker):
            kwargs = {**TRACKER_BASE, **kwargs}
        kwargs["registry"] = registry
    kwargs.update(override or {})
    return cls(**kwargs)


@pytest.mark.parametrize("cls, argument, bad, named", list(_config_rows()))
def test_bad_configuration_is_refused_and_registers_nothing(cls, argument, bad, named):
    registry = CollectorRegistry(auto_describe=True)
    with pytest.raises(InvalidMetricInput) as excinfo:
        _build(cls, registry, {argument: bad})
    assert named in str(excinfo.value), f"the message does not name {named!r}: {excinfo.value}"
    assert generate_latest(registry) == b"", "a refused object left series in the registry"
    _build(cls, registry)  # nothing half-registered: the valid one still takes the registry


def test_share_slo_needs_a_shared_store(seeded):
    before = _state(seeded)
    with pytest.raises(InvalidMetricInput, match="store"):
        seeded.errors.share_slo(seeded.cost.budget_store)  # the in-process store is not shared
    _assert_unchanged(seeded, before)
