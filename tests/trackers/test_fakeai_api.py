"""FakeAI's tracker calls (../shared/fakeai-api.md), one test per call, values against its rules.

Where we differ on purpose the test says so and tests/trackers/test_fakeai_differences.py holds the row.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fakeai_metrics import (
    CostTracker,
    ErrorMetricsTracker,
    ErrorPattern,
    ErrorRecord,
    InvalidMetricInput,
    MetricsTracker,
    ModelMetricsTracker,
    StreamingMetricsTracker,
    hash_key,
)
from fakeai_metrics.cost_tracker import (
    AUDIO_PRICING,
    FINE_TUNING_PRICING,
    IMAGE_PRICING,
    MODEL_PRICING,
)
from fakeai_metrics.model_metrics import DEFAULT_PRICING, ModelStats
from fakeai_metrics.model_metrics import MODEL_PRICING as MODEL_PRICING_PER_1K
from fakeai_metrics.testing import ManualClock, MetricNotFound, metric_value

CHAT = "/v1/chat/completions"
HOUR = 3600.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000.0)  # on an hour boundary


# --- MetricsTracker ----------------------------------------------------------------------------


def test_request_timer_returns_latency_and_records_a_response(clock):
    t = MetricsTracker(clock=clock)
    rid = t.start_request_timer(CHAT)
    assert isinstance(rid, int)
    clock.advance(0.25)
    assert t.end_request_timer(CHAT, rid) == pytest.approx(0.25)
    stats = t.get_metrics()["responses"][CHAT]
    assert stats["avg"] == pytest.approx(0.25)
    # an id this endpoint never started: a response without latency, 0.0
    assert t.end_request_timer(CHAT, rid + 1000) == 0.0
    assert t.get_metrics()["responses"][CHAT]["avg"] == pytest.approx(0.25)
    assert t._latency.get((CHAT,)).count == 1


def test_request_timers_are_bounded_per_endpoint(clock):
    t = MetricsTracker(clock=clock)
    first = t.start_request_timer(CHAT)
    for _ in range(1000):
        t.start_request_timer(CHAT)
    assert len(t._timers[CHAT]) == 1000
    assert t.end_request_timer(CHAT, first) == 0.0  # the oldest was forgotten


def test_get_prometheus_metrics_is_this_trackers_text_only(telemetry, metrics_clock):
    telemetry.record_request(endpoint=CHAT, model="gpt-4o", latency_s=0.2, prompt_tokens=10,
                             completion_tokens=5, api_key="sk-x")
    text = telemetry.metrics.get_prometheus_metrics()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "fakeai_endpoint_requests" in names and "fakeai_endpoint_response_seconds" in names
    assert not any(n.startswith("fakeai_cost") for n in names)  # the cost tracker's own
    assert 'fakeai_endpoint_requests_total{endpoint="/v1/chat/completions"} 1.0' in text
    cost_text = telemetry.cost.get_prometheus_metrics()
    assert "fakeai_cost_usd_total" in cost_text and "endpoint_requests" not in cost_text


def test_get_csv_metrics_rows_and_crlf(clock):
    t = MetricsTracker(clock=clock)
    t.track_error("/v1/old")
    clock.advance(120)  # the old error leaves the window: its row is left out
    t.track_request(CHAT)
    t.track_response(CHAT, 0.5)
    t.track_tokens(CHAT, 30)
    t.track_error(CHAT)
    text = t.get_csv_metrics()
    lines = text.split("\r\n")
    assert lines[0] == ("metric_type,endpoint,rate,avg_latency,min_latency,max_latency,"
                        "p50_latency,p90_latency,p99_latency")
    assert lines[-1] == ""  # every line ends in CRLF
    rows = [line.split(",") for line in lines[1:-1]]
    assert [r[0] for r in rows] == ["requests", "responses", "tokens", "errors"]
    assert all(r[1] == CHAT for r in rows)
    assert rows[1][3:] == ["0.5"] * 6  # response rows carry the latency columns
    assert all(float(x) == 0.0 for r in (rows[0], rows[2], rows[3]) for x in r[3:])
    # tokens per second over the window: 59 whole seconds plus the running one (0 s in)
    assert float(rows[2][2]) == pytest.approx(30 / 59)


@pytest.mark.parametrize("errors,status", [(0, "healthy"), (5, "healthy"), (6, "degraded"),
                                           (10, "degraded"), (11, "unhealthy")])
def test_get_detailed_health_status_thresholds(clock, errors, status):
    t = MetricsTracker(clock=clock)
    for i in range(100):
        t.track_request(CHAT)
        t.track_response(CHAT, 0.1 if i % 2 else 0.3)
    for _ in range(errors):
        t.track_error(CHAT)
    clock.advance(30)
    h = t.get_detailed_health()
    assert h["status"] == status
    s = h["metrics_summary"]
    assert s["error_rate_percentage"] == round(errors / 100 * 100, 2)
    assert s["total_requests_per_second"] == pytest.approx(100 / 59)  # over the window
    assert s["average_latency_seconds"] == 0.2
    assert s["active_streams"] == 0
    ep = h["endpoints"][CHAT]
    assert ep["requests_per_second"] == pytest.approx(100 / 59)
    assert ep["latency_p50_ms"] == pytest.approx(100, rel=0.02)
    assert ep["latency_p99_ms"] == pytest.approx(300, rel=0.02)
    assert h["uptime_seconds"] == pytest.approx(30)


def test_get_detailed_health_empty():
    h = MetricsTracker().get_detailed_health()
    assert h["status"] == "healthy" and h["uptime_seconds"] == 0.0 and h["endpoints"] == {}
    assert h["metrics_summary"]["error_rate_percentage"] == 0
    assert h["metrics_summary"]["average_latency_seconds"] == 0


def test_metrics_shutdown_is_idempotent_and_keeps_data(clock):
    t = MetricsTracker(clock=clock)
    t.track_request(CHAT)
    t.shutdown()
    t.shutdown()
    t.track_request(CHAT)
    assert t._requests.get((CHAT,)) == 2


# --- CostTracker -------------------------------------------------------------------------------


def test_pricing_constants_are_fakeais():
    assert len(MODEL_PRICING) == 30
    assert MODEL_PRICING["gpt-4o"][1:] == (5.0, 15.0, 2.5)
    assert MODEL_PRICING["deepseek-v3"].output_price_per_million == 1.1
    assert len(IMAGE_PRICING) == 9 and set(AUDIO_PRICING) == {"tts-1", "tts-1-hd", "whisper-1"}
    assert FINE_TUNING_PRICING["gpt-4o-2024-08-06"] == {"training": 25.0, "input": 3.75,
                                                        "output": 15.0}
    assert len(MODEL_PRICING_PER_1K) == 49 and DEFAULT_PRICING == {"input": 0.001,
                                                                   "output": 0.002}
    assert MODEL_PRICING_PER_1K["deepseek-v3"] == {"input": 0.027, "output": 0.11}
    assert not any(k.startswith("o1") for k in MODEL_PRICING_PER_1K)


def _unpriced(t: CostTracker, model: str) -> float:
    try:
        return metric_value(t.registry, "fakeai_unpriced_requests_total", {"model": model})
    except MetricNotFound:
        return 0


@pytest.mark.parametrize("model,prompt,completion,cost,priced", [
    ("gpt-4o", 1_000_000, 1_000_000, 20.0, True),
    ("ft:gpt-4o-2024-08-06:org::abc", 1_000_000, 1_000_000, 3.75 + 15.0, True),
    ("ft:gpt-4o-mini-2024-07-18:org::abc", 1_000_000, 0, 0.30, True),
    ("ft:gpt-4o:org::abc", 1_000_000, 1_000_000, 0.5 + 1.5, False),  # no fine-tuned rates
    ("my-llm", 1_000_000, 1_000_000, 0.5 + 1.5, False),  # gpt-3.5-turbo's price
    ("text-embedding-3-large", 1_000_000, 0, 0.13, True),
])
def test_token_pricing_rules(model, prompt, completion, cost, priced):
    registry_tracker = CostTracker()
    assert registry_tracker.record_usage("k", model, CHAT, prompt, completion) == \
        pytest.approx(cost)
    assert _unpriced(registry_tracker, model) == (0 if priced else 1)


def test_fine_tuned_names_get_no_cached_discount():
    t = CostTracker()
    cost = t.record_usage("k", "ft:gpt-4o-2024-08-06:o::i", CHAT, 1_000_000, 0,
                          cached_tokens=1_000_000)
    assert cost == pytest.approx(3.75)


@pytest.mark.parametrize("model,metadata,cost,priced", [
    ("dall-e-3", {}, 0.04, True),
    ("dall-e-3", {"size": "1024x1792", "quality": "hd", "n": 2}, 0.24, True),
    ("dall-e-2", {"size": "256x256"}, 0.016, True),
    ("dall-e-2", {"size": "256x256", "quality": "hd", "n": 3}, 0.06, False),  # no such row
])
def test_image_pricing_from_metadata(model, metadata, cost, priced):
    t = CostTracker()
    assert t.record_usage("k", model, "/v1/images/generations", 0, 0, metadata=metadata) == \
        pytest.approx(cost)
    assert _unpriced(t, model) == (0 if priced else 1)


@pytest.mark.parametrize("model,endpoint,chars,cost", [
    ("tts-1", "/v1/audio/speech", 1_000_000, 15.0),
    ("tts-1-hd", "/v1/audio/speech", 500_000, 15.0),
    ("whisper-1", "/v1/audio/transcriptions", 1_000_000, 6.0),
    ("my-voice", "/v1/audio/speech", 1_000_000, 0.0),
])
def test_audio_pricing_from_metadata(model, endpoint, chars, cost):
    t = CostTracker()
    assert t.record_usage("k", model, endpoint, 0, 0, metadata={"characters": chars}) == \
        pytest.approx(cost)


@pytest.mark.parametrize("metadata,field", [
    ({"n": -1}, "metadata['n']"), ({"n": "2"}, "metadata['n']"),
    ({"size": ""}, "metadata['size']"), ({"quality": 3}, "metadata['quality']"),
])
def test_bad_metadata_is_rejected_and_changes_nothing(metadata, field):
    t = CostTracker()
    with pytest.raises(InvalidMetricInput, match=re.escape(field)):
        t.record_usage("k", "dall-e-3", "/v1/images/generations", 0, 0, metadata=metadata)
    with pytest.raises(InvalidMetricInput, match="metadata must be a mapping"):
        t.record_usage("k", "dall-e-3", "/v1/images/generations", 0, 0, metadata=[1])
    assert t.get_total_cost() == 0 and t.get_cost_by_key("k")["requests"] == 0


def test_get_projected_monthly_cost(clock):
    t = CostTracker(clock=clock)
    assert t.get_projected_monthly_cost() == 0.0
    t.record_usage("a", "gpt-4o", CHAT, 1_000_000, 0)  # $5, will be 8 days old
    clock.advance(8 * 86400)
    t.record_usage("a", "gpt-4o", CHAT, 2_000_000, 0)  # $10, 3 days old
    clock.advance(3 * 86400)
    t.record_usage("b", "gpt-4o", CHAT, 0, 1_000_000)  # $15 now
    assert t.get_projected_monthly_cost() == pytest.approx((10 + 15) / 7 * 30)
    assert t.get_projected_monthly_cost("a") == pytest.approx(10 / 7 * 30)
    assert t.get_projected_monthly_cost("") == pytest.approx((10 + 15) / 7 * 30)  # falsy: all
    assert t.get_projected_monthly_cost("nobody") == 0.0


def test_optimization_suggestions(clock):
    t = CostTracker(clock=clock)
    for _ in range(99):  # $0.03 each on gpt-4 = $2.97; prompts 1M tokens for caching
        t.record_usage("big", "gpt-4", CHAT, 1000, 0)
    assert t.get_optimization_suggestions() == []  # analysed on the 100th record only
    t.record_usage("big", "gpt-4", CHAT, 1000, 0)
    by_type = {s.suggestion_type: s for s in t.get_optimization_suggestions("big")}
    cheaper = by_type["cheaper_model"]
    assert cheaper.api_key == hash_key("big")
    assert cheaper.potential_savings == pytest.approx(0.75 * 3.0)
    assert "GPT-4o" in cheaper.description and "GPT-4" in cheaper.description
    assert cheaper.details == {"current_model": "gpt-4", "suggested_model": "gpt-4o",
                               "current_cost": pytest.approx(3.0), "requests": 100}
    # 100 records x 1000 prompt tokens: daily = 0.1M / 1e6 * 2.5 * 0.5 = 0.125 > 0.10
    caching = by_type["enable_caching"]
    assert caching.potential_savings == pytest.approx(0.125 * 30)
    assert "caching" in caching.description
    assert caching.details == {"requests_per_day": 100, "daily_savings": pytest.approx(0.125)}
    assert t.get_optimization_suggestions("other") == []
    # a copy: changing it changes nothing stored
    t.get_optimization_suggestions()[0].details.clear()
    assert t.get_optimization_suggestions()[0].details


def test_suggestions_need_ten_records_of_the_key_in_24h(clock):
    t = CostTracker(clock=clock)
    for _ in range(95):
        t.record_usage("a", "gpt-4", CHAT, 100_000, 0)
    clock.advance(2 * 86400)
    for _ in range(5):
        t.record_usage("a", "gpt-4", CHAT, 100_000, 0)  # 100th record; 5 in the last 24 h
    assert t.get_optimization_suggestions() == []


def test_get_cache_savings_gpt4o_matches_fakeai():
    t = CostTracker()
    t.record_usage("a", "gpt-4o", CHAT, 2_000_000, 0, cached_tokens=1_000_000)
    t.record_usage("b", "gpt-4o", CHAT, 1_000_000, 0, cached_tokens=1_000_000)
    assert t.get_cache_savings() == {"cached_tokens": 2_000_000, "savings": pytest.approx(5.0),
                                     "regular_cost": pytest.approx(10.0),
                                     "cached_cost": pytest.approx(5.0)}
    assert t.get_cache_savings("a")["cached_tokens"] == 1_000_000
    assert t.get_cache_savings("nobody") == {"cached_tokens": 0, "savings": 0.0,
                                             "regular_cost": 0.0, "cached_cost": 0.0}


def test_get_batch_savings_gpt4o_completions_match_fakeai():
    t = CostTracker()
    assert t.get_batch_savings() == {"batch_requests": 0, "completion_tokens": 0,
                                     "regular_cost": 0.0, "batch_cost": 0.0, "savings": 0.0}
    t.record_usage("a", "gpt-4o", "/v1/batches", 0, 1_000_000)
    t.record_usage("a", "gpt-4o", CHAT, 0, 1_000_000)  # not a batch
    assert t.get_batch_savings("a") == {"batch_requests": 1, "completion_tokens": 1_000_000,
                                        "regular_cost": pytest.approx(15.0),
                                        "batch_cost": pytest.approx(7.5),
                                        "savings": pytest.approx(7.5)}


def test_cost_shutdown_is_idempotent_and_keeps_data():
    t = CostTracker()
    t.record_usage("a", "gpt-4o", CHAT, 1000, 0)
    t.shutdown()
    t.shutdown()
    t.record_usage("a", "gpt-4o", CHAT, 1000, 0)
    assert t.get_cost_by_key("a")["requests"] == 2


def test_get_cost_by_key_period_hours(clock):
    t = CostTracker(clock=clock)
    t.set_budget("a", 100.0)
    t.record_usage("a", "gpt-4o", CHAT, 1_000_000, 0, cached_tokens=500_000)  # $3.75
    clock.advance(3 * HOUR)
    t.record_usage("a", "gpt-4o-mini", "/v1/completions", 1_000_000, 1_000_000)  # $0.75
    clock.advance(10)
    recent = t.get_cost_by_key("a", period_hours=1)
    assert recent["requests"] == 1 and recent["period_hours"] == 1
    assert recent["total_cost"] == pytest.approx(0.75)
    assert recent["by_model"] == {"gpt-4o-mini": pytest.approx(0.75)}
    assert recent["by_endpoint"] == {"/v1/completions": pytest.approx(0.75)}
    assert recent["tokens_by_model"] == {"gpt-4o-mini": {"prompt": 1_000_000,
                                                         "completion": 1_000_000, "cached": 0}}
    # tokens and budget are lifetime, whatever the period (FakeAI's shape)
    assert recent["tokens"] == {"prompt_tokens": 2_000_000, "completion_tokens": 1_000_000,
                                "cached_tokens": 500_000, "total_tokens": 3_000_000}
    assert recent["budget"]["used"] == pytest.approx(4.5)
    everything = t.get_cost_by_key("a", period_hours=0)  # 0 and None: all time
    assert everything["requests"] == 2 and everything["total_cost"] == pytest.approx(4.5)
    assert everything["period_hours"] == 0
    assert t.get_cost_by_key("a")["tokens_by_model"]["gpt-4o"]["cached"] == 500_000


def test_get_cost_by_key_without_match_drops_two_keys(clock):
    t = CostTracker(clock=clock)
    t.record_usage("a", "gpt-4o", CHAT, 1000, 0)
    clock.advance(5 * HOUR)
    none = t.get_cost_by_key("a", period_hours=2)
    assert none["requests"] == 0 and none["total_cost"] == 0.0
    assert none["by_model"] == {} and none["by_endpoint"] == {}
    assert "tokens_by_model" not in none and "period_hours" not in none
    assert none["tokens"]["prompt_tokens"] == 1000
    unknown = t.get_cost_by_key("nobody")
    assert unknown["tokens"] == {} and unknown["budget"] is None


def test_get_cost_by_key_period_is_validated():
    t = CostTracker()
    for bad in (-1, 1.5, "2", 169):
        with pytest.raises(InvalidMetricInput, match="period_hours"):
            t.get_cost_by_key("a", period_hours=bad)


# --- ModelMetricsTracker -----------------------------------------------------------------------


def test_track_tokens_adds_tokens_and_cost_not_requests():
    t = ModelMetricsTracker()
    t.track_tokens("deepseek-v3", 1000, 1000)  # FakeAI's model table: .027 + .11 per 1K
    stats = t.get_model_stats("deepseek-v3")
    assert stats["request_count"] == 0
    assert stats["tokens"] == {"prompt": 1000, "completion": 1000, "total": 2000}
    assert stats["cost"]["total_usd"] == pytest.approx(0.137)
    assert stats["cost"]["per_request_usd"] == 0.0 and stats["errors"]["rate_percent"] == 0.0
    assert t.get_multi_dimensional_stats() == {"model_by_endpoint": {}, "model_by_user": {},
                                               "model_by_time_24h": {}}


def test_model_tracker_prices_unknown_and_fine_tuned_at_its_default():
    t = ModelMetricsTracker()
    t.track_request("ft:gpt-4o-2024-08-06:o::i", CHAT, 1000, 1000)
    t.track_request("my-llm", CHAT, 1000, 1000)
    for model in ("ft:gpt-4o-2024-08-06:o::i", "my-llm"):  # DEFAULT_PRICING: .001 + .002
        assert t.get_model_stats(model)["cost"]["total_usd"] == pytest.approx(0.003)


def test_track_latency_observes_without_counting_a_request():
    t = ModelMetricsTracker()
    t.track_latency("gpt-4o", 100.0)
    t.track_latency("gpt-4o", 300.0)
    stats = t.get_model_stats("gpt-4o")
    assert stats["request_count"] == 0
    assert stats["latency"]["avg_ms"] == pytest.approx(200.0)
    assert stats["latency"]["max_ms"] == pytest.approx(300.0)
    with pytest.raises(InvalidMetricInput, match="latency_ms"):
        t.track_latency("gpt-4o", -1.0)


def test_get_multi_dimensional_stats(clock):
    t = ModelMetricsTracker(clock=clock)
    start_hour = int(clock() // 3600) * 3600
    t.track_request("old-model", CHAT)
    t.track_request("gpt-4o", CHAT, user="alice")
    t.track_request("gpt-4o", "/v1/completions")
    clock.advance(2 * HOUR)
    t.track_request("gpt-4o", CHAT, user="alice")
    t.track_request("gpt-4o-mini", CHAT)
    clock.advance(23 * HOUR)
    t.track_request("gpt-4o", CHAT)
    stats = t.get_multi_dimensional_stats()
    assert stats["model_by_endpoint"] == {"old-model": {CHAT: 1},
                                          "gpt-4o": {CHAT: 3, "/v1/completions": 1},
                                          "gpt-4o-mini": {CHAT: 1}}
    assert stats["model_by_user"] == {"gpt-4o": {hash_key("alice"): 2}}
    # hours from the one that started 24 h before the current one; models without any: absent
    assert stats["model_by_time_24h"] == {
        "gpt-4o": [{"timestamp": start_hour + 2 * 3600, "count": 1},
                   {"timestamp": start_hour + 25 * 3600, "count": 1}],
        "gpt-4o-mini": [{"timestamp": start_hour + 2 * 3600, "count": 1}]}


# --- ErrorMetricsTracker -----------------------------------------------------------------------


def test_record_request_counts_nothing_twice():
    t = ErrorMetricsTracker()
    t.record_request(CHAT, "gpt-4o")
    t.record_success(CHAT, "gpt-4o")
    assert t.get_slo_status().total_requests == 1
    with pytest.raises(InvalidMetricInput, match="endpoint"):
        t.record_request("")


def test_cleanup_old_patterns(clock):
    t = ErrorMetricsTracker(clock=clock)
    t.record_error(CHAT, 500, "ServerError", "db down")
    clock.advance(2 * HOUR)
    t.record_error(CHAT, 429, "RateLimit", "slow down")
    assert t.cleanup_old_patterns() == 1  # older than an hour
    assert [p.error_type for p in t.get_error_patterns(min_count=1, recent_only=False)] == \
        ["RateLimit"]
    assert t.cleanup_old_patterns(0) == 1  # <= 0: all
    assert t.get_error_patterns(min_count=1, recent_only=False) == []
    assert t.get_metrics()["total_errors"] == 2  # counters are kept


def _fakeai_fp(error_type: str, endpoint: str, message: str) -> str:
    """FakeAI's rule, spelled out for the test: the replacements in order, cut to 200."""
    message = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<UUID>",
                     message, flags=re.I)
    message = re.sub(r"req-[a-zA-Z0-9]+", "<REQUEST_ID>", message)
    message = re.sub(r"0x[0-9a-fA-F]+", "<ADDR>", message)
    message = re.sub(r"\d+", "<NUM>", message)[:200]
    return hashlib.sha256(f"{error_type}:{endpoint}:{message}".encode()).hexdigest()[:8]


