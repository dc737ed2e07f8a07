"""The seed's fourteen end-to-end scenarios, on the seed's calls, with the seed's numbers.

Time passes through the plugin's manual clock instead of sleeps, so TTFT and ITL are exact; each
scenario also asserts what the registry exports after it.
"""

from __future__ import annotations

import pytest

from fakeai_metrics import BudgetLimitType, BudgetPeriod
from fakeai_metrics.testing import metric_value

ENDPOINT = "/v1/chat/completions"
MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo"]


def _request(clock, metrics_tracker, cost_tracker, model_tracker, error_tracker, *, model,
             api_key, prompt, completion, work_s):
    start = clock()
    metrics_tracker.track_request(ENDPOINT)
    clock.advance(work_s)
    latency_ms = (clock() - start) * 1000
    metrics_tracker.track_response(ENDPOINT, latency_ms / 1000)
    metrics_tracker.track_tokens(ENDPOINT, prompt + completion)
    cost = cost_tracker.record_usage(api_key=api_key, model=model, endpoint=ENDPOINT,
                                     prompt_tokens=prompt, completion_tokens=completion)
    model_tracker.track_request(model=model, endpoint=ENDPOINT, prompt_tokens=prompt,
                                completion_tokens=completion, latency_ms=latency_ms,
                                user=api_key, error=False)
    error_tracker.record_success(ENDPOINT, model)
    return cost, latency_ms


def _stream(clock, streaming_tracker, stream_id, model, *, tokens, ttft_s, itl_s, prompt=150):
    streaming_tracker.start_stream(stream_id=stream_id, model=model, prompt_tokens=prompt)
    clock.advance(ttft_s)
    streaming_tracker.record_token(stream_id, "First", chunk_size_bytes=20)
    for j in range(1, tokens):
        clock.advance(itl_s)
        streaming_tracker.record_token(stream_id, f"tok{j}", chunk_size_bytes=15)
    streaming_tracker.complete_stream(stream_id, "stop")


class TestCompleteRequestLifecycle:
    def test_single_request_complete_lifecycle(self, metrics_clock, metrics_registry,
                                               metrics_tracker, cost_tracker, model_tracker,
                                               error_tracker):
        cost, latency_ms = _request(metrics_clock, metrics_tracker, cost_tracker, model_tracker,
                                    error_tracker, model="gpt-4o", api_key="sk-test-123",
                                    prompt=100, completion=50, work_s=0.010)
        metrics = metrics_tracker.get_metrics()
        assert metrics["requests"][ENDPOINT]["rate"] > 0
        assert metrics["responses"][ENDPOINT]["rate"] > 0
        assert metrics["tokens"][ENDPOINT]["rate"] > 0
        assert metrics["responses"][ENDPOINT]["avg"] == pytest.approx(0.010)

        assert cost == pytest.approx((100 * 5 + 50 * 15) / 1e6)
        info = cost_tracker.get_cost_by_key("sk-test-123")
        assert info["total_cost"] == cost
        assert info["tokens"]["total_tokens"] == 150

        stats = model_tracker.get_model_stats("gpt-4o")
        assert stats["request_count"] == 1
        assert stats["tokens"]["total"] == 150
        assert stats["latency"]["avg_ms"] == pytest.approx(10.0)

        em = error_tracker.get_metrics()
        assert (em["total_requests"], em["total_successes"], em["total_errors"]) == (1, 1, 0)
        assert em["success_rate"] == 1.0

        reg = metrics_registry
        assert metric_value(reg, "fakeai_requests_total", {"outcome": "success"}) == 1
        assert metric_value(reg, "fakeai_tokens_total", {"model": "gpt-4o", "type": "prompt"}) == 100
        assert metric_value(reg, "fakeai_tokens_total", {"type": "completion"}) == 50
        assert metric_value(reg, "fakeai_cost_usd_total", {"model": "gpt-4o"}) == pytest.approx(cost)
        assert metric_value(reg, "fakeai_request_duration_seconds_count",
                            {"endpoint": ENDPOINT, "model": "gpt-4o"}) == 1
        assert metric_value(reg, "fakeai_request_duration_seconds_bucket",
                            {"model": "gpt-4o", "le": "0.005"}) == 0
        assert metric_value(reg, "fakeai_request_duration_seconds_bucket",
                            {"model": "gpt-4o", "le": "0.02"}) == 1
        assert metric_value(reg, "fakeai_endpoint_requests_total", {"endpoint": ENDPOINT}) == 1

    def test_multiple_requests_complete_lifecycle(self, metrics_clock, metrics_registry,
                                                  metrics_tracker, cost_tracker, model_tracker,
                                                  error_tracker):
        total_cost, total_tokens = 0.0, 0
        for i in range(10):
            prompt, completion = 50 + i * 10, 25 + i * 5
            cost, _ = _request(metrics_clock, metrics_tracker, cost_tracker, model_tracker,
                               error_tracker, model="gpt-4o-mini", api_key="sk-test-multi",
                               prompt=prompt, completion=completion, work_s=0.005)
            total_cost += cost
            total_tokens += prompt + completion
        stats = model_tracker.get_model_stats("gpt-4o-mini")
        assert stats["request_count"] == 10
        assert stats["tokens"]["total"] == total_tokens
        assert abs(cost_tracker.get_cost_by_key("sk-test-multi")["total_cost"] - total_cost) < 1e-6
        em = error_tracker.get_metrics()
        assert (em["total_requests"], em["total_successes"], em["success_rate"]) == (10, 10, 1.0)
        assert metric_value(metrics_registry, "fakeai_requests_total") == 10
        assert metric_value(metrics_registry, "fakeai_tokens_total") == total_tokens
        assert metric_value(metrics_registry, "fakeai_cost_usd_total") == pytest.approx(total_cost)


