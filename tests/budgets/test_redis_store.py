"""Budgets on a real Redis: fleet-wide figures, periods by key name, faults that never raise.

Each ``CostTracker`` here has its own ``RedisBudgetStore`` (its own process id), so two trackers
in one test are two members of a fleet. The many-process claims are in test_redis_fleet.py.
"""

from __future__ import annotations

import os
import time

import pytest
from prometheus_client import CollectorRegistry

from conftest import require_module
from fakeai_metrics import BudgetLimitType, BudgetPeriod, CostTracker, Price
from fakeai_metrics.testing import ManualClock, metric_value

redis = require_module("redis", "fakeai-metrics[redis]")
from fakeai_metrics.redis_store import NANO, RedisBudgetStore  # noqa: E402

PRICE = {"m": Price(1.0, 2.0)}  # USD per 1M tokens: 1000 prompt tokens cost 0.001
COST = 0.001
NOV_30 = 1_764_460_800.0  # 2025-11-30T00:00:00Z, a Sunday


def member(url: str, clock=None, **options) -> CostTracker:
    store = RedisBudgetStore(url, **options)
    return CostTracker(registry=CollectorRegistry(), prices=PRICE, budget_store=store,
                       clock=clock)


@pytest.fixture
def fleet(redis_server):
    made: list[CostTracker] = []

    def make(clock=None, **options) -> CostTracker:
        made.append(member(redis_server.url, clock, **options))
        return made[-1]
    yield make
    for tracker in made:
        tracker.close()


def spend(t: CostTracker, key: str, n: int = 1) -> float:
    return sum(t.record_usage(key, "m", "/v1/chat/completions", 1000, 0) for _ in range(n))


def test_budgets_and_spend_are_fleet_wide(fleet):
    a, b = fleet(), fleet()
    a.set_budget("sk-team", 0.005, limit_type=BudgetLimitType.HARD, alert_threshold=0.5)
    assert b.allows("sk-team")  # b asks Redis, so it knows the budget from here on
    spend(a, "sk-team", 2)
    spend(b, "sk-team", 2)
    # each member counts its own spend at once; the other's once it was pushed (sync() here,
    # the sync thread or the other's next allows/check in production)
    assert a.check_budget("sk-team")[0] >= 0.002 and b.check_budget("sk-team")[0] >= 0.002
    assert a.budget_store.sync() and b.budget_store.sync()
    for t in (a, b):
        assert t.check_budget("sk-team") == pytest.approx((0.004, 0.001, False))
        assert t.allows("sk-team")
    spend(b, "sk-team", 1)
    assert not b.allows("sk-team")  # b's own spend counts at once: 0.005 >= 0.005
    assert not a.allows("sk-team")  # b pushed it when it asked
    views = [t.get_cost_by_key("sk-team")["budget"] for t in (a, b)]
    assert views[0] == views[1]
    assert views[0]["limit"] == 0.005 and views[0]["limit_type"] == "hard"
    assert views[0]["over_limit"] and views[0]["over_threshold"]


def test_a_budget_set_anywhere_applies_everywhere(fleet):
    a, b = fleet(), fleet()
    b.check_budget("sk-x")  # b has asked before the budget exists
    a.set_budget("sk-x", 0.002, limit_type=BudgetLimitType.HARD)
    assert b.allows("sk-x")
    spend(b, "sk-x", 1)
    spend(a, "sk-x", 1)
    assert a.budget_store.sync()  # or a's sync thread, within push_interval, or a's next ask
    assert not b.allows("sk-x") and not a.allows("sk-x")  # 0.001 + 0.001 >= 0.002
    assert b.check_budget("sk-x") == pytest.approx((0.002, 0.0, True))
    b.remove_budget("sk-x")
    assert a.allows("sk-x") and a.get_cost_by_key("sk-x")["budget"] is None


