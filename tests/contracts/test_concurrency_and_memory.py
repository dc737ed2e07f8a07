"""Many threads lose nothing, long streams and long runs stay small, and trackers never share.

A server records from many worker threads at once, streams can run for hundreds of thousands of
tokens, and the process lives for weeks; the package claims one lock per tracker, state that does
not grow with events (``OpenStream``, fine-grid histograms, fixed rings) and one owner per metric.
These tests check those claims from the outside: exact totals after a threaded workload whose
expected totals are computed from the plan, not the package; traced memory (``tracemalloc``)
before and after large runs; and registries that stay private or refuse duplicate owners.
"""

from __future__ import annotations

import gc
import sys
import threading
import tracemalloc
from contextlib import contextmanager

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from fakeai_metrics import (
    CATALOG,
    CostTracker,
    ErrorMetricsTracker,
    LatencySLO,
    MetricsTracker,
    ModelMetricsTracker,
    StreamingMetricsTracker,
    Telemetry,
)
from fakeai_metrics.goodput_tracker import GoodputTracker
from fakeai_metrics.testing import ManualClock, samples

EP = "/v1/chat/completions"
KEYS = ("sk-alpha", "sk-beta", "sk-gamma")
MODELS = ("gpt-4o", "gpt-4o-mini", "o1-mini")


