"""Edge cases of the Telemetry hub and the trackers it fans out to, found in review: each once
produced a wrong number, a half-recorded call or unbounded state."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from fakeai_metrics import (InvalidMetricInput, ModelMetricsTracker, StreamingMetricsTracker,
                            Telemetry)
from fakeai_metrics.limits import OTHER
from fakeai_metrics.testing import metric_value, samples
from fakeai_metrics.validation import MAX_TOKENS

EP = "/v1/chat/completions"


def test_token_sum_over_the_limit_is_refused_before_anything_records(telemetry, metrics_registry):
    before = generate_latest(metrics_registry)
    with pytest.raises(InvalidMetricInput, match="prompt_tokens \\+ completion_tokens"):
        telemetry.record_request(endpoint=EP, model="gpt-4o", latency_s=0.1,
                                 prompt_tokens=MAX_TOKENS, completion_tokens=1)
    telemetry.start_stream("s", endpoint=EP, model="gpt-4o", prompt_tokens=MAX_TOKENS)
    with pytest.raises(InvalidMetricInput):
        telemetry.finish_stream("s", completion_tokens=5)
    assert telemetry.finish_stream("s", completion_tokens=0) > 0  # still open: can be finished
    assert metric_value(metrics_registry, "fakeai_requests_total") == 1
    assert before != generate_latest(metrics_registry)


@pytest.mark.parametrize("chunk", [-1, math.nan, "12", 1.5])
def test_bad_chunk_sizes_are_refused_before_the_gap_is_recorded(chunk, streaming_tracker,
                                                                 metrics_registry,
                                                                 metrics_clock):
    streaming_tracker.start_stream("s", "gpt-4o")
    streaming_tracker.record_token("s")
    metrics_clock.advance(0.01)
    before = generate_latest(metrics_registry)
    with pytest.raises(InvalidMetricInput, match="chunk_size_bytes"):
        streaming_tracker.record_token("s", "t", chunk_size_bytes=chunk)
    assert generate_latest(metrics_registry) == before


@pytest.mark.parametrize("bad", [dict(buckets={"no_such_histogram": [1]}),
                                 dict(slo_objective=1.0),
                                 dict(label_limits={"planets": 3})])
def test_a_refused_constructor_leaves_the_registry_empty(bad):
    registry = CollectorRegistry()
    with pytest.raises((ValueError, TypeError)):
        Telemetry(registry=registry, **bad)
    assert list(registry.collect()) == []  # checked before anything registered
    Telemetry(registry=registry)  # so a corrected retry works


def test_open_stream_state_is_bounded_by_the_streaming_cap():
    registry = CollectorRegistry()
    t = Telemetry(registry=registry)
    t.streaming.max_active_streams = 100
    for i in range(1000):
        t.start_stream(f"s{i}", endpoint=EP, model="gpt-4o", api_key="sk-k")
    assert len(t._stream_routes) == 100 and t.metrics.get_active_streams() == 100
    assert metric_value(registry, "fakeai_stream_events_dropped_total",
                        {"event": "start", "reason": "capacity"}) == 900


def test_a_hub_stream_lives_in_one_table(telemetry, metrics_registry, metrics_clock):
    """The streaming tracker holds a hub stream's state; the endpoint view counts it under its
    endpoint and takes its duration, tokens and TTFT from that one record."""
    telemetry.start_stream("s", endpoint=EP, model="gpt-4o", api_key="sk-k")
    telemetry.start_stream("f", endpoint="/v1/completions", model="gpt-4o")
    assert telemetry.metrics._streams == {} and set(telemetry.streaming._streams) == {"s", "f"}
    assert telemetry.metrics.get_active_streams() == 2
    assert metric_value(metrics_registry, "fakeai_endpoint_streams_active", {"endpoint": EP}) == 1
    metrics_clock.advance(0.25)
    for _ in range(5):
        telemetry.stream_token("s")
        metrics_clock.advance(0.25)
    telemetry.finish_stream("s")
    telemetry.fail_stream("f")
    stats = telemetry.metrics.get_streaming_stats()
    assert (stats["active_streams"], stats["completed_streams"], stats["failed_streams"]) == \
        (0, 1, 1)
    assert stats["ttft"]["avg"] == pytest.approx(0.25, rel=0.02)
    assert stats["tokens_per_second"]["avg"] == pytest.approx(5 / 1.5, rel=0.02)
    assert metric_value(metrics_registry, "fakeai_endpoint_response_seconds_sum",
                        {"endpoint": EP}) == pytest.approx(1.5)
    assert metric_value(metrics_registry, "fakeai_endpoint_streams_active", {"endpoint": EP}) == 0


def test_a_hub_stream_the_streaming_tracker_forgot_still_closes(telemetry, metrics_registry):
    telemetry.start_stream("s", endpoint=EP, model="gpt-4o")
    telemetry.streaming.reset()
    telemetry.finish_stream("s")
    assert telemetry.metrics.get_active_streams() == 0
    assert metric_value(metrics_registry, "fakeai_endpoint_streams_total",
                        {"endpoint": EP, "outcome": "completed"}) == 1


def test_only_the_caller_that_ends_a_stream_finishes_it(telemetry, metrics_registry):
    telemetry.start_stream("s", endpoint=EP, model="gpt-4o", api_key="sk-k")
    telemetry.stream_token("s")
    assert telemetry.finish_stream("s") > 0
    assert telemetry.fail_stream("s") == 0.0  # too late: ignored, counted
    assert {dict(k)["outcome"] for k in samples(metrics_registry, "fakeai_streams_total")} == \
        {"completed"}
    assert {dict(k)["outcome"] for k in samples(metrics_registry, "fakeai_requests_total")} == \
        {"success"}
    assert metric_value(metrics_registry, "fakeai_stream_events_dropped_total",
                        {"event": "failed", "reason": "unknown_stream"}) == 1


def test_model_cost_counts_cached_tokens_and_the_real_model(metrics_registry):
    t = Telemetry(registry=metrics_registry, label_limits={"models": 1})
    t.record_request(endpoint=EP, model="gpt-4o", latency_s=0.1, prompt_tokens=1_000_000,
                     cached_tokens=1_000_000)
    t.record_request(endpoint=EP, model="gpt-4", latency_s=0.1, prompt_tokens=1_000_000)
    assert t.models.get_cost_by_model() == {"gpt-4o": pytest.approx(2.5),
                                            OTHER: pytest.approx(30.0)}
    assert sum(t.models.get_cost_by_model().values()) == pytest.approx(t.cost.get_total_cost())


def test_keys_beyond_the_cap_read_their_other_row():
    t = Telemetry(registry=CollectorRegistry(), label_limits={"api_keys": 1})
    t.record_request(endpoint=EP, model="gpt-4o", latency_s=0.1, prompt_tokens=1000,
                     api_key="sk-first")
    t.record_request(endpoint=EP, model="gpt-4o", latency_s=0.1, prompt_tokens=2000,
                     api_key="sk-second")
    row = t.cost.get_cost_by_key("sk-second")
    assert row["api_key"] == OTHER and row["total_cost"] == pytest.approx(0.01)


def test_error_patterns_are_copies(error_tracker):
    for model in ("a", "b", "c"):
        error_tracker.record_error(EP, 500, "E", "boom", model=model)
    pattern = error_tracker.get_error_patterns()[0]
    pattern.affected_models.clear()
    error_tracker.record_error(EP, 500, "E", "boom", model="d")
    assert pattern.count == 3
    assert error_tracker.get_error_patterns()[0].affected_models == {"a", "b", "c", "d"}


def test_user_ids_are_hashed_like_keys(error_tracker):
    error_tracker.record_error(EP, 401, "E", "no", user_id="sk-user-secret")
    assert "secret" not in repr(error_tracker.get_recent_errors())


def test_standalone_trackers_start_streams_and_say_whether_they_did():
    st = StreamingMetricsTracker(max_active_streams=1)
    assert st.start_stream("a", "m") is True
    assert st.start_stream("a", "m") is False and st.start_stream("b", "m") is False
    assert isinstance(ModelMetricsTracker().registry, CollectorRegistry)


def test_the_endpoint_view_of_a_hub_stream_learns_ttft_and_tokens_at_the_end(telemetry,
                                                                             metrics_clock):
    telemetry.start_stream("s", endpoint=EP, model="gpt-4o")
    metrics_clock.advance(0.05)
    for _ in range(10):
        telemetry.stream_token("s")
        metrics_clock.advance(0.01)
    telemetry.finish_stream("s")
    stats = telemetry.metrics.get_streaming_stats()
    assert stats["completed_streams"] == 1
    assert stats["ttft"]["avg"] == pytest.approx(0.05)
    assert stats["tokens_per_second"]["avg"] == pytest.approx(10 / 0.15)