def test_error_record_fingerprint_rule():
    msg = ("req-abc123 failed at 0xdeadBEEF after 42 ms for "
           "123e4567-e89b-12d3-a456-426614174000 " + "x" * 300)
    r = ErrorRecord(1.0, CHAT, 500, "ServerError", msg, model="gpt-4o")
    assert r.fingerprint == _fakeai_fp("ServerError", CHAT, msg)
    assert len(r.fingerprint) == 8
    same = ErrorRecord(2.0, CHAT, 500, "ServerError", msg.replace("after 42", "after 7").replace(
        "abc123", "zz9"))
    assert same.fingerprint == r.fingerprint
    assert ErrorRecord(1.0, CHAT, 500, "ServerError", msg, fingerprint="given").fingerprint == \
        "given"
    assert [f for f in ErrorRecord.__dataclass_fields__] == [
        "timestamp", "endpoint", "status_code", "error_type", "error_message", "model",
        "api_key", "request_id", "user_id", "stack_trace", "fingerprint"]
    assert r.to_dict()["fingerprint"] == r.fingerprint


def test_error_pattern_affected_users_and_to_dict():
    t = ErrorMetricsTracker()
    for i in range(12):
        t.record_error(CHAT, 500, "ServerError", f"boom {i}", model="gpt-4o",
                       request_id=f"r{i}", user_id=f"user-{i % 3}")
    (p,) = t.get_error_patterns()
    assert isinstance(p, ErrorPattern)
    assert p.affected_users == {hash_key(f"user-{i}") for i in range(3)}
    assert len(p.example_request_ids) == 10
    d = p.to_dict()
    assert d["affected_users_count"] == 3 and d["example_request_ids"] == [f"r{i}" for i in
                                                                           range(5)]
    assert d["count"] == 12 and d["affected_models"] == ["gpt-4o"]
    assert set(d) == {"fingerprint", "error_type", "endpoint", "normalized_message", "count",
                      "first_seen", "last_seen", "affected_models", "affected_users_count",
                      "example_request_ids"}