class TestCompleteStreamingLifecycle:
    def test_single_stream_complete_lifecycle(self, metrics_clock, metrics_registry,
                                              streaming_tracker, metrics_tracker):
        clock = metrics_clock
        streaming_tracker.start_stream(stream_id="stream-1", model="gpt-4o", prompt_tokens=150,
                                       temperature=0.7, max_tokens=100)
        metrics_tracker.start_stream("stream-1", ENDPOINT)
        clock.advance(0.050)
        streaming_tracker.record_token("stream-1", "Hello", chunk_size_bytes=25)
        metrics_tracker.track_stream_first_token("stream-1")
        for i in range(1, 20):
            clock.advance(0.010)
            streaming_tracker.record_token("stream-1", f"token{i}", chunk_size_bytes=20)
            metrics_tracker.track_stream_token("stream-1")
        streaming_tracker.complete_stream("stream-1", "stop")
        metrics_tracker.complete_stream("stream-1", ENDPOINT)

        m = streaming_tracker.get_metrics()
        assert (m.completed_streams, m.active_streams, m.total_tokens_generated) == (1, 0, 20)
        assert m.total_bytes_sent == 25 + 19 * 20
        assert m.avg_ttft == pytest.approx(50.0)
        assert m.p50_ttft == pytest.approx(50.0)
        assert m.avg_itl == pytest.approx(10.0)
        assert m.p50_itl == pytest.approx(10.0, rel=0.011)  # sketch bound: ~1 %
        assert m.avg_tpot == pytest.approx(10.0)
        # 20 tokens over 0.05 + 19 * 0.01 = 0.24 s
        assert m.avg_tokens_per_second == pytest.approx(20 / 0.24)

        stats = metrics_tracker.get_streaming_stats()
        assert (stats["completed_streams"], stats["active_streams"]) == (1, 0)
        assert stats["ttft"]["avg"] == pytest.approx(0.050)

        reg = metrics_registry
        labels = {"model": "gpt-4o"}
        assert metric_value(reg, "fakeai_time_to_first_token_seconds_count", labels) == 1
        assert metric_value(reg, "fakeai_time_to_first_token_seconds_sum", labels) == pytest.approx(0.05)
        assert metric_value(reg, "fakeai_time_to_first_token_seconds_bucket",
                            {**labels, "le": "0.04"}) == 0
        assert metric_value(reg, "fakeai_time_to_first_token_seconds_bucket",
                            {**labels, "le": "0.06"}) == 1
        assert metric_value(reg, "fakeai_inter_token_latency_seconds_count", labels) == 19
        assert metric_value(reg, "fakeai_inter_token_latency_seconds_bucket",
                            {**labels, "le": "0.0075"}) == 0
        assert metric_value(reg, "fakeai_inter_token_latency_seconds_bucket",
                            {**labels, "le": "0.015"}) == 19
        assert metric_value(reg, "fakeai_time_per_output_token_seconds_count", labels) == 1
        assert metric_value(reg, "fakeai_time_per_output_token_seconds_sum",
                            labels) == pytest.approx(0.010)
        assert metric_value(reg, "fakeai_output_tokens_per_second_count", labels) == 1
        assert metric_value(reg, "fakeai_streams_total", {**labels, "outcome": "completed"}) == 1
        assert metric_value(reg, "fakeai_streams_active", labels) == 0

    def test_multiple_streams_parallel(self, metrics_clock, metrics_registry, streaming_tracker):
        streams = []
        for i in range(5):
            model = "gpt-4o" if i % 2 == 0 else "gpt-4o-mini"
            streaming_tracker.start_stream(stream_id=f"stream-parallel-{i}", model=model,
                                           prompt_tokens=100 + i * 20)
            streams.append((f"stream-parallel-{i}", 15 + i * 5))
        assert streaming_tracker.get_active_stream_count() == 5
        assert metric_value(metrics_registry, "fakeai_streams_active") == 5

        for stream_id, count in streams:
            metrics_clock.advance(0.030)
            streaming_tracker.record_token(stream_id, "First", chunk_size_bytes=20)
            for j in range(1, count):
                metrics_clock.advance(0.005)
                streaming_tracker.record_token(stream_id, f"tok{j}", chunk_size_bytes=15)
        for stream_id, _ in streams:
            streaming_tracker.complete_stream(stream_id, "stop")

        m = streaming_tracker.get_metrics()
        assert (m.completed_streams, m.active_streams) == (5, 0)
        assert set(m.streams_by_model) == {"gpt-4o", "gpt-4o-mini"}
        assert m.streams_by_model == {"gpt-4o": 3, "gpt-4o-mini": 2}
        assert m.total_tokens_generated == sum(n for _, n in streams)
        assert metric_value(metrics_registry, "fakeai_streams_total", {"model": "gpt-4o"}) == 3
        assert metric_value(metrics_registry, "fakeai_inter_token_latency_seconds_count") == \
            sum(n - 1 for _, n in streams)


