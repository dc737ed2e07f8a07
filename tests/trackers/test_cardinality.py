"""Label cardinality stays bounded whatever clients send: caps fold the excess into __other__,
count it, and keep memory flat; endpoints collapse to their route templates."""

from __future__ import annotations

import gc
import tracemalloc

import pytest
from prometheus_client import CollectorRegistry

from fakeai_metrics import CostTracker, ErrorMetricsTracker, ModelMetricsTracker, Telemetry
from fakeai_metrics.limits import OTHER, LabelLimits
from fakeai_metrics.routes import normalize_endpoint
from fakeai_metrics.testing import metric_value, samples

EP = "/v1/chat/completions"


@pytest.mark.slow
def test_100k_api_keys_stay_under_the_cap_with_bounded_memory():
    registry = CollectorRegistry()
    t = Telemetry(registry=registry, label_limits={"api_keys": 1000})
    t.cost.set_budget("sk-budgeted-late", 10.0)  # admitted whatever the cap

    def burst(first: int, n: int) -> None:
        for i in range(first, first + n):
            t.record_request(endpoint=EP, model="gpt-4o", latency_s=0.01, prompt_tokens=1,
                             completion_tokens=1, api_key=f"sk-tenant-{i}")

    burst(0, 20_000)  # fills the cap, the key-id cache and the overflow series
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    burst(20_000, 80_000)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()

    keys = {dict(k)["api_key"] for k in samples(registry, "fakeai_cost_usd_total")}
    assert len(keys) == 999 + 1  # the budgeted key took one place of 1000: 999 tenants + other
    assert OTHER in keys
    assert metric_value(registry, "fakeai_label_overflow_total", {"label": "api_key"}) == \
        100_000 - 999
    assert metric_value(registry, "fakeai_requests_total") == 100_000  # nothing lost
    assert metric_value(registry, "fakeai_cost_usd_total") == pytest.approx(
        t.cost.get_total_cost())
    assert grown < 1_000_000, f"80k more keys grew traced memory by {grown} bytes"


def test_model_and_error_type_caps():
    registry = CollectorRegistry()
    t = Telemetry(registry=registry, label_limits={"models": 5, "error_types": 3})
    for i in range(40):
        t.record_request(endpoint=EP, model=f"model-{i}", latency_s=0.01, prompt_tokens=1)
        t.record_failure(endpoint=EP, model=f"model-{i}", status_code=500,
                         error_type=f"Error{i}")
    models = {dict(k)["model"] for k in samples(registry, "fakeai_tokens_total")}
    assert models == {f"model-{i}" for i in range(5)} | {OTHER}
    types = {dict(k)["error_type"] for k in samples(registry, "fakeai_errors_total")}
    assert types == {"Error0", "Error1", "Error2", OTHER}
    assert metric_value(registry, "fakeai_requests_total") == 80
    assert metric_value(registry, "fakeai_label_overflow_total", {"label": "error_type"}) == 37
    # the model cap holds in every tracker that labels by model
    for name in ("fakeai_request_duration_seconds_count", "fakeai_requests_total"):
        assert {dict(k)["model"] for k in samples(registry, name)} <= models


@pytest.mark.parametrize("path,template", [
    ("/v1/chat/completions", "/v1/chat/completions"),
    ("/v1/chat/completions/", "/v1/chat/completions"),
    ("/v1/files/file-abc123XYZ", "/v1/files/{id}"),
    ("/v1/files/file-abc123XYZ/content?x=1", "/v1/files/{id}/content"),
    ("/v1/batches/batch_6721a1b2c3", "/v1/batches/{id}"),
    ("/v1/threads/thread_abc/runs/run_def", "/v1/threads/{id}/runs/{id}"),
    ("/v1/fine_tuning/jobs/ftjob-abc123", "/v1/fine_tuning/jobs/{id}"),
    ("/v1/items/12345", "/v1/items/{id}"),
    ("/v1/x/123e4567-e89b-12d3-a456-426614174000", "/v1/x/{id}"),
    ("/v1/models/gpt-4o", "/v1/models/gpt-4o"),
    ("/proxy/sk-live-4f9a7c2b81e0/v1/chat/completions", "/proxy/{key}/v1/chat/completions"),
])
def test_endpoint_templates(path, template):
    assert normalize_endpoint(path) == template


def test_endpoints_normalised_and_capped_across_trackers():
    registry = CollectorRegistry()
    t = Telemetry(registry=registry, label_limits={"endpoints": 4})
    for i in range(30):
        t.record_request(endpoint=f"/v1/files/file-{i:06d}abc", model="m", latency_s=0.1)
        t.record_request(endpoint=f"/custom/route{i}", model="m", latency_s=0.1)
    endpoints = {dict(k)["endpoint"] for k in samples(registry, "fakeai_requests_total")}
    assert "/v1/files/{id}" in endpoints and OTHER in endpoints and len(endpoints) == 5
    assert set(t.metrics.get_metrics()["requests"]) == endpoints