@pytest.mark.parametrize("successes,errors,slo,budget", [
    (1000, 1, 0.999, 1),   # 1001 requests at 99.9 % allow 1 error
    (1998, 2, 0.999, 2),
    (499, 0, 0.999, 0),
    (9995, 5, 0.999, 10),
])
def test_slo_error_budget_is_whole_errors(successes, errors, slo, budget):
    t = ErrorMetricsTracker(error_budget_slo=slo)
    for _ in range(successes):
        t.record_success(CHAT)
    for _ in range(errors):
        t.record_error(CHAT, 500, "E")
    s = t.get_slo_status()
    assert s.error_budget_total == budget and type(s.error_budget_total) is int
    assert s.error_budget_remaining == max(0, budget - errors)
    assert type(s.error_budget_remaining) is int
    assert s.error_budget_consumed == errors
    expected_pct = (budget - errors) / budget * 100 if budget else 100.0
    assert s.error_budget_percentage == pytest.approx(max(0.0, expected_pct))
    assert s.slo_violated == (successes / (successes + errors) < slo)
    assert s.burn_rate == pytest.approx(errors / (successes + errors) / (1 - slo))


def test_slo_status_with_no_requests():
    s = ErrorMetricsTracker().get_slo_status()
    assert (s.total_requests, s.current_success_rate, s.current_error_rate) == (0, 1.0, 0.0)
    assert (s.error_budget_total, s.error_budget_percentage, s.burn_rate) == (0, 100.0, 0.0)
    assert s.slo_violated is False and s.endpoint_error_rates == {}


