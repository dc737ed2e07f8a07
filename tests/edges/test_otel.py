"""OpenTelemetry and Prometheus report the same numbers after the same workload, and the
OpenTelemetry side follows the GenAI semantic conventions (semconv 0.66b2), with the real SDK."""

from __future__ import annotations

import re

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


# --- semantic-convention conformance (semconv 0.66b2) -------------------------------------------

def _hub(**kwargs):
    reader = InMemoryMetricReader()
    registry = CollectorRegistry()
    clock = ManualClock()
    t = Telemetry(registry=registry, meter_provider=MeterProvider(metric_readers=[reader]),
                  clock=clock, wall_clock=clock, **kwargs)
    return t, reader, registry, clock


def _attribute_sets(points, name):
    return [dict(p.attributes) for p in points.get(name, [])]


def test_error_type_is_the_error_class_or_other():
    t, reader, registry, clock = _hub(label_limits={"error_types": 2})
    t.record_failure(endpoint=EP, model="gpt-4o", status_code=429,
                     error_type="rate_limit_exceeded", latency_s=0.1)
    t.start_stream("s", endpoint=EP, model="gpt-4o")
    clock.advance(0.2)
    t.fail_stream("s", status_code=499, error_type="ClientDisconnect")
    # a third class is beyond the cap: Prometheus folds it into __other__, OTel says _OTHER
    t.record_failure(endpoint=EP, model="gpt-4o", status_code=500, error_type="KeyError",
                     latency_s=0.3)
    t.record_request(endpoint=EP, model="gpt-4o", latency_s=0.4, prompt_tokens=1,
                     completion_tokens=1)
    points = _points(reader)
    by_latency = {round(p.sum, 6): p.attributes.get("error.type")
                  for p in points["gen_ai.server.request.duration"]}
    assert by_latency == {0.1: "rate_limit_exceeded", 0.2: "ClientDisconnect", 0.3: "_OTHER",
                          0.4: None}
    assert metric_value(registry, "fakeai_errors_total", {"error_type": "__other__"}) == 1
    errors = {(p.attributes["error.type"], p.attributes["http.response.status_code"]): p.value
              for p in points["fakeai.error.count"]}
    assert errors == {("rate_limit_exceeded", 429): 1, ("ClientDisconnect", 499): 1,
                      ("_OTHER", 500): 1}
    for pts in points.values():
        assert all(p.attributes.get("error.type") != "error" for p in pts)


def test_a_failure_without_a_class_reports_other():
    from fakeai_metrics import ModelMetricsTracker

    reader = InMemoryMetricReader()
    models = ModelMetricsTracker(registry=CollectorRegistry(),
                                 meter_provider=MeterProvider(metric_readers=[reader]))
    models.track_request("gpt-4o", EP, 1, 1, latency_ms=10.0, error=True)
    models.track_request("gpt-4o", EP, 1, 1, latency_ms=20.0)
    got = {round(p.sum, 6): p.attributes.get("error.type")
           for p in _points(reader)["gen_ai.server.request.duration"]}
    assert got == {0.01: "_OTHER", 0.02: None}


def test_ttft_and_tpot_are_recorded_for_completed_streams_only():
    t, reader, registry, clock = _hub()
    t.start_stream("failed", endpoint=EP, model="gpt-4o")
    clock.advance(0.5)
    t.stream_token("failed")
    clock.advance(0.1)
    t.stream_token("failed")
    t.fail_stream("failed")
    t.streaming.start_stream("given", "gpt-4o")
    t.streaming.record_first_token_time("given", 700.0)
    t.streaming.fail_stream("given")
    t.start_stream("done", endpoint=EP, model="gpt-4o")
    clock.advance(0.25)
    t.stream_token("done")
    clock.advance(0.05)
    t.stream_token("done")
    t.finish_stream("done")
    points = _points(reader)
    # Prometheus keeps every first token; OpenTelemetry the completed stream's only
    assert metric_value(registry, "fakeai_time_to_first_token_seconds_count") == 3
    [ttft] = points["gen_ai.server.time_to_first_token"]
    assert (ttft.count, ttft.sum) == (1, pytest.approx(0.25))
    [tpot] = points["gen_ai.server.time_per_output_token"]
    assert (tpot.count, tpot.sum) == (1, pytest.approx(0.05))