def test_spend_is_exact_in_nano_dollars(fleet, redis_server):
    a, b, c = fleet(), fleet(), fleet()
    a.set_budget("sk-n", 100.0)
    for t in (a, b, c):
        t.check_budget("sk-n")
    costs = [t.record_usage("sk-n", "m", "/v1/chat/completions", 7 + i, 3 * i)
             for i in range(50) for t in (a, b, c)]
    for t in (a, b, c):
        assert t.budget_store.sync()
    exact = sum(round(x * NANO) for x in costs)
    client = redis.Redis.from_url(redis_server.url)
    stored = [int(v) for name in client.scan_iter("fakeai:spent:*") for v in client.hvals(name)]
    assert len(stored) == 3 and sum(stored) == exact
    assert a.check_budget("sk-n")[0] == exact / NANO


def test_scrape_of_any_member_shows_the_fleet_spend(fleet):
    a, b = fleet(), fleet()
    a.set_budget("sk-s", 1.0)
    b.budget_store.sync()  # b learns the budget without recording anything for it
    spend(a, "sk-s", 3)
    assert a.budget_store.sync() and b.budget_store.sync()
    for t in (a, b):
        assert metric_value(t.registry, "fakeai_budget_spent_usd", {"api_key": t.key_ids("sk-s")}) \
            == pytest.approx(0.003)
        assert metric_value(t.registry, "fakeai_budget_limit_usd") == 1.0


def test_periods_roll_over_by_key_name_with_an_expiry(fleet, redis_server):
    clock = ManualClock(NOV_30 + 3600)
    a = fleet(clock)
    a.set_budget("sk-d", 1.0, period=BudgetPeriod.DAILY)
    spend(a, "sk-d", 2)
    assert a.budget_store.sync()
    client = redis.Redis.from_url(redis_server.url)
    (name,) = list(client.scan_iter("fakeai:spent:*"))
    assert name.decode().endswith(f":{NOV_30:.0f}")
    ttl = client.ttl(name)  # to the end of the day plus a day's grace
    assert 23 * 3600 + 86_400 - 5 <= ttl <= 23 * 3600 + 86_400
    clock.advance(86_400)
    assert a.check_budget("sk-d")[0] == 0.0
    spend(a, "sk-d", 1)
    assert a.check_budget("sk-d")[0] == pytest.approx(COST)
    assert a.get_cost_by_key("sk-d")["budget"]["period_start"] == NOV_30 + 86_400


def test_changing_the_period_starts_at_zero_and_changing_the_limit_keeps_spend(fleet):
    a, b = fleet(), fleet()
    a.set_budget("sk-p", 1.0, period=BudgetPeriod.MONTHLY)
    b.check_budget("sk-p")
    spend(b, "sk-p", 2)
    assert b.budget_store.sync()
    a.set_budget("sk-p", 2.0, period=BudgetPeriod.MONTHLY)
    assert a.check_budget("sk-p")[0] == pytest.approx(2 * COST)
    a.set_budget("sk-p", 2.0, period=BudgetPeriod.WEEKLY)
    assert b.check_budget("sk-p")[0] == 0.0 and a.check_budget("sk-p")[0] == 0.0


def errors(t: CostTracker) -> float:
    return sum(metric_value(t.registry, "fakeai_budget_store_errors_total", {"operation": op})
               for op in ("set", "remove", "read", "sync"))


@pytest.mark.slow
def test_an_outage_never_raises_and_loses_no_spend_even_after_an_empty_restart(fleet,
                                                                              redis_server):
    a, b = fleet(probe_interval=0.1), fleet(probe_interval=0.1)
    a.set_budget("sk-o", 1.0, limit_type=BudgetLimitType.HARD)
    b.check_budget("sk-o")
    before = spend(a, "sk-o", 3) + spend(b, "sk-o", 2)
    assert a.budget_store.sync() and b.budget_store.sync()

    redis_server.stop()
    during = 0.0
    for t in (a, b):
        for _ in range(20):
            during += spend(t, "sk-o")
            assert t.allows("sk-o")  # fail-open, from what the process knows
            t.check_budget("sk-o")
            t.get_cost_by_key("sk-o")
        t.set_budget("sk-later", 0.5)
        assert not t.budget_store.available
    assert 1 <= errors(a) <= 2 and 1 <= errors(b) <= 2  # waited once, then answered locally

    redis_server.restart_empty()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (a.budget_store.available
                                               and b.budget_store.available):
        time.sleep(0.05)
    assert a.budget_store.sync() and b.budget_store.sync()
    assert a.budget_store.sync() and b.budget_store.sync()  # restores after the new dataset
    exact = before + during
    for t in (a, b):
        assert t.check_budget("sk-o")[0] == pytest.approx(exact, abs=1e-9 * 200)
        assert t.get_cost_by_key("sk-later")["budget"]["limit"] == 0.5
    client = redis.Redis.from_url(redis_server.url)
    assert client.hget("fakeai:budgets", a.key_ids("sk-o")) is not None