# --- StreamingMetricsTracker -------------------------------------------------------------------


def test_record_first_token_time(clock):
    t = StreamingMetricsTracker(clock=clock)
    t.start_stream("s", "gpt-4o")
    t.record_first_token_time("s", 150.0)
    t.record_first_token_time("s", 900.0)  # already set: ignored
    clock.advance(0.5)
    t.record_token("s")
    assert t.get_stream_details("s")["ttft_ms"] == pytest.approx(150.0)
    assert t.get_metrics().p50_ttft == pytest.approx(150.0, rel=0.01)
    with pytest.raises(InvalidMetricInput, match="ttft_ms"):
        t.record_first_token_time("s", float("nan"))


def test_record_backpressure(clock):
    t = StreamingMetricsTracker(clock=clock)
    t.start_stream("s", "gpt-4o")
    t.record_backpressure("s")
    t.record_backpressure("s")
    t.record_backpressure("unknown")  # no-op (counted as dropped)
    assert t.get_stream_details("s")["backpressure_count"] == 2


def test_get_stream_details(clock):
    t = StreamingMetricsTracker(clock=clock, max_completed_streams=2)
    assert t.get_stream_details("nope") is None
    t.start_stream("a", "gpt-4o")
    clock.advance(0.1)
    t.record_token("a")
    active = t.get_stream_details("a")
    assert active == {"stream_id": "a", "model": "gpt-4o", "status": "active",
                      "tokens_generated": 1, "backpressure_count": 0,
                      "duration_ms": pytest.approx(100.0), "ttft_ms": pytest.approx(100.0),
                      "tps": pytest.approx(10.0), "avg_itl_ms": None}
    for _ in range(3):
        clock.advance(0.05)
        t.record_token("a")
    clock.advance(0.05)
    t.complete_stream("a", "length")
    done = t.get_stream_details("a")
    assert done["status"] == "completed" and done["finish_reason"] == "length"
    assert done["error_message"] is None
    assert done["duration_ms"] == pytest.approx(300.0)
    assert done["avg_itl_ms"] == pytest.approx(50.0)
    assert done["tps"] == pytest.approx(4 / 0.3)
    clock.advance(10)
    assert t.get_stream_details("a")["duration_ms"] == pytest.approx(300.0)  # fixed at the end
    t.start_stream("b", "gpt-4o")
    t.fail_stream("b", "upstream reset")
    failed = t.get_stream_details("b")
    assert failed["status"] == "failed" and failed["error_message"] == "upstream reset"
    t.start_stream("c", "gpt-4o")
    t.complete_stream("c")
    assert t.get_stream_details("a") is None  # only the newest max_completed_streams are kept