def test_standalone_trackers_on_one_registry_share_one_limits():
    registry = CollectorRegistry()
    LabelLimits(registry=registry, models=2)
    cost, models, errors = (CostTracker(registry=registry), ModelMetricsTracker(registry=registry),
                            ErrorMetricsTracker(registry=registry))
    assert cost.limits is models.limits is errors.limits
    for m in ("a", "b", "c"):
        cost.record_usage("k", m, EP, 1, 1)
        models.track_request(m, EP, 1, 1, 10.0)
    assert {dict(k)["model"] for k in samples(registry, "fakeai_tokens_total")} == \
        {"a", "b", OTHER}
    assert metric_value(registry, "fakeai_label_overflow_total", {"label": "model"}) == 2


def test_direct_calls_count_a_folded_value_on_every_call_after_the_first_resolution():
    """The trackers keep the labels of inputs they have resolved, but never a folded one: a
    value beyond the cap counts its overflow on each direct call, as before."""
    registry = CollectorRegistry()
    limits = LabelLimits(registry=registry, models=1, endpoints=1)
    cost = CostTracker(registry=registry, limits=limits)
    models = ModelMetricsTracker(registry=registry, limits=limits)
    errors = ErrorMetricsTracker(registry=registry, limits=limits)
    for _ in range(3):  # admitted: resolved once, then reused
        cost.record_usage("sk-a", "gpt-4o", EP, 10, 5)
        models.track_request("gpt-4o", EP, 10, 5, latency_ms=100.0)
        errors.record_success(EP, "gpt-4o")
    assert metric_value(registry, "fakeai_label_overflow_total") == 0
    for _ in range(3):  # folded: counted on every call
        cost.record_usage("sk-a", "llama", "/v1/embeddings", 10, 5)
        models.track_request("llama", "/v1/embeddings", 10, 5, latency_ms=100.0)
        errors.record_success("/v1/embeddings", "llama")
    assert metric_value(registry, "fakeai_label_overflow_total", {"label": "endpoint"}) == 9
    # the model: per call in the model and error views; the cost view resolves a model's
    # label once per name (with its price), so it counts its fold once
    assert metric_value(registry, "fakeai_label_overflow_total", {"label": "model"}) == 3 + 3 + 1
    assert metric_value(registry, "fakeai_requests_total",
                        {"endpoint": EP, "model": "gpt-4o"}) == 3
    assert metric_value(registry, "fakeai_requests_total",
                        {"endpoint": OTHER, "model": OTHER}) == 3
    assert metric_value(registry, "fakeai_request_duration_seconds_count",
                        {"endpoint": OTHER, "model": OTHER}) == 3
    assert set(cost.get_cost_by_endpoint()) == {EP, OTHER}
    assert cost.get_cost_by_key("sk-a")["requests"] == 6


def test_a_key_in_the_path_is_scrubbed_whichever_call_resolved_the_path_first():
    cost = CostTracker(registry=CollectorRegistry())
    models = ModelMetricsTracker(registry=CollectorRegistry())
    path = "/proxy/mykey0123/v1/chat/completions"  # not key-shaped: only scrubbing hides it
    for key in (None, "mykey0123", None):  # resolved without the key first, then with it
        cost.record_usage(key, "gpt-4o", path, 10, 5)
        models.track_request("gpt-4o", path, 10, 5, latency_ms=1.0, user=key)
    scrubbed = "/proxy/{key}/v1/chat/completions"  # the key's id, normalised as key-shaped
    assert models.get_model_stats("gpt-4o")["endpoints"] == {path: 2, scrubbed: 1}
    assert set(cost.get_cost_by_endpoint()) == {path, scrubbed}
    assert cost.get_cost_by_endpoint()[scrubbed] == pytest.approx(
        cost.get_cost_by_endpoint()[path] / 2)


def test_an_alias_set_after_a_key_was_used_applies_to_the_next_call():
    cost = CostTracker(registry=CollectorRegistry())
    cost.record_usage("sk-late-alias-000", "gpt-4o", EP, 10, 5)
    cost.alias_key("sk-late-alias-000", "team-a")
    cost.record_usage("sk-late-alias-000", "gpt-4o", EP, 10, 5)
    keys = {dict(k)["api_key"] for k in samples(cost.registry, "fakeai_cost_usd_total")}
    assert "team-a" in keys and len(keys) == 2