def test_embeddings_record_no_output_token_point():
    t, reader, registry, _ = _hub()
    t.record_request(endpoint="/v1/embeddings", model="text-embedding-3-small", latency_s=0.02,
                     prompt_tokens=8, completion_tokens=0)
    t.record_request(endpoint=EP, model="gpt-4o", latency_s=0.2, prompt_tokens=5,
                     completion_tokens=7)
    got = {(p.attributes["gen_ai.operation.name"], p.attributes["gen_ai.token.type"]):
           (p.count, p.sum) for p in _points(reader)["fakeai.token.usage"]}
    assert got == {("embeddings", "input"): (1, 8), ("chat", "input"): (1, 5),
                   ("chat", "output"): (1, 7)}


def test_names_and_ucum_units_come_from_the_catalog():
    from fakeai_metrics import LatencySLO
    from fakeai_metrics.catalog import CATALOG

    reader = InMemoryMetricReader()
    t = Telemetry(registry=CollectorRegistry(), meter_provider=MeterProvider(
        metric_readers=[reader]), slos=[LatencySLO("fast", 0.99, ttft_seconds=1.0)])
    _workload(t, ManualClock())
    units = {m.name: m.unit for rm in reader.get_metrics_data().resource_metrics
             for sm in rm.scope_metrics for m in sm.metrics}
    catalog = {m.otel.name: m.otel.unit for m in CATALOG if m.otel is not None}
    assert units == catalog  # every catalog instrument reports, and nothing else does
    assert all(re.fullmatch(r"s|1|\{[A-Za-z]+\}", unit) for unit in units.values()), units
    assert {units[n] for n in ("fakeai.usage.cost", "fakeai.budget.used",
                               "fakeai.budget.limit")} == {"{USD}"}


def test_an_unknown_model_leaves_the_attribute_off():
    t, reader, registry, _ = _hub()
    t.errors.record_success(EP)
    t.record_failure(endpoint=EP, model=None, status_code=500, error_type="Boom")
    assert metric_value(registry, "fakeai_requests_total", {"model": "unknown"}) == 2
    requests = _points(reader)["fakeai.request.count"]
    assert {p.attributes["fakeai.outcome"] for p in requests} == {"success", "error"}
    assert all("gen_ai.request.model" not in p.attributes for p in requests)
    assert all(p.attributes["gen_ai.operation.name"] == "chat" for p in requests)


def test_the_server_emits_server_metrics_not_client_ones(both):
    _, points = both
    genai = {name for name in points if name.startswith("gen_ai.")}
    assert genai == {"gen_ai.server.time_to_first_token", "gen_ai.server.time_per_output_token",
                     "gen_ai.server.request.duration"}


def test_readme_otel_table_matches_the_catalog():
    from pathlib import Path

    from fakeai_metrics.catalog import otel_markdown_table

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = text.split("<!-- otel:start -->\n")[1].split("<!-- otel:end -->")[0]
    assert table == otel_markdown_table()


def test_a_latency_without_a_request_is_recorded_on_both_sides():
    from fakeai_metrics import ModelMetricsTracker

    reader, registry = InMemoryMetricReader(), CollectorRegistry()
    models = ModelMetricsTracker(registry=registry,
                                 meter_provider=MeterProvider(metric_readers=[reader]))
    models.track_latency("gpt-4o", 250.0)
    [point] = _points(reader)["gen_ai.server.request.duration"]
    assert (point.count, point.sum) == (1, metric_value(
        registry, "fakeai_request_duration_seconds_sum", {"endpoint": "unknown"}))
    # no GenAI route: no operation name, and no error.type on a latency that is no failure
    assert dict(point.attributes) == {"gen_ai.provider.name": "openai",
                                      "gen_ai.request.model": "gpt-4o"}
