"""Edge cases of the Telemetry hub and the trackers it fans out to, found in review: each once
produced a wrong number, a half-recorded call or unbounded state."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from fakeai_metrics import (InvalidMetricInput, ModelMetricsTracker, PriceTable,
                            StreamingMetricsTracker, Telemetry)
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


class _CountingPrices(PriceTable):
    """A real price table that counts the requests it prices."""

    def __init__(self) -> None:
        super().__init__()
        self.priced: list[str] = []

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int,
             cached_tokens: int = 0) -> tuple[float, bool]:
        self.priced.append(model)
        return super().cost(model, prompt_tokens, completion_tokens, cached_tokens)


def test_the_hub_prices_each_request_once_for_the_model_and_cost_views(metrics_registry,
                                                                        metrics_clock):
    prices = _CountingPrices()
    t = Telemetry(registry=metrics_registry, clock=metrics_clock, prices=prices)
    t.record_request(endpoint=EP, model="gpt-4o", latency_s=0.1, prompt_tokens=1000,
                     completion_tokens=500, cached_tokens=200, api_key="sk-a")
    t.start_stream("s", endpoint=EP, model="gpt-4o-mini", prompt_tokens=300)
    t.stream_token("s")
    t.finish_stream("s", completion_tokens=40)
    t.start_stream("f", endpoint=EP, model="no-such-model", prompt_tokens=100)
    t.stream_token("f")
    t.fail_stream("f")
    t.record_failure(endpoint=EP, model="gpt-4o", status_code=500, error_type="E")
    assert prices.priced == ["gpt-4o", "gpt-4o-mini", "no-such-model"]  # failures bill nothing
    assert t.models.get_cost_by_model() == pytest.approx(t.cost.get_cost_by_model())
    assert metric_value(metrics_registry, "fakeai_unpriced_requests_total",
                        {"model": "no-such-model"}) == 1
    # the trackers used alone price for themselves, through the same table method
    t.cost.record_usage("sk-a", "gpt-4o", EP, 10, 10)
    t.models.track_request("gpt-4o", EP, 10, 10)
    assert prices.priced[3:] == ["gpt-4o", "gpt-4o"]


def test_a_failure_resolves_each_label_once_and_counts_a_fold_once(metrics_registry):
    t = Telemetry(registry=metrics_registry,
                  label_limits={"models": 1, "endpoints": 1, "error_types": 1})
    t.record_failure(endpoint=EP, model="gpt-4o", status_code=500, error_type="E1",
                     latency_s=0.2)
    t.record_failure(endpoint="/v1/embeddings", model="other-model", status_code=429,
                     error_type="E2", latency_s=0.2)
    for label in ("model", "endpoint", "error_type"):
        assert metric_value(metrics_registry, "fakeai_label_overflow_total", {"label": label}) == 1
    assert metric_value(metrics_registry, "fakeai_requests_total",
                        {"endpoint": OTHER, "model": OTHER, "outcome": "error"}) == 1
    assert metric_value(metrics_registry, "fakeai_errors_total",
                        {"endpoint": OTHER, "error_type": OTHER, "status_code": "429"}) == 1
    assert metric_value(metrics_registry, "fakeai_request_duration_seconds_count",
                        {"endpoint": OTHER, "model": OTHER}) == 1
    newest = t.errors.get_recent_errors(1)[0]
    assert (newest.endpoint, newest.model, newest.error_type) == (OTHER, OTHER, OTHER)