class TestErrorScenario:
    def test_single_error_tracked(self, metrics_registry, error_tracker, metrics_tracker,
                                  model_tracker):
        error_tracker.record_error(endpoint=ENDPOINT, status_code=500,
                                   error_type="InternalServerError",
                                   error_message="Database connection timeout after 30s",
                                   model="gpt-4o", api_key="sk-test-error",
                                   request_id="req-error-123")
        metrics_tracker.track_error(ENDPOINT)
        model_tracker.track_request(model="gpt-4o", endpoint=ENDPOINT, prompt_tokens=100,
                                    completion_tokens=0, latency_ms=30000, error=True)
        em = error_tracker.get_metrics()
        assert (em["total_errors"], em["total_requests"], em["error_rate"]) == (1, 1, 1.0)
        recent = error_tracker.get_recent_errors(limit=10)
        assert len(recent) == 1
        assert recent[0].error_type == "InternalServerError"
        assert recent[0].endpoint == ENDPOINT
        assert recent[0].fingerprint
        assert recent[0].api_key != "sk-test-error"
        slo = error_tracker.get_slo_status()
        assert slo.slo_violated is True
        assert slo.current_error_rate == 1.0

        assert metric_value(metrics_registry, "fakeai_errors_total",
                            {"error_type": "InternalServerError", "status_code": "500"}) == 1
        assert metric_value(metrics_registry, "fakeai_requests_total", {"outcome": "error"}) == 1
        assert metric_value(metrics_registry, "fakeai_endpoint_errors_total") == 1
        assert metric_value(metrics_registry, "fakeai_request_duration_seconds_bucket",
                            {"le": "20.0"}) == 0

    def test_error_pattern_detection(self, metrics_clock, error_tracker):
        for i in range(5):
            error_tracker.record_error(
                endpoint=ENDPOINT, status_code=429, error_type="RateLimitError",
                error_message=f"Rate limit exceeded for user-{i} at timestamp {metrics_clock()}",
                model="gpt-4o", api_key=f"sk-user-{i}", request_id=f"req-{i}abc")
            metrics_clock.advance(0.7)
        for _ in range(10):
            error_tracker.record_success(ENDPOINT, "gpt-4o")
        patterns = error_tracker.get_error_patterns(min_count=3)
        assert len(patterns) == 1
        p = patterns[0]
        assert (p.error_type, p.count, p.endpoint) == ("RateLimitError", 5, ENDPOINT)
        assert "Rate limit exceeded" in p.normalized_message
        assert p.normalized_message == "Rate limit exceeded for user-<NUM> at timestamp <NUM>"
        assert p.last_seen - p.first_seen == pytest.approx(4 * 0.7)

    def test_mixed_errors_and_successes(self, metrics_registry, error_tracker, model_tracker):
        for _ in range(95):
            error_tracker.record_success(ENDPOINT, "gpt-4o")
            model_tracker.track_request(model="gpt-4o", endpoint=ENDPOINT, prompt_tokens=100,
                                        completion_tokens=50, latency_ms=100, error=False)
        for i in range(5):
            error_tracker.record_error(endpoint=ENDPOINT, status_code=500,
                                       error_type="InternalServerError",
                                       error_message=f"Internal error {i}", model="gpt-4o")
            model_tracker.track_request(model="gpt-4o", endpoint=ENDPOINT, prompt_tokens=100,
                                        completion_tokens=0, latency_ms=50, error=True)
        em = error_tracker.get_metrics()
        assert (em["total_requests"], em["total_successes"], em["total_errors"]) == (100, 95, 5)
        assert em["success_rate"] == pytest.approx(0.95)
        slo = error_tracker.get_slo_status()
        assert slo.slo_violated is True
        assert slo.current_success_rate < slo.target_success_rate
        assert slo.burn_rate == pytest.approx(50.0)
        stats = model_tracker.get_model_stats("gpt-4o")
        assert stats["request_count"] == 100
        assert stats["errors"]["count"] == 5
        assert stats["errors"]["rate_percent"] == pytest.approx(5.0)
        assert metric_value(metrics_registry, "fakeai_slo_burn_rate", {"window": "5m"}) == \
            pytest.approx(50.0)


