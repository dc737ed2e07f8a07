"""Each row of the README's "Differences from FakeAI" table, checked: one test per row id."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from fakeai_metrics import (
    CostTracker,
    ErrorMetricsTracker,
    ErrorRecord,
    InvalidMetricInput,
    LabelLimits,
    MetricsTracker,
    ModelMetricsTracker,
    StreamingMetricsTracker,
    Telemetry,
    hash_key,
)
from fakeai_metrics.testing import ManualClock, metric_value

README = Path(__file__).resolve().parents[2] / "README.md"
CHAT = "/v1/chat/completions"
KEY = "sk-live-secret-0123456789"


def _table_ids() -> list[str]:
    section = README.read_text().split("## Differences from FakeAI")[1].split("\n## ")[0]
    return re.findall(r"^\| `([a-z-]+)` \|", section, re.M)


def test_every_row_has_its_test():
    ids = _table_ids()
    tested = sorted(name[len("test_row_"):].replace("_", "-")
                    for name in globals() if name.startswith("test_row_"))
    assert sorted(ids) == tested and len(ids) == len(set(ids))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000.0)


def test_row_key_ids():
    t = Telemetry(registry=CollectorRegistry())
    for _ in range(100):
        t.cost.record_usage(KEY, "gpt-4", CHAT, 10_000, 0)
    t.errors.record_error(CHAT, 401, "AuthError", f"bad key {KEY}", api_key=KEY, user_id=KEY)
    t.models.track_request("gpt-4o", CHAT, user=KEY)
    seen = repr([t.cost.get_cost_by_key(KEY), t.cost.get_optimization_suggestions(),
                 [r.to_dict() for r in t.errors.get_recent_errors()],
                 [p.to_dict() for p in t.errors.get_error_patterns(min_count=1)],
                 t.models.get_multi_dimensional_stats()])
    assert KEY not in seen and KEY[:20] not in seen
    assert hash_key(KEY) in seen


def test_row_no_singletons():
    a, b = CostTracker(), CostTracker()
    a.record_usage("k", "gpt-4o", CHAT, 1000, 0)
    assert a is not b and b.get_total_cost() == 0
    assert MetricsTracker() is not MetricsTracker()
    assert ModelMetricsTracker() is not ModelMetricsTracker()


def test_row_no_threads():
    before = threading.active_count()
    trackers = [MetricsTracker(), CostTracker()]
    assert threading.active_count() == before
    trackers[1].record_usage("k", "gpt-4o", CHAT, 1000, 0)
    for t in trackers:
        t.shutdown()
        t.shutdown()
    assert trackers[1].get_cost_by_key("k")["requests"] == 1


def test_row_bad_input():
    t = CostTracker()
    with pytest.raises(InvalidMetricInput, match="prompt_tokens"):
        t.record_usage("k", "gpt-4o", CHAT, -5, 0)
    m = ModelMetricsTracker()
    with pytest.raises(InvalidMetricInput, match="latency_ms"):
        m.track_latency("gpt-4o", float("nan"))
    with pytest.raises(InvalidMetricInput, match="completion_tokens"):
        m.track_tokens("gpt-4o", 1, -1)
    assert t.get_total_cost() == 0 and m.get_all_models_stats() == {}
    with pytest.raises(ValueError, match="metric"):
        m.get_model_ranking("speed")


def test_row_stream_drops():
    t = StreamingMetricsTracker(max_active_streams=1)
    t.start_stream("a", "gpt-4o")
    assert t.start_stream("b", "gpt-4o") is False  # FakeAI: ValueError
    t.record_backpressure("nope")
    t.record_first_token_time("nope", 10.0)
    for event, reason in [("start", "capacity"), ("backpressure", "unknown_stream"),
                          ("first_token", "unknown_stream")]:
        assert metric_value(t.registry, "fakeai_stream_events_dropped_total",
                            {"event": event, "reason": reason}) == 1


def test_row_label_caps():
    registry = CollectorRegistry()
    t = CostTracker(registry=registry, limits=LabelLimits(registry=registry, models=1))
    t.record_usage("k", "gpt-4o", CHAT, 1000, 0)
    t.record_usage("k", "gpt-4o-mini", CHAT, 1000, 0)
    assert set(t.get_cost_by_key("k")["by_model"]) == {"gpt-4o", "__other__"}


def test_row_any_endpoint(clock):
    t = MetricsTracker(clock=clock)
    t.track_request("/internal/score")
    assert "/internal/score" in t.get_metrics()["requests"]


def test_row_rates(clock):
    t = MetricsTracker(clock=clock)
    t.track_request(CHAT)
    clock.advance(0.001)
    assert t.get_metrics()["requests"][CHAT]["rate"] == pytest.approx(1 / 59.001)


def test_row_prometheus_text(clock):
    t = MetricsTracker(clock=clock)
    t.track_response(CHAT, 0.2)
    t.start_stream("s", CHAT)
    t.complete_stream("s")  # a latency from a stream: FakeAI's export raises here
    families = {f.name: f for f in text_string_to_metric_families(t.get_prometheus_metrics())}
    assert families["fakeai_endpoint_response_seconds"].type == "histogram"
    assert "fakeai_requests_per_second" not in families


def test_row_timer_ends_once(clock):
    t = MetricsTracker(clock=clock)
    rid = t.start_request_timer(CHAT)
    clock.advance(0.5)
    assert t.end_request_timer(CHAT, rid) == pytest.approx(0.5)
    assert t.end_request_timer(CHAT, rid) == 0.0
    assert t._latency.get((CHAT,)).count == 1


def test_row_health_uptime(clock):
    t = MetricsTracker(clock=clock)
    t.track_request(CHAT)
    clock.advance(600)
    t.track_request(CHAT)
    assert t.get_detailed_health()["uptime_seconds"] == pytest.approx(600)


@pytest.mark.parametrize("model,cost", [("gpt-4o-2024-11-20", 20.0), ("openai/gpt-4o", 20.0),
                                        ("gpt-4o-2024-08-06", 12.5)])
def test_row_dated_names(model, cost):
    assert CostTracker().record_usage("k", model, CHAT, 1_000_000, 1_000_000) == \
        pytest.approx(cost)


def test_row_savings_prices():
    t = CostTracker()
    t.record_usage("k", "gpt-4o-mini", CHAT, 1_000_000, 0, cached_tokens=1_000_000)
    s = t.get_cache_savings()
    assert (s["regular_cost"], s["cached_cost"]) == (pytest.approx(0.15), pytest.approx(0.075))
    assert s["savings"] == pytest.approx(0.075)  # FakeAI: 2.50


def test_row_batch_savings():
    t = CostTracker()
    t.record_usage("k", "gpt-4o-mini", "/v1/batches", 1_000_000, 1_000_000)
    s = t.get_batch_savings()
    assert s["regular_cost"] == pytest.approx(0.75)  # FakeAI: 15.00 (completions at gpt-4o)
    assert s["batch_cost"] == pytest.approx(0.375) and s["savings"] == pytest.approx(0.375)


def test_row_suggestion_dedup():
    t = CostTracker()
    for _ in range(300):
        t.record_usage("k", "gpt-4", CHAT, 10_000, 0)
    types = [s.suggestion_type for s in t.get_optimization_suggestions()]
    assert sorted(types) == ["cheaper_model", "enable_caching"]
    cheaper = next(s for s in t.get_optimization_suggestions()
                   if s.suggestion_type == "cheaper_model")
    assert cheaper.details["requests"] == 300  # the newest analysis


def test_row_hourly_history(clock):
    t = CostTracker(clock=clock)
    t.record_usage("k", "gpt-4o", CHAT, 1_000_000, 0)
    clock.advance(2.5 * 3600)
    assert t.get_cost_by_key("k", period_hours=1)["requests"] == 0
    # the hour that holds now - 2 h counts whole: the 2.5 h old request is in (FakeAI: out)
    assert t.get_cost_by_key("k", period_hours=2)["requests"] == 1
    with pytest.raises(InvalidMetricInput, match="period_hours must be at most 168"):
        t.get_cost_by_key("k", period_hours=24 * 30)
    clock.advance(8 * 86400)
    assert t.get_projected_monthly_cost() == 0.0
    assert len(t._usage[hash_key("k")].hours) <= 169


def test_row_slo_window(clock):
    t = ErrorMetricsTracker(clock=clock, window_seconds=300)
    for _ in range(10):
        t.record_error(CHAT, 500, "E")
    clock.advance(600)
    t.record_success(CHAT)
    s = t.get_slo_status()
    assert (s.total_requests, s.failed_requests, s.slo_violated) == (1, 0, False)
    assert s.endpoint_error_rates == {CHAT: pytest.approx(10 / 11)}


def test_row_budget_exact():
    t = ErrorMetricsTracker(error_budget_slo=0.9)
    for _ in range(10):
        t.record_success(CHAT)
    assert t.get_slo_status().error_budget_total == 1  # FakeAI: 0
    zero = ErrorMetricsTracker(error_budget_slo=0.999)
    for _ in range(5):
        zero.record_success(CHAT)
    zero.record_error(CHAT, 500, "E")
    s = zero.get_slo_status()
    assert (s.error_budget_total, s.error_budget_percentage) == (0, 0.0)  # FakeAI: 100.0


def test_row_record_request():
    t = ErrorMetricsTracker()
    for _ in range(4):
        t.record_request(CHAT)
        t.record_success(CHAT)
    s = t.get_slo_status()
    assert (s.total_requests, s.current_success_rate) == (4, 1.0)  # FakeAI: 8, 0.5


def test_row_pattern_fingerprint():
    t = ErrorMetricsTracker()
    t.record_error(CHAT, 500, "E", "mail a@b.io failed", stack_trace="Traceback: sk-abc-123")
    t.record_error(CHAT, 500, "E", "mail c@d.org failed")
    (p,) = t.get_error_patterns(min_count=2)
    assert len(p.fingerprint) == 16
    record = t.get_recent_errors()[0]
    assert record.stack_trace is None
    built = ErrorRecord(1.0, CHAT, 500, "E", "mail a@b.io failed")
    assert len(built.fingerprint) == 8


def test_row_ttft_kept(clock):
    t = StreamingMetricsTracker(clock=clock)
    t.start_stream("s", "gpt-4o")
    t.record_first_token_time("s", 80.0)
    clock.advance(0.3)
    t.record_token("s")
    clock.advance(0.01)
    t.record_token("s")
    d = t.get_stream_details("s")
    assert d["ttft_ms"] == pytest.approx(80.0)  # FakeAI: 300
    assert d["avg_itl_ms"] == pytest.approx(10.0)  # between the two tokens, as FakeAI
    m = t.get_metrics()
    assert m.p50_itl == pytest.approx(10.0, rel=0.02)  # one gap, from the first token on


def test_row_track_latency():
    t = ModelMetricsTracker()
    t.track_request("gpt-4o", CHAT, latency_ms=100.0)
    t.track_latency("gpt-4o", 300.0)
    assert t.get_model_stats("gpt-4o")["latency"]["avg_ms"] == pytest.approx(200.0)  # FakeAI 400
    t.track_request("gpt-4o", CHAT)  # no latency: not averaged in (FakeAI: counts as 0)
    assert t.get_model_stats("gpt-4o")["latency"]["avg_ms"] == pytest.approx(200.0)
    assert ("unknown", "gpt-4o") in t._duration.series


def test_row_percentiles():
    t = ModelMetricsTracker()
    for ms in range(1, 1001):
        t.track_request("gpt-4o", CHAT, latency_ms=float(ms))
    lat = t.get_model_stats("gpt-4o")["latency"]
    assert lat["p50"] == pytest.approx(500, rel=0.01) and lat["p99"] == pytest.approx(990,
                                                                                      rel=0.01)


def test_row_no_deadlock():
    t = ModelMetricsTracker()
    t.track_request("gpt-4o", CHAT, 10, 5, 100.0)
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.extend(
        [t.get_all_models_stats(), t.get_model_ranking("cost")]), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert len(done) == 2 and done[1][0]["model"] == "gpt-4o"


def test_row_budget_period():
    t = CostTracker()
    t.set_budget("k", 10.0)
    t.record_usage("k", "gpt-4o", CHAT, 1_000_000, 0)
    assert t.get_cost_by_key("k")["budget"]["period"] == "never"  # FakeAI: monthly


def test_row_streaming_aggregates(clock):
    t = StreamingMetricsTracker(clock=clock, aggregation_window_seconds=60)
    t.start_stream("old", "gpt-4o")
    t.record_token("old")
    t.complete_stream("old")
    clock.advance(600)  # long past the aggregation window
    t.start_stream("open", "gpt-4o-mini")
    m = t.get_metrics()
    assert m.streams_by_model == {"gpt-4o": 1, "gpt-4o-mini": 1}  # FakeAI: {} (none in window)
    assert m.completed_streams == 1 and m.total_tokens_generated == 1
    t.start_stream("s2", "gpt-4o")
    clock.advance(0.2)
    t.record_token("s2")
    assert t.get_metrics().max_ttft == pytest.approx(200.0)  # not cached: FakeAI keeps 10 s
