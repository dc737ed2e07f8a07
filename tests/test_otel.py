"""OpenTelemetry and Prometheus report the same numbers after the same workload, and the
OpenTelemetry side follows the GenAI semantic conventions (semconv 0.66b2), with the real SDK."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fakeai_metrics import Telemetry
from fakeai_metrics.testing import ManualClock, metric_value

KEYS = ["sk-otel-secret-one", "sk-otel-secret-two"]
MODELS = ["gpt-4o", "gpt-4o-mini"]
EP = "/v1/chat/completions"


def _workload(t: Telemetry, clock: ManualClock) -> None:
    for key in KEYS:
        t.cost.set_budget(key, 5.0)
    for i in range(40):
        key, model = KEYS[i % 2], MODELS[(i // 2) % 2]
        if i % 10 == 9:
            t.record_failure(endpoint=EP, model=model, status_code=503,
                             error_type="ServiceUnavailable", message=f"down for {key}",
                             latency_s=0.05, api_key=key)
        elif i % 3 == 0:
            t.start_stream(f"s{i}", endpoint=EP, model=model, prompt_tokens=30 + i,
                           api_key=key)
            for _ in range(5 + i % 4):
                clock.advance(0.01 + i / 1000)
                t.stream_token(f"s{i}")
            t.finish_stream(f"s{i}")
        else:
            t.record_request(endpoint=EP, model=model, latency_s=0.1 + i / 100,
                             prompt_tokens=100 + i, completion_tokens=20 + i,
                             api_key=key)


def _points(reader: InMemoryMetricReader) -> dict[str, list]:
    out: dict[str, list] = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


@pytest.fixture
def both():
    reader = InMemoryMetricReader()
    registry = CollectorRegistry()
    clock = ManualClock()
    t = Telemetry(registry=registry, meter_provider=MeterProvider(metric_readers=[reader]),
                  clock=clock, wall_clock=clock)
    _workload(t, clock)
    return registry, _points(reader)


def test_counts_and_sums_agree(both):
    registry, points = both

    def total(name, **attrs):
        return sum(getattr(p, "sum", getattr(p, "value", 0)) for p in points[name]
                   if all(p.attributes.get(k) == v for k, v in attrs.items()))

    def count(name):
        return sum(p.count for p in points[name])

    assert total("fakeai.request.count") == metric_value(registry, "fakeai_requests_total") == 40
    assert total("fakeai.request.count", **{"fakeai.outcome": "error"}) == \
        metric_value(registry, "fakeai_requests_total", {"outcome": "error"}) == 4
    assert total("fakeai.error.count") == metric_value(registry, "fakeai_errors_total")
    assert total("fakeai.token.usage", **{"gen_ai.token.type": "input"}) == \
        metric_value(registry, "fakeai_tokens_total", {"type": "prompt"})
    assert total("fakeai.token.usage", **{"gen_ai.token.type": "output"}) == \
        metric_value(registry, "fakeai_tokens_total", {"type": "completion"})
    assert count("gen_ai.server.time_to_first_token") == \
        metric_value(registry, "fakeai_time_to_first_token_seconds_count") == 12
    assert total("gen_ai.server.time_to_first_token") == pytest.approx(
        metric_value(registry, "fakeai_time_to_first_token_seconds_sum"), rel=1e-12)
    assert count("gen_ai.server.time_per_output_token") == \
        metric_value(registry, "fakeai_time_per_output_token_seconds_count")
    assert total("gen_ai.server.time_per_output_token") == pytest.approx(
        metric_value(registry, "fakeai_time_per_output_token_seconds_sum"), rel=1e-12)
    assert count("gen_ai.server.request.duration") == \
        metric_value(registry, "fakeai_request_duration_seconds_count")
    assert total("gen_ai.server.request.duration") == pytest.approx(
        metric_value(registry, "fakeai_request_duration_seconds_sum"), rel=1e-12)
    assert total("fakeai.usage.cost") == pytest.approx(
        metric_value(registry, "fakeai_cost_usd_total"), rel=1e-12)
    assert total("fakeai.stream.active") == metric_value(registry, "fakeai_streams_active") == 0
    assert total("fakeai.budget.used") == pytest.approx(
        metric_value(registry, "fakeai_budget_spent_usd"))
    assert total("fakeai.budget.limit") == metric_value(registry, "fakeai_budget_limit_usd") == 10
    burn = {p.attributes["fakeai.slo.window"]: p.value for p in points["fakeai.slo.error_budget.burn_rate"]}
    assert burn["5m"] == pytest.approx(
        metric_value(registry, "fakeai_slo_burn_rate", {"window": "5m"})) == pytest.approx(100)


def test_semconv_attributes_and_no_raw_keys(both):
    registry, points = both
    ttft = points["gen_ai.server.time_to_first_token"][0].attributes
    assert ttft["gen_ai.operation.name"] == "chat"
    assert ttft["gen_ai.provider.name"] == "openai"
    assert ttft["gen_ai.request.model"] in MODELS
    failed = [p for p in points["gen_ai.server.request.duration"]
              if p.attributes.get("error.type")]
    assert failed and all(p.attributes["error.type"] == "ServiceUnavailable" for p in failed)
    assert {p.attributes["error.type"] for p in points["fakeai.error.count"]} == {"ServiceUnavailable"}
    for name, pts in points.items():
        for p in pts:
            for value in p.attributes.values():
                assert "secret" not in str(value), (name, p.attributes)
    assert "secret" not in generate_latest(registry).decode()


def test_explicit_bucket_advice_is_used(both):
    _, points = both
    assert list(points["gen_ai.server.time_to_first_token"][0].explicit_bounds)[:3] == \
        [0.001, 0.005, 0.01]


def test_no_provider_means_no_otel_work(monkeypatch):
    import fakeai_metrics.otel as otel

    def boom(*a, **k):
        raise AssertionError("OpenTelemetry touched without a meter provider")

    monkeypatch.setattr(otel, "get_meter", boom)
    t = Telemetry(registry=CollectorRegistry(), meter_provider=None)
    _workload(t, ManualClock())
    assert all(tr._otel is None for tr in (t.metrics, t.cost, t.models, t.errors, t.streaming))


def test_meter_provider_helper_shares_one_registry_without_collisions():
    from fakeai_metrics.otel import meter_provider

    registry = CollectorRegistry()
    clock = ManualClock()
    t = Telemetry(registry=registry, meter_provider=meter_provider(registry=registry),
                  clock=clock, wall_clock=clock)
    _workload(t, clock)
    text = generate_latest(registry).decode()
    families = [f.name for f in text_string_to_metric_families(text)]
    assert len(families) == len(set(families)), "an OTel name collides with a fakeai_ one"
    assert "gen_ai_server_time_to_first_token_seconds" in families
    assert "fakeai_time_to_first_token_seconds" in families
    assert "secret" not in text