@pytest.mark.slow
def test_a_slow_redis_costs_one_timeout_then_nothing(fleet, redis_server):
    a = fleet(timeout=0.2, probe_interval=0.1)
    a.set_budget("sk-slow", 1.0)
    spend(a, "sk-slow", 1)
    assert a.budget_store.sync()
    redis_server.pause()
    try:
        waits = []
        for _ in range(30):
            started = time.monotonic()
            a.allows("sk-slow")
            waits.append(time.monotonic() - started)
        assert max(waits) < 0.2 + 0.5  # the timeout, plus scheduling noise on a shared machine
        # only the first call asked Redis (none did if the sync thread failed first), plus at
        # most the sync thread's own attempt at the same moment
        assert metric_value(a.registry, "fakeai_budget_store_errors_total",
                            {"operation": "read"}) <= 1
        assert 1 <= errors(a) <= 2
        assert sorted(waits)[-2] < 0.1  # every other call answered without waiting
    finally:
        redis_server.resume()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not a.budget_store.available:
        time.sleep(0.05)
    assert a.budget_store.available and a.check_budget("sk-slow")[0] == pytest.approx(COST)


def test_fail_open_answers_from_what_the_process_knows(fleet, redis_server):
    a, b = fleet(), fleet()
    a.set_budget("sk-spent", 0.002, limit_type=BudgetLimitType.HARD)
    a.set_budget("sk-fresh", 1.0, limit_type=BudgetLimitType.HARD)
    b.check_budget("sk-spent")
    spend(b, "sk-spent", 2)
    assert b.budget_store.sync() and a.budget_store.sync()  # a now knows b's spend
    redis_server.stop()
    assert not a.allows("sk-spent")  # known to be spent: still refused
    assert a.allows("sk-fresh") and a.allows("sk-unbudgeted")  # otherwise open
    assert a.check_budget("sk-spent") == pytest.approx((0.002, 0.0, True))


def test_foreign_data_under_the_prefix_never_raises(fleet, redis_server):
    a = fleet()
    a.set_budget("sk-ok", 1.0)
    client = redis.Redis.from_url(redis_server.url)
    client.hset("fakeai:budgets", a.key_ids("sk-bad"), "not a budget")
    client.hset("fakeai:budgets", a.key_ids("sk-worse"), b"\xff|\xfe")
    assert a.allows("sk-bad") and a.allows("sk-worse")  # not budgets: no budget
    assert a.budget_store.sync() and a.check_budget("sk-ok") == (0.0, 1.0, False)
    assert errors(a) == 0


def test_fail_closed_refuses_hard_budgets_during_an_outage(fleet, redis_server):
    a = fleet(fail_closed=True)
    a.set_budget("sk-hard", 1.0, limit_type=BudgetLimitType.HARD)
    a.set_budget("sk-soft", 1.0)
    assert a.allows("sk-hard")
    redis_server.stop()
    assert not a.allows("sk-hard")
    assert a.allows("sk-soft") and a.allows("sk-unbudgeted")


def test_a_bad_store_is_refused_before_anything_registers():
    registry = CollectorRegistry()
    with pytest.raises(ValueError, match="budget_store"):
        CostTracker(registry=registry, budget_store="http://localhost:6379")
    with pytest.raises(ValueError, match="budget_store"):
        CostTracker(registry=registry, budget_store=42)  # type: ignore[arg-type]
    CostTracker(registry=registry)  # nothing was registered by the refused calls