def test_streaming_aggregate_metrics_to_dict(clock):
    t = StreamingMetricsTracker(clock=clock)
    t.start_stream("a", "gpt-4o")
    t.record_backpressure("a")
    clock.advance(0.123456)
    t.record_token("a")
    clock.advance(0.01)
    t.record_token("a")
    t.start_stream("b", "gpt-4o")
    t.complete_stream("a")
    d = t.get_metrics().to_dict()
    assert (d["total_streams"], d["active_streams"], d["completed_streams"]) == (2, 1, 1)
    assert d["success_rate"] == 0.5 and d["total_backpressure_events"] == 1
    assert set(d["ttft"]) == {"avg", "p50", "p95", "p99", "min", "max"}
    assert d["ttft"]["min"] == 123.46  # ms, 2 decimals
    assert set(d["itl"]) == set(d["duration"]) == {"avg", "p50", "p95", "p99"}
    assert d["itl"]["avg"] == pytest.approx(10.0, abs=0.01)
    assert {"avg_tokens_per_second", "p99_tokens_per_second", "total_tokens_generated",
            "total_bytes_sent", "streams_by_model", "tokens_by_model"} <= set(d)


def test_model_stats_dataclass():
    st = ModelStats(model="gpt-4o")
    assert (st.get_avg_latency_ms(), st.get_uptime_seconds(), st.get_error_rate()) == (0, 0, 0)
    assert st.get_latency_percentiles() == {"p50": 0.0, "p90": 0.0, "p95": 0.0, "p99": 0.0}
    st.add_request(1000, 500, 100.0, endpoint=CHAT, user="u")
    st.add_request(1000, 0, 0.0, error=True)  # latency 0: totalled, not kept
    st.add_request(0, 0, 300.0, endpoint=CHAT)
    assert (st.request_count, st.total_tokens, st.error_count) == (3, 2500, 1)
    assert st.latencies == [100.0, 300.0] and st.get_avg_latency_ms() == pytest.approx(400 / 3)
    assert st.get_error_rate() == pytest.approx(100 / 3)
    assert st.endpoint_requests == {CHAT: 2} and st.user_tokens == {"u": 1500}
    assert len(st.request_timeline) == 3 and st.first_request_time <= st.last_request_time
    p = st.get_latency_percentiles()  # linear between ranks: 100 + 200 * q
    assert (p["p50"], p["p90"], p["p99"]) == (pytest.approx(200), pytest.approx(280),
                                              pytest.approx(298))
    assert st.calculate_cost() == pytest.approx(2 * 0.005 + 0.5 * 0.015)
    assert ModelStats("ft:gpt-4o:o::i", total_prompt_tokens=1000).calculate_cost() == 0.001