class TestMixedWorkload:
    def test_mixed_workload_simulation(self, metrics_clock, metrics_registry, metrics_tracker,
                                       cost_tracker, model_tracker, error_tracker,
                                       streaming_tracker):
        api_key, total_cost = "sk-test-mixed", 0.0
        for i in range(50):
            cost, _ = _request(metrics_clock, metrics_tracker, cost_tracker, model_tracker,
                               error_tracker, model=MODELS[i % 3], api_key=api_key,
                               prompt=100 + i * 5, completion=50 + i * 2, work_s=0.002)
            total_cost += cost
        for i in range(10):
            model = MODELS[i % 3]
            _stream(metrics_clock, streaming_tracker, f"stream-mixed-{i}", model, tokens=15,
                    ttft_s=0.030, itl_s=0.008)
            total_cost += cost_tracker.record_usage(api_key=api_key, model=model,
                                                    endpoint=ENDPOINT, prompt_tokens=150,
                                                    completion_tokens=15)
            error_tracker.record_success(ENDPOINT, model)
        for i in range(5):
            error_tracker.record_error(endpoint=ENDPOINT, status_code=500,
                                       error_type="InternalServerError",
                                       error_message=f"Service unavailable: error {i}",
                                       model=MODELS[i % 3], api_key=api_key)
            metrics_tracker.track_error(ENDPOINT)
            model_tracker.track_request(model=MODELS[i % 3], endpoint=ENDPOINT,
                                        prompt_tokens=100, completion_tokens=0, latency_ms=100,
                                        error=True)
        em = error_tracker.get_metrics()
        assert (em["total_requests"], em["total_successes"], em["total_errors"]) == (65, 60, 5)
        assert em["success_rate"] == pytest.approx(60 / 65)
        info = cost_tracker.get_cost_by_key(api_key)
        assert abs(info["total_cost"] - total_cost) < 1e-6
        assert info["requests"] == 60
        for model in MODELS:
            stats = model_tracker.get_model_stats(model)
            assert stats["request_count"] > 0 and stats["tokens"]["total"] > 0
        m = streaming_tracker.get_metrics()
        assert (m.completed_streams, m.total_tokens_generated) == (10, 150)

        reg = metrics_registry
        assert metric_value(reg, "fakeai_requests_total") == 65
        assert metric_value(reg, "fakeai_requests_total", {"outcome": "error"}) == 5
        assert metric_value(reg, "fakeai_cost_usd_total") == pytest.approx(total_cost)
        assert metric_value(reg, "fakeai_time_to_first_token_seconds_count") == 10
        assert metric_value(reg, "fakeai_inter_token_latency_seconds_count") == 140


