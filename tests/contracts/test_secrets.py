"""An API key is a secret: after every path that sees one, it is nowhere a person could read it —
/metrics, OpenTelemetry attributes, log records at DEBUG, exception messages, returned views."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest

from fakeai_metrics import InvalidMetricInput, Telemetry
from fakeai_metrics.asgi.middleware import FakeAIMetricsMiddleware
from fakeai_metrics.demo import read_body
from fakeai_metrics.testing import ManualClock

KEY = "sk-proj-TOPSECRET-9f8e7d6c5b4a"
PLAIN_KEY = "plainkey-without-prefix-42"  # not sk-: must be hashed all the same
EP = "/v1/chat/completions"


async def _openai_app(scope, receive, send):
    """Answers with usage, or a 401 whose message quotes the key, as real gateways do."""
    request = json.loads(await read_body(receive))
    if request.get("fail"):
        payload = {"error": {"type": "invalid_api_key", "message": f"Incorrect key {KEY}"}}
        status = 401
    else:
        payload = {"usage": {"prompt_tokens": 5, "completion_tokens": 7}, "choices": []}
        status = 200
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


@pytest.mark.anyio
async def test_no_path_reveals_the_key(caplog):
    caplog.set_level(logging.DEBUG)
    reader = InMemoryMetricReader()
    registry = CollectorRegistry()
    clock = ManualClock()
    t = Telemetry(registry=registry, meter_provider=MeterProvider(metric_readers=[reader]),
                  clock=clock, wall_clock=clock)
    exposed: list[str] = []

    for key in (KEY, PLAIN_KEY):
        t.cost.set_budget(key, 0.0001)
        t.record_request(endpoint=EP, model="gpt-4o", latency_s=0.1, prompt_tokens=100,
                         completion_tokens=100, api_key=key)
        t.record_failure(endpoint=EP, model="gpt-4o", status_code=401,
                         error_type="invalid_api_key", message=f"bad key {key} (Bearer {key})",
                         api_key=key, request_id="req-1")
        t.start_stream("s", endpoint=EP, model="gpt-4o", prompt_tokens=3, api_key=key)
        t.stream_token("s")
        t.finish_stream("s")
        t.start_stream("f", endpoint=EP, model="gpt-4o", api_key=key)
        t.fail_stream("f", message=f"client {key} went away")
        exposed += [repr(t.cost.check_budget(key)), repr(t.cost.allows(key)),
                    repr(t.cost.get_cost_by_key(key))]
        for bad in (dict(prompt_tokens=-1), dict(latency_s=float("nan")), dict(model="")):
            args = dict(endpoint=EP, model="gpt-4o", latency_s=0.1, api_key=key) | bad
            with pytest.raises(InvalidMetricInput) as err:
                t.record_request(**args)
            exposed += [str(err.value), repr(err.value)]
        with pytest.raises(InvalidMetricInput) as err:
            t.record_failure(endpoint=EP, model="gpt-4o", status_code=key, error_type="E",
                             api_key=key)
        exposed += [str(err.value)]

    app = FakeAIMetricsMiddleware(_openai_app, telemetry=t)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        for fail in (False, True):
            r = await client.post(EP, json={"model": "gpt-4o", "fail": fail},
                                  headers={"Authorization": f"Bearer {KEY}"})
            assert r.status_code == (401 if fail else 200)

    exposed.append(generate_latest(registry).decode())
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    exposed.append(repr(dict(point.attributes)))
    exposed += [r.getMessage() + repr(r.args) for r in caplog.records]
    exposed += [repr(t.cost.get_summary()), repr(t.errors.get_recent_errors(1000)),
                repr(t.errors.get_error_patterns(min_count=1, recent_only=False)),
                repr(t.errors.get_metrics()), repr(t.models.get_all_models_stats())]

    text = "\n".join(exposed)
    assert "key_" in text  # the ids are there...
    for key in (KEY, PLAIN_KEY):
        assert key not in text  # ...the keys are not
    assert "TOPSECRET" not in text and "without-prefix" not in text


@pytest.fixture
def anyio_backend():
    return "asyncio"
