"""What a scrape sees: every catalog metric with its declared type and labels, in both formats."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families

from fakeai_metrics import CATALOG, LatencySLO, MetricsTracker, Telemetry
from fakeai_metrics.error_metrics_tracker import normalize_message
from fakeai_metrics.testing import ManualClock, MetricNotFound, assert_metric, metric_value

EP = "/v1/chat/completions"


def _workload(t: Telemetry, clock: ManualClock) -> None:
    t.cost.set_budget("sk-a", 10.0)
    t.record_request(endpoint=EP, model="gpt-4o", latency_s=0.2, prompt_tokens=100,
                     completion_tokens=20, cached_tokens=50, api_key="sk-a")
    t.record_request(endpoint=EP, model="mystery", latency_s=0.1, api_key="sk-b")
    t.record_failure(endpoint=EP, model="gpt-4o", status_code=429, error_type="RateLimitError",
                     message="slow down", latency_s=0.01, api_key="sk-a")
    t.start_stream("s1", endpoint=EP, model="gpt-4o", prompt_tokens=10, api_key="sk-a")
    for _ in range(3):
        clock.advance(0.02)
        t.stream_token("s1", chunk_size_bytes=10)
    t.finish_stream("s1")
    t.start_stream("s2", endpoint=EP, model="gpt-4o")
    t.stream_token("s2")
    t.fail_stream("s2", message="client went away")
    t.stream_token("nope")


def test_every_catalog_metric_is_exported_with_its_type_and_labels(metrics_clock,
                                                                   metrics_registry):
    telemetry = Telemetry(registry=metrics_registry, clock=metrics_clock,
                          wall_clock=metrics_clock,
                          slos=[LatencySLO("chat", 0.99, endpoint=EP, ttft_seconds=0.5)])
    _workload(telemetry, metrics_clock)
    text = generate_latest(metrics_registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for spec in CATALOG:
        name = spec.full_name().removesuffix("_total")
        assert name in families, f"{name} not exported"
        fam = families[name]
        assert fam.type == spec.kind
        assert fam.samples, f"{name} has no samples after the workload"
        for s in fam.samples:
            assert set(s.labels) - {"le"} == set(spec.labels), (name, s.labels)


def test_openmetrics_exposition_parses(telemetry, metrics_clock, metrics_registry):
    _workload(telemetry, metrics_clock)
    names = {f.name for f in parse_om(generate_openmetrics(metrics_registry).decode())}
    assert "fakeai_requests" in names and "fakeai_time_to_first_token_seconds" in names


def test_sum_of_requests_is_the_number_of_requests(telemetry, metrics_clock, metrics_registry):
    _workload(telemetry, metrics_clock)  # 2 ok + 1 failed + 1 completed + 1 failed stream
    assert metric_value(metrics_registry, "fakeai_requests_total") == 5
    assert metric_value(metrics_registry, "fakeai_requests_total", {"outcome": "error"}) == 2
    assert metric_value(metrics_registry, "fakeai_tokens_total", {"type": "cached"}) == 50
    assert metric_value(metrics_registry, "fakeai_stream_events_dropped_total",
                        {"event": "token", "reason": "unknown_stream"}) == 1


def test_namespace_changes_the_prefix():
    reg = CollectorRegistry()
    MetricsTracker(registry=reg, namespace="gw").track_request(EP)
    assert metric_value(reg, "gw_endpoint_requests_total") == 1


def test_duplicate_registration_names_the_metric():
    reg = CollectorRegistry()
    MetricsTracker(registry=reg)
    with pytest.raises(ValueError, match="fakeai_endpoint_requests"):
        MetricsTracker(registry=reg)


def test_metric_value_failure_lists_existing_series(metrics_tracker, metrics_registry):
    metrics_tracker.track_request(EP)
    with pytest.raises(MetricNotFound) as err:
        metric_value(metrics_registry, "fakeai_endpoint_requests_total", {"endpoint": "/v2"})
    assert "endpoint='/v1/chat/completions'" in str(err.value)
    assert_metric(metrics_registry, "fakeai_endpoint_requests_total", {"endpoint": EP}, 1)
    with pytest.raises(AssertionError, match="expected 2"):
        assert_metric(metrics_registry, "fakeai_endpoint_requests_total", None, 2)


@pytest.mark.parametrize("message,normalized", [
    ("Rate limit exceeded for user-3 at timestamp 1732000000.123",
     "Rate limit exceeded for user-<NUM> at timestamp <NUM>"),
    ("request 123e4567-e89b-12d3-a456-426614174000 failed", "request <UUID> failed"),
    ("bad key sk-proj-AbC123xyz for bob@example.com", "bad key <KEY> for <EMAIL>"),
    ("at 2026-11-25T19:05:41Z pointer 0xdeadbeef", "at <TIME> pointer <HEX>"),
    ("id req-9f8e7d failed, digest 3fa9c0d1e2", "id <ID> failed, digest <HEX>"),
])
def test_error_messages_normalise(message, normalized):
    assert normalize_message(message) == normalized