def test_cost_by_model_endpoint_and_total_take_a_period(clock):
    t = CostTracker(clock=clock)
    t.record_usage("a", "gpt-4o", CHAT, 1_000_000, 0)  # $5
    clock.advance(5 * HOUR)
    t.record_usage("b", "gpt-4o-mini", "/v1/completions", 1_000_000, 0)  # $0.15
    assert t.get_cost_by_model() == {"gpt-4o": pytest.approx(5), "gpt-4o-mini": pytest.approx(
        0.15)}
    assert t.get_cost_by_model(period_hours=2) == {"gpt-4o-mini": pytest.approx(0.15)}
    assert t.get_cost_by_endpoint(2) == {"/v1/completions": pytest.approx(0.15)}
    assert t.get_total_cost(2) == pytest.approx(0.15)
    assert t.get_total_cost() == t.get_total_cost(0) == pytest.approx(5.15)
    with pytest.raises(InvalidMetricInput, match="period_hours"):
        t.get_total_cost(500)


def test_every_tracker_exports_exactly_its_own_series(telemetry):
    from fakeai_metrics.catalog import owned_by
    telemetry.record_request(endpoint=CHAT, model="gpt-4o", latency_s=0.2, prompt_tokens=10,
                             completion_tokens=5, api_key="sk-x")
    telemetry.record_failure(endpoint=CHAT, model="gpt-4o", status_code=500, error_type="E")
    telemetry.start_stream("s", endpoint=CHAT, model="gpt-4o")
    telemetry.stream_token("s")
    for tracker, owner in [(telemetry.metrics, "endpoints"), (telemetry.cost, "cost"),
                           (telemetry.models, "models"), (telemetry.errors, "errors"),
                           (telemetry.streaming, "streaming")]:
        text = tracker.get_prometheus_metrics()
        names = {f.name for f in text_string_to_metric_families(text)}
        assert names == {s.full_name().removesuffix("_total") for s in owned_by(owner)}, owner


@pytest.mark.parametrize("call,argument", [
    (lambda: MetricsTracker().end_request_timer(CHAT, "1"), "request_id"),
    (lambda: MetricsTracker().start_request_timer(""), "endpoint"),
    (lambda: ModelMetricsTracker().track_tokens("gpt-4o", 1.5, 0), "prompt_tokens"),
    (lambda: ModelMetricsTracker().track_tokens("", 1, 0), "model"),
    (lambda: ErrorMetricsTracker().cleanup_old_patterns(float("nan")), "age_seconds"),
    (lambda: CostTracker().get_projected_monthly_cost(5), "api_key"),
])
def test_new_calls_refuse_bad_arguments_by_name(call, argument):
    with pytest.raises(InvalidMetricInput, match=argument):
        call()


def test_error_metrics_rates_as_fakeai():
    t = ErrorMetricsTracker()
    m = t.get_metrics()
    assert (m["error_rate"], m["success_rate"]) == (0.0, 0.0)  # no requests yet
    for _ in range(2):
        t.record_success(CHAT)
    t.record_error(CHAT, 500, "E")
    m = t.get_metrics()
    assert (m["error_rate"], m["success_rate"]) == (0.333333, 0.666667)