class TestBudgetExceededScenario:
    def test_budget_exceeded_soft_limit(self, metrics_registry, cost_tracker):
        key = "sk-budget-test"
        cost_tracker.set_budget(api_key=key, limit=10.0, period=BudgetPeriod.NEVER,
                                limit_type=BudgetLimitType.SOFT, alert_threshold=0.8)
        cost1 = cost_tracker.record_usage(api_key=key, model="gpt-4o", endpoint=ENDPOINT,
                                          prompt_tokens=1_000_000, completion_tokens=500_000)
        assert cost1 == pytest.approx(12.50)
        used, remaining, over = cost_tracker.check_budget(key)
        assert used == pytest.approx(12.50) and over is True and remaining == pytest.approx(-2.5)
        budget = cost_tracker.get_cost_by_key(key)["budget"]
        assert budget["used"] >= 10.0 and budget["percentage"] == pytest.approx(125.0)
        cost2 = cost_tracker.record_usage(api_key=key, model="gpt-4o", endpoint=ENDPOINT,
                                          prompt_tokens=100_000, completion_tokens=50_000)
        assert cost2 == pytest.approx(1.25)
        assert cost_tracker.check_budget(key)[2] is True
        assert cost_tracker.allows(key) is True  # soft: reports, never refuses

        key_id = cost_tracker.get_cost_by_key(key)["api_key"]
        assert metric_value(metrics_registry, "fakeai_budget_limit_usd", {"api_key": key_id}) == 10
        assert metric_value(metrics_registry, "fakeai_budget_spent_usd",
                            {"api_key": key_id}) == pytest.approx(13.75)
        assert metric_value(metrics_registry, "fakeai_budget_alert_threshold_ratio",
                            {"api_key": key_id}) == 0.8

    def test_budget_alert_threshold(self, cost_tracker):
        key = "sk-alert-test"
        cost_tracker.set_budget(api_key=key, limit=10.0, period=BudgetPeriod.NEVER,
                                limit_type=BudgetLimitType.SOFT, alert_threshold=0.8)
        for _ in range(2):
            cost_tracker.record_usage(api_key=key, model="gpt-4o-mini", endpoint=ENDPOINT,
                                      prompt_tokens=10_000_000, completion_tokens=5_000_000)
        used, remaining, over = cost_tracker.check_budget(key)
        assert used == pytest.approx(9.0)
        assert 8.0 <= used < 10.0 and over is False and remaining > 0
        budget = cost_tracker.get_cost_by_key(key)["budget"]
        assert budget["over_threshold"] is True and budget["over_limit"] is False


