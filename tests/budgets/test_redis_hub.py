"""The Redis store through the hub, the middleware, the demo and the CLI."""

from __future__ import annotations

import asyncio
import io
import random
import threading

import httpx
import pytest
from prometheus_client import CollectorRegistry

from conftest import require_module
from fakeai_metrics import Telemetry, demo
from fakeai_metrics.cli import _parser
from livestack import free_port

redis = require_module("redis", "fakeai-metrics[redis]")


@pytest.mark.slow
def test_the_middleware_never_asks_redis_on_the_event_loop(redis_server):
    registry = CollectorRegistry()
    t = Telemetry(registry, budget_store=redis_server.url)
    store = t.cost.budget_store
    demo.setup_keys(t)  # budgets are set before serving, off the loop
    calls: list[tuple[int, str]] = []  # (thread, operation) of every Redis call from now on
    ask_redis = store._call

    def spy(operation, fn, *args):
        calls.append((threading.get_ident(), operation))
        return ask_redis(operation, fn, *args)
    store._call = spy

    async def drive() -> int:
        app = demo.build_app(t, registry, random.Random(7), 0.0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            async def one(i: int) -> None:
                key = list(demo.KEYS)[i % 3]
                body = {"model": "gpt-4o-mini", "stream": i % 2 == 0,
                        "messages": [{"role": "user", "content": "hello there"}],
                        "stream_options": {"include_usage": True}}
                r = await client.post(demo.CHAT, json=body,
                                      headers={"Authorization": f"Bearer {key}"})
                assert r.status_code == 200
            await asyncio.gather(*(one(i) for i in range(12)))
        return threading.get_ident()

    try:
        loop_thread = asyncio.run(drive())
        during = list(calls)
        assert store.sync()
        assert during and all(thread != loop_thread for thread, _ in during)
        bob = "sk-demo-bob-0002"
        assert t.cost.check_budget(bob)[0] == pytest.approx(t.cost.get_cost_by_key(bob)
                                                            ["total_cost"])
    finally:
        t.close()


def test_telemetry_checks_the_store_before_registering_anything():
    registry = CollectorRegistry()
    with pytest.raises(ValueError, match="budget_store"):
        Telemetry(registry, budget_store="mysql://nope")
    Telemetry(registry)  # the refused call left the registry empty


def test_cli_demo_takes_a_redis_url():
    args = _parser().parse_args(["demo", "--redis-url", "redis://127.0.0.1:6380/2"])
    assert args.redis_url == "redis://127.0.0.1:6380/2"
    assert _parser().parse_args(["demo"]).redis_url is None


@pytest.mark.slow
def test_two_demos_share_their_budgets_through_redis(redis_server):
    async def both() -> list[Telemetry]:
        return list(await asyncio.gather(*(
            demo.run(port=free_port(), duration=1.5, seed=i, rps=30, registry=CollectorRegistry(),
                     out=io.StringIO(), budget_store=redis_server.url) for i in range(2))))

    first, second = asyncio.run(both())
    client = redis.Redis.from_url(redis_server.url)
    assert set(client.hkeys("fakeai:budgets")) == {b"bob", b"carol"}
    own = sum(t.cost.get_cost_by_key("sk-demo-carol-0003")["total_cost"] for t in (first, second))
    reader = Telemetry(CollectorRegistry(), budget_store=redis_server.url)
    reader.alias_key("sk-demo-carol-0003", "carol")  # every member must name keys alike
    try:
        assert reader.cost.check_budget("sk-demo-carol-0003")[0] == pytest.approx(own)
    finally:
        reader.close()


NOV_30 = 1_764_460_800.0


def shared_hub(url: str, clock, registry=None) -> Telemetry:
    return Telemetry(registry or CollectorRegistry(), wall_clock=clock, budget_store=url,
                     shared_slo=True)


def test_the_slo_and_its_burn_rate_are_fleet_wide(redis_server):
    from fakeai_metrics.testing import ManualClock, metric_value
    clock = ManualClock(NOV_30 + 5)
    a, b = shared_hub(redis_server.url, clock), shared_hub(redis_server.url, clock)
    try:
        for _ in range(990):
            a.record_request(endpoint="/v1/chat/completions", model="m", latency_s=0.1)
        for _ in range(10):
            b.record_failure(endpoint="/v1/chat/completions", model="m", status_code=500,
                             error_type="server_error")
        assert a.errors.get_slo_status().total_requests == 990  # before a sync: its own only
        assert a.cost.budget_store.sync() and b.cost.budget_store.sync()
        assert a.cost.budget_store.sync()  # a reads b's pushed counts
        for hub in (a, b):
            status = hub.errors.get_slo_status()
            assert (status.total_requests, status.failed_requests) == (1000, 10)
            assert hub.errors.get_burn_rates()["5m"] == pytest.approx(10.0)  # 1 % / 0.1 %
            assert metric_value(hub.registry, "fakeai_slo_burn_rate",
                                {"slo": "availability", "window": "5m"}) == pytest.approx(10.0)
        clock.advance(301)  # the 5-minute window has moved past every slot
        assert a.cost.budget_store.sync()
        assert a.errors.get_burn_rates()["5m"] == 0.0
        assert a.errors.get_burn_rates()["1h"] == pytest.approx(10.0)
    finally:
        a.close()
        b.close()


def test_shared_slo_needs_a_shared_store():
    with pytest.raises(ValueError, match="shared_slo"):
        Telemetry(CollectorRegistry(), shared_slo=True)


def test_the_fleet_burn_rate_is_exported_in_multiprocess_mode(redis_server, tmp_path,
                                                              monkeypatch):
    from prometheus_client import values

    from fakeai_metrics.multiprocess import scrape_registry
    from fakeai_metrics.testing import ManualClock, metric_value
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: 101))
    clock = ManualClock(NOV_30 + 5)
    other = shared_hub(redis_server.url, clock)  # a worker of another replica
    worker = shared_hub(redis_server.url, clock)
    try:
        assert worker.errors.multiprocess
        worker.record_request(endpoint="/v1/x", model="m", latency_s=0.1)
        other.record_failure(endpoint="/v1/x", model="m", status_code=500, error_type="e")
        assert other.cost.budget_store.sync() and worker.cost.budget_store.sync()
        burn = metric_value(scrape_registry(), "fakeai_slo_burn_rate",
                            {"slo": "availability", "window": "5m"})
        assert burn == pytest.approx(0.5 / 0.001)  # 1 error in 2 requests, fleet-wide
    finally:
        other.close()
        worker.close()