def total(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``; 0 when none exist."""
    wanted = set(labels.items())
    return sum(v for key, v in samples(registry, name).items() if wanted <= set(key))


# --- (a) threads: nothing lost -------------------------------------------------------------------

THREADS, OPS_PER_THREAD = 8, 10_000


def _plan(thread: int) -> list[tuple]:
    """The ops one thread runs; expected totals are computed from this, not from the package."""
    ops = []
    for i in range(OPS_PER_THREAD):
        key, model = KEYS[(thread + i) % 3], MODELS[(thread * 7 + i) % 3]
        kind = (thread + i) % 3
        if kind == 0:
            prompt, completion, cached = 10 + i % 7, 5 + thread % 5, i % 4
            ops.append(("request", model, key, prompt, completion, cached))
        elif kind == 1:
            ops.append(("failure", model, key, 500 + i % 4))
        else:
            ops.append(("stream", model, key, f"t{thread}-op{i}", 3 + i % 5, 1 + i % 4))
    return ops


def _run(t: Telemetry, ops: list[tuple], costs: list[float], start: threading.Barrier) -> None:
    start.wait()
    for op in ops:
        if op[0] == "request":
            _, model, key, prompt, completion, cached = op
            costs.append(t.record_request(endpoint=EP, model=model, latency_s=0.05,
                                          prompt_tokens=prompt, completion_tokens=completion,
                                          cached_tokens=cached, api_key=key))
        elif op[0] == "failure":
            _, model, key, status = op
            t.record_failure(endpoint=EP, model=model, status_code=status,
                             error_type="ServerError", message="upstream 503", latency_s=0.01,
                             api_key=key)
        else:
            _, model, key, stream_id, prompt, n_tokens = op
            t.start_stream(stream_id, endpoint=EP, model=model, prompt_tokens=prompt,
                           api_key=key)
            for _ in range(n_tokens):
                t.stream_token(stream_id, chunk_size_bytes=3)
            costs.append(t.finish_stream(stream_id))


@pytest.fixture
def busy_interpreter():
    """Switch threads far more often than the default 5 ms, to surface races."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


@pytest.mark.slow
def test_threaded_telemetry_loses_nothing(telemetry, metrics_registry, busy_interpreter):
    plans = [_plan(n) for n in range(THREADS)]
    costs: list[list[float]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        try:
            _run(telemetry, plans[n], costs[n], start)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors, errors
    assert not any(th.is_alive() for th in threads)

    ops = [op for plan in plans for op in plan]
    requests = [op for op in ops if op[0] == "request"]
    failures = [op for op in ops if op[0] == "failure"]
    streams = [op for op in ops if op[0] == "stream"]
    assert len(ops) == THREADS * OPS_PER_THREAD and requests and failures and streams
    stream_tokens = sum(op[5] for op in streams)
    r = metrics_registry

    # requests and outcomes
    assert total(r, "fakeai_requests_total") == len(ops)
    assert total(r, "fakeai_requests_total", outcome="success") == len(requests) + len(streams)
    assert total(r, "fakeai_requests_total", outcome="error") == len(failures)
    assert total(r, "fakeai_errors_total") == len(failures)
    for status in (500, 501, 502, 503):
        assert total(r, "fakeai_errors_total", status_code=str(status)) == sum(
            1 for op in failures if op[3] == status)
    assert total(r, "fakeai_endpoint_requests_total") == len(ops)
    assert total(r, "fakeai_endpoint_errors_total") == len(failures)
    for model in MODELS:
        assert total(r, "fakeai_requests_total", model=model) == sum(
            1 for op in ops if op[1] == model)
    assert sum(s["request_count"] for s in telemetry.models.get_all_models_stats().values()) \
        == len(ops)

    # billed tokens
    assert total(r, "fakeai_tokens_total", type="prompt") == (
        sum(op[3] for op in requests) + sum(op[4] for op in streams))
    assert total(r, "fakeai_tokens_total", type="completion") == (
        sum(op[4] for op in requests) + stream_tokens)
    assert total(r, "fakeai_tokens_total", type="cached") == sum(op[5] for op in requests)

    # cost: exported == what the calls returned == in-process, per key too
    returned = sum(c for per_thread in costs for c in per_thread)
    assert returned > 0
    assert total(r, "fakeai_cost_usd_total") == pytest.approx(returned, rel=1e-9)
    assert telemetry.cost.get_total_cost() == pytest.approx(returned, rel=1e-9)
    for key in KEYS:
        billed = sum(1 for op in requests + streams if op[2] == key)
        assert telemetry.cost.get_cost_by_key(key)["requests"] == billed

    # streams
    assert total(r, "fakeai_streams_total", outcome="completed") == len(streams)
    assert total(r, "fakeai_streams_total", outcome="failed") == 0
    assert total(r, "fakeai_streams_active") == 0
    assert telemetry.streaming.get_active_stream_count() == 0
    assert telemetry.metrics.get_active_streams() == 0
    assert total(r, "fakeai_endpoint_streams_total", outcome="completed") == len(streams)
    assert total(r, "fakeai_stream_bytes_total") == 3 * stream_tokens
    assert total(r, "fakeai_time_to_first_token_seconds_count") == len(streams)
    assert total(r, "fakeai_inter_token_latency_seconds_count") == stream_tokens - len(streams)
    assert total(r, "fakeai_stream_events_dropped_total") == 0
    assert telemetry.streaming.get_metrics().total_tokens_generated == stream_tokens


# --- (b) bounded memory --------------------------------------------------------------------------

@contextmanager
def traced():
    """tracemalloc on for the block (left on if something else already started it)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        yield
    finally:
        if started:
            tracemalloc.stop()


def traced_now() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.mark.slow
def test_one_long_stream_retains_almost_nothing():
    clock = ManualClock()
    tracker = StreamingMetricsTracker(clock=clock)
    tracker.start_stream("long", "gpt-4o", prompt_tokens=50)
    n = 200_000
    with traced():
        base = traced_now()
        for i in range(n):
            clock.advance(0.001)
            tracker.record_token("long", f"tok{i}", chunk_size_bytes=4)
        grown = traced_now() - base
    assert grown < 256 * 1024, f"one open stream of {n} tokens retains {grown} bytes"
    # ... and the tokens were really recorded, not dropped.
    summary = tracker.complete_stream("long")
    assert summary.tokens == n
    assert summary.tpot_s == pytest.approx(0.001, rel=1e-6)
    assert total(tracker.registry, "fakeai_inter_token_latency_seconds_count") == n - 1
    assert total(tracker.registry, "fakeai_stream_bytes_total") == 4 * n


@pytest.mark.slow
def test_cost_tracker_memory_is_flat_over_200k_requests():
    tracker = CostTracker(clock=ManualClock())
    tracker.set_budget(KEYS[0], 1e9)

    def bill(i: int) -> None:
        tracker.record_usage(KEYS[i % 3], MODELS[(i // 3) % 3], EP, 100 + i % 50, 20 + i % 30,
                             i % 10)

    for i in range(900):  # warm-up: every key x model pair, caches and dict slots filled
        bill(i)
    n = 200_000
    with traced():
        base = traced_now()
        for i in range(900, 900 + n):
            bill(i)
        grown = traced_now() - base
    assert grown < 1024 * 1024, f"{n} requests grew traced memory by {grown} bytes"
    assert sum(tracker.get_cost_by_key(k)["requests"] for k in KEYS) == n + 900
    assert len(samples(tracker.registry, "fakeai_cost_usd_total")) == 9


# --- (c) isolation -------------------------------------------------------------------------------
# Per class: (record one event, in-process count of events, exported series that counts them).

ISOLATION = [
    pytest.param(MetricsTracker, lambda t: t.track_request(EP),
                 lambda t: t.get_metrics()["requests"].get(EP, {}).get("rate", 0) > 0,
                 "fakeai_endpoint_requests_total", id="MetricsTracker"),
    pytest.param(CostTracker, lambda t: t.record_usage(KEYS[0], "gpt-4o", EP, 100, 10),
                 lambda t: t.get_cost_by_key(KEYS[0])["requests"],
                 "fakeai_tokens_total", id="CostTracker"),
    pytest.param(ModelMetricsTracker, lambda t: t.track_request("gpt-4o", EP, 1, 1, 20.0),
                 lambda t: t.get_model_stats("gpt-4o")["request_count"],
                 "fakeai_request_duration_seconds_count", id="ModelMetricsTracker"),
    pytest.param(ErrorMetricsTracker, lambda t: t.record_error(EP, 500, "ServerError"),
                 lambda t: t.get_metrics()["total_requests"],
                 "fakeai_requests_total", id="ErrorMetricsTracker"),
    pytest.param(StreamingMetricsTracker, lambda t: t.start_stream("s1", "gpt-4o"),
                 lambda t: t.get_active_stream_count(),
                 "fakeai_streams_active", id="StreamingMetricsTracker"),
]


def _fakeai_text(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines()
            if "fakeai_" in line]


@pytest.mark.parametrize("cls, record, seen, exported", ISOLATION)
def test_two_trackers_without_a_registry_share_nothing(cls, record, seen, exported):
    global_before = _fakeai_text(REGISTRY)
    a, b = cls(clock=ManualClock()), cls(clock=ManualClock())
    assert a.registry is not b.registry
    assert REGISTRY not in (a.registry, b.registry)

    record(a)

    assert seen(a) and not seen(b)
    assert total(a.registry, exported) > 0
    assert total(b.registry, exported) == 0
    assert _fakeai_text(REGISTRY) == global_before, "a tracker leaked into the global registry"


@pytest.mark.parametrize("auto_describe", [False, True], ids=["plain", "auto_describe"])
@pytest.mark.parametrize("cls", [p.values[0] for p in ISOLATION],
                         ids=[p.id for p in ISOLATION])
def test_second_owner_of_the_same_metrics_is_refused(cls, auto_describe):
    registry = CollectorRegistry(auto_describe=auto_describe)
    first = cls(registry=registry, clock=ManualClock())
    before = generate_latest(registry)
    with pytest.raises(ValueError, match=r"fakeai_[a-z_]+"):
        cls(registry=registry, clock=ManualClock())
    assert generate_latest(registry) == before
    assert first.registry is registry


def test_two_cost_trackers_on_one_registry_name_the_metric():
    registry = CollectorRegistry()
    CostTracker(registry=registry)
    with pytest.raises(ValueError) as excinfo:
        CostTracker(registry=registry)
    owned = {s.full_name() for s in CATALOG if s.owner == "cost"}
    assert any(name in str(excinfo.value) for name in owned), str(excinfo.value)


def test_five_different_trackers_share_one_registry(metrics_registry, metrics_clock):
    trackers = {p.values[0]: p for p in ISOLATION}
    made = {cls: cls(registry=metrics_registry, clock=metrics_clock) for cls in trackers}
    for cls, tracker in made.items():
        trackers[cls].values[1](tracker)
    # and the latency-SLO counters' owner, which Telemetry adds beside the five
    GoodputTracker([LatencySLO("s", 0.9, duration_seconds=1)], registry=metrics_registry)

    families = [f.name for f in metrics_registry.collect()]
    assert len(families) == len(set(families)), "a metric family is exported twice"
    assert len(families) == len(CATALOG)
    for spec in CATALOG:
        assert spec.full_name().removesuffix("_total") in families, spec.name
    for cls, tracker in made.items():
        assert total(metrics_registry, trackers[cls].values[3]) > 0, cls.__name__


def test_telemetry_counts_each_request_exactly_once(telemetry, metrics_registry, metrics_clock):
    plain, failed, streamed, broken = 37, 11, 13, 5
    for i in range(plain):
        telemetry.record_request(endpoint=EP, model=MODELS[i % 3], latency_s=0.1,
                                 prompt_tokens=10, completion_tokens=3, api_key=KEYS[i % 3])
    for i in range(failed):
        telemetry.record_failure(endpoint=EP, model=MODELS[i % 3], status_code=503,
                                 error_type="Overloaded", latency_s=0.2, api_key=KEYS[i % 3])
    for i in range(streamed + broken):
        sid = f"s{i}"
        telemetry.start_stream(sid, endpoint=EP, model=MODELS[i % 3], prompt_tokens=4,
                               api_key=KEYS[i % 3])
        metrics_clock.advance(0.01)
        telemetry.stream_token(sid)
        if i < streamed:
            telemetry.finish_stream(sid)
        else:
            telemetry.fail_stream(sid, message="client went away")
    n = plain + failed + streamed + broken
    r = metrics_registry

    assert total(r, "fakeai_requests_total") == n
    assert total(r, "fakeai_requests_total", outcome="error") == failed + broken
    assert total(r, "fakeai_endpoint_requests_total") == n
    assert total(r, "fakeai_request_duration_seconds_count") == n
    assert total(r, "fakeai_errors_total") == failed + broken
    assert total(r, "fakeai_streams_total") == streamed + broken
    assert telemetry.errors.get_metrics()["total_requests"] == n
    assert sum(s["request_count"] for s in telemetry.models.get_all_models_stats().values()) == n
    billed = plain + streamed + broken  # a broken stream's sent tokens were generated: billed
    assert sum(telemetry.cost.get_cost_by_key(k)["requests"] for k in KEYS) == billed
    assert total(r, "fakeai_tokens_total", type="prompt") == plain * 10 + (streamed + broken) * 4
    assert total(r, "fakeai_tokens_total", type="completion") == plain * 3 + streamed + broken