class TestSLOViolationScenario:
    def _run(self, tracker, ok, failed):
        for _ in range(ok):
            tracker.record_success(ENDPOINT, "gpt-4o")
        for i in range(failed):
            tracker.record_error(endpoint=ENDPOINT, status_code=500,
                                 error_type="ServiceUnavailable",
                                 error_message=f"Service temporarily unavailable: error {i}",
                                 model="gpt-4o")
        return tracker.get_slo_status()

    def test_slo_violation_detection(self, metrics_registry, error_tracker):
        slo = self._run(error_tracker, 98, 2)
        assert (slo.total_requests, slo.successful_requests, slo.failed_requests) == (100, 98, 2)
        assert slo.current_success_rate == pytest.approx(0.98)
        assert slo.current_error_rate == pytest.approx(0.02)
        assert slo.slo_violated is True
        assert slo.error_budget_consumed == 2
        assert slo.burn_rate == pytest.approx(20.0)
        for window in ("5m", "30m", "1h", "6h"):
            assert metric_value(metrics_registry, "fakeai_slo_burn_rate",
                                {"slo": "availability", "window": window}) == pytest.approx(20.0)
        assert metric_value(metrics_registry, "fakeai_slo_objective_ratio") == 0.999

    def test_slo_within_target(self, error_tracker):
        slo = self._run(error_tracker, 9995, 5)
        assert (slo.total_requests, slo.successful_requests, slo.failed_requests) == (10000, 9995, 5)
        assert slo.current_success_rate >= 0.999
        assert slo.slo_violated is False
        assert slo.error_budget_remaining == pytest.approx(5.0)
        assert slo.burn_rate == pytest.approx(0.5)

    def test_slo_edge_case_exactly_at_target(self, error_tracker):
        slo = self._run(error_tracker, 999, 1)
        assert (slo.total_requests, slo.successful_requests, slo.failed_requests) == (1000, 999, 1)
        assert slo.current_success_rate == pytest.approx(0.999)
        assert slo.slo_violated is False
        assert slo.burn_rate == 1.0


class TestEndToEndIntegration:
    def test_production_realistic_workload(self, metrics_clock, metrics_registry, metrics_tracker,
                                           cost_tracker, model_tracker, error_tracker,
                                           streaming_tracker):
        keys = ["sk-user-1", "sk-user-2", "sk-user-3"]
        for key in keys:
            cost_tracker.set_budget(api_key=key, limit=100.0, period=BudgetPeriod.NEVER,
                                    limit_type=BudgetLimitType.SOFT, alert_threshold=0.9)
        streaming_count = error_count = 0
        for i in range(100):
            key, model = keys[i % 3], MODELS[i % 3]
            if i % 10 < 7:
                if i % 50 != 0:
                    _request(metrics_clock, metrics_tracker, cost_tracker, model_tracker,
                             error_tracker, model=model, api_key=key, prompt=100 + i * 3,
                             completion=50 + i * 2, work_s=0.001)
                else:
                    metrics_tracker.track_request(ENDPOINT)
                    error_tracker.record_error(endpoint=ENDPOINT, status_code=500,
                                               error_type="InternalServerError",
                                               error_message="Internal error", model=model,
                                               api_key=key)
                    metrics_tracker.track_error(ENDPOINT)
                    error_count += 1
            else:
                _stream(metrics_clock, streaming_tracker, f"stream-prod-{i}", model, tokens=10,
                        ttft_s=0.020, itl_s=0.005)
                cost_tracker.record_usage(api_key=key, model=model, endpoint=ENDPOINT,
                                          prompt_tokens=150, completion_tokens=10)
                error_tracker.record_success(ENDPOINT, model)
                streaming_count += 1

        em = error_tracker.get_metrics()
        assert em["total_requests"] == 100
        assert em["total_errors"] == error_count == 2
        slo = error_tracker.get_slo_status()
        assert slo.slo_violated is True and slo.burn_rate == pytest.approx(20.0)
        for key in keys:
            info = cost_tracker.get_cost_by_key(key)
            assert info["total_cost"] > 0 and info["requests"] > 0
            assert info["budget"]["over_threshold"] is False
        for model in MODELS:
            assert model_tracker.get_model_stats(model)["request_count"] > 0
        m = streaming_tracker.get_metrics()
        assert m.completed_streams == streaming_count == 30
        assert m.total_tokens_generated == streaming_count * 10
        assert m.avg_ttft == pytest.approx(20.0)
        assert m.avg_itl == pytest.approx(5.0)
        assert m.avg_tokens_per_second == pytest.approx(10 / 0.065)

        reg = metrics_registry
        assert metric_value(reg, "fakeai_requests_total") == 100
        assert metric_value(reg, "fakeai_budget_limit_usd") == 300
        assert metric_value(reg, "fakeai_cost_usd_total") == pytest.approx(cost_tracker.get_total_cost())