def test_the_plugin_fixture_keeps_budgets_in_process(telemetry, redis_server, monkeypatch):
    from fakeai_metrics.budgets import InProcessBudgetStore
    monkeypatch.setenv("FAKEAI_METRICS_REDIS_URL", redis_server.url)
    assert isinstance(telemetry.cost.budget_store, InProcessBudgetStore)


def test_fleet_spend_is_not_summed_over_workers_in_multiprocess_mode(redis_server, tmp_path,
                                                                      monkeypatch):
    from prometheus_client import values

    from fakeai_metrics.multiprocess import scrape_registry
    from fakeai_metrics.testing import metric_value
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    pid = [201]
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: pid[0]))
    workers = []
    try:
        for n in (201, 202):  # two workers of one replica, each writing its own files
            pid[0] = n
            workers.append(Telemetry(CollectorRegistry(), budget_store=redis_server.url))
        workers[0].cost.set_budget("sk-mp", 1.0)
        for w in workers:
            w.cost.check_budget("sk-mp")
        for n, w in zip((201, 202), workers):
            pid[0] = n
            w.record_request(endpoint="/v1/x", model="gpt-4o", latency_s=0.1,
                             prompt_tokens=1000, completion_tokens=0, api_key="sk-mp")
        fleet = sum(w.cost.get_cost_by_key("sk-mp")["total_cost"] for w in workers)
        for n, w in zip((201, 202), workers):
            pid[0] = n
            assert w.cost.budget_store.sync()  # a sync refreshes the worker's gauges
        spent = metric_value(scrape_registry(), "fakeai_budget_spent_usd")
        assert spent == pytest.approx(fleet)  # the fleet's, once: not summed over the workers
    finally:
        for w in workers:
            w.close()