@pytest.mark.parametrize("option", ["timeout", "probe_interval", "sync_interval",
                                    "push_interval", "slo_interval"])
@pytest.mark.parametrize("value", [0, -1.0, float("inf"), float("nan"), "1"])
def test_store_intervals_must_be_positive_seconds(option, value):
    with pytest.raises(ValueError, match=option):
        RedisBudgetStore("redis://127.0.0.1:1/0", **{option: value})


def test_the_environment_selects_redis(redis_server, monkeypatch):
    monkeypatch.setenv("FAKEAI_METRICS_REDIS_URL", redis_server.url)
    t = CostTracker(registry=CollectorRegistry())
    try:
        assert isinstance(t.budget_store, RedisBudgetStore)
    finally:
        t.close()


def test_redis_never_holds_a_raw_api_key(fleet, redis_server):
    raw = "sk-secret-0123456789abcdef"
    a = fleet()
    a.set_budget(raw, 1.0, period=BudgetPeriod.DAILY)
    spend(a, raw, 3)
    a.alias_key("sk-other-secret-42", "team-b")
    a.set_budget("sk-other-secret-42", 2.0)
    assert a.budget_store.sync()
    client = redis.Redis.from_url(redis_server.url)
    dump = []
    for name in client.scan_iter("*"):
        kind = client.type(name)
        value = client.hgetall(name) if kind == b"hash" else client.get(name)
        dump.append(repr((name, value)))
    text = "\n".join(dump)
    assert a.key_ids(raw) in text and "team-b" in text
    assert raw not in text and "sk-other-secret-42" not in text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_worker_is_a_new_member_with_its_own_sync_thread(fleet, redis_server):
    a = fleet()
    a.set_budget("sk-fork", 1.0)
    spend(a, "sk-fork", 1)
    assert a.budget_store.sync()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a gunicorn worker forked after the app was built
        ok = False
        try:
            store = a.budget_store
            alive = store._thread is not None and store._thread.is_alive()
            spend(a, "sk-fork", 2)
            deadline = time.monotonic() + 10  # its sync thread pushes without being asked
            while time.monotonic() < deadline and store._periods and \
                    any(p.pushed < p.mine for p in store._periods.values()):
                time.sleep(0.01)
            ok = alive and all(p.pushed == p.mine for p in store._periods.values())
        finally:
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    client = redis.Redis.from_url(redis_server.url)
    (name,) = list(client.scan_iter("fakeai:spent:*"))
    assert sorted(int(v) for v in client.hvals(name)) == [1_000_000, 2_000_000]  # two members
    assert a.check_budget("sk-fork")[0] == pytest.approx(3 * COST)


@pytest.mark.slow
def test_a_process_that_exits_without_close_pushes_its_spend(redis_server):
    import subprocess
    import sys
    code = (
        "import sys\n"
        "from prometheus_client import CollectorRegistry\n"
        "from fakeai_metrics import CostTracker, Price\n"
        "from fakeai_metrics.redis_store import RedisBudgetStore\n"
        "store = RedisBudgetStore(sys.argv[1], push_interval=60, sync_interval=60)\n"
        "t = CostTracker(registry=CollectorRegistry(), prices={'m': Price(1.0, 2.0)},\n"
        "                budget_store=store)\n"
        "t.set_budget('sk-exit', 1.0)\n"
        "for _ in range(3):\n"
        "    t.record_usage('sk-exit', 'm', '/v1/chat/completions', 1000, 0)\n"
        "# no close(), and the sync thread waits a minute: only the exit hook can push\n")
    done = subprocess.run([sys.executable, "-c", code, redis_server.url], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    client = redis.Redis.from_url(redis_server.url)
    assert sum(int(v) for name in client.scan_iter("fakeai:spent:*")
               for v in client.hvals(name)) == 3 * round(COST * NANO)
