"""Prices, model-name resolution, cached tokens, budgets and their calendar periods."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import generate_latest

from fakeai_metrics import BudgetLimitType, BudgetPeriod, CostTracker, Price
from fakeai_metrics.cost_tracker import period_start
from fakeai_metrics.keys import KeyIds, hash_key
from fakeai_metrics.pricing import PriceTable
from fakeai_metrics.testing import ManualClock, metric_value, samples

EP = "/v1/chat/completions"


@pytest.mark.parametrize("model,entry", [
    ("gpt-4o", "gpt-4o"), ("gpt-4o-2024-11-20", "gpt-4o"), ("openai/gpt-4o", "gpt-4o"),
    ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),  # FakeAI's table has this snapshot itself
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18"), ("gpt-4-0314", "gpt-4"),
    ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"), ("o1-mini", "o1-mini"), ("o1", "o1"),
    ("text-embedding-3-small", "text-embedding-3-small"), ("llama-x", None),
])
def test_model_resolution(model, entry):
    assert PriceTable().resolve(model) == entry


def test_cached_tokens_are_part_of_prompt_and_cheaper(cost_tracker):
    full = cost_tracker.record_usage("k", "gpt-4o", EP, 1_000_000, 0)
    cached = cost_tracker.record_usage("k", "gpt-4o", EP, 1_000_000, 0, cached_tokens=1_000_000)
    assert (full, cached) == (pytest.approx(5.0), pytest.approx(2.5))
    # a model without a cached price bills cached tokens at its input price
    assert cost_tracker.record_usage("k", "gpt-4", EP, 1000, 0, cached_tokens=1000) == \
        pytest.approx(0.03)


def test_unknown_model_uses_fallback_and_is_counted(cost_tracker, metrics_registry):
    cost = cost_tracker.record_usage("k", "my-llm", EP, 1_000_000, 1_000_000)
    assert cost == pytest.approx(0.5 + 1.5)
    assert metric_value(metrics_registry, "fakeai_unpriced_requests_total", {"model": "my-llm"}) == 1


def test_user_prices_override_and_extend(metrics_registry):
    t = CostTracker(prices={"my-llm": Price(1.0, 2.0), "gpt-4o": Price(2.5, 10.0)},
                    fallback_price=Price(0, 0))
    assert t.record_usage("k", "my-llm", EP, 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert t.record_usage("k", "gpt-4o", EP, 1_000_000, 0) == pytest.approx(2.5)
    assert t.record_usage("k", "other", EP, 1_000_000, 0) == 0


def test_hard_budget_refuses_once_spent(cost_tracker):
    cost_tracker.set_budget("k", 1.0, limit_type=BudgetLimitType.HARD)
    assert cost_tracker.allows("k")
    cost_tracker.record_usage("k", "gpt-4o", EP, 200_000, 0)  # $1.00 exactly
    assert cost_tracker.allows("k") is False
    assert cost_tracker.check_budget("k") == (pytest.approx(1.0), pytest.approx(0.0), True)
    assert cost_tracker.allows("no-budget")


@pytest.mark.parametrize("period,start", [
    (BudgetPeriod.DAILY, "2026-11-25T00:00:00"), (BudgetPeriod.WEEKLY, "2026-11-23T00:00:00"),
    (BudgetPeriod.MONTHLY, "2026-11-01T00:00:00"),
])
def test_period_start_is_calendar_utc(period, start):
    now = dt.datetime(2026, 11, 25, 19, 30, tzinfo=dt.timezone.utc).timestamp()
    want = dt.datetime.fromisoformat(start).replace(tzinfo=dt.timezone.utc).timestamp()
    assert period_start(period, now) == want


def test_daily_budget_rolls_over_lazily(metrics_registry):
    clock = ManualClock(dt.datetime(2026, 11, 25, 23, 0, tzinfo=dt.timezone.utc).timestamp())
    t = CostTracker(registry=metrics_registry, clock=clock)
    t.set_budget("k", 10.0, period=BudgetPeriod.DAILY)
    t.record_usage("k", "gpt-4o", EP, 1_000_000, 0)
    assert t.check_budget("k")[0] == pytest.approx(5.0)
    clock.advance(3600)  # midnight UTC passes; nothing runs until the next read
    assert t.check_budget("k")[0] == 0.0
    assert metric_value(metrics_registry, "fakeai_budget_spent_usd") == 0.0
    assert t.get_cost_by_key("k")["total_cost"] == pytest.approx(5.0)  # history is not budget


def test_keys_are_exported_hashed_or_aliased(cost_tracker, metrics_registry):
    cost_tracker.alias_key("sk-team-a-secret", "team-a")
    cost_tracker.record_usage("sk-team-a-secret", "gpt-4o", EP, 10, 10)
    cost_tracker.record_usage("sk-other-secret", "gpt-4o", EP, 10, 10)
    cost_tracker.set_budget("sk-other-secret", 5)
    ids = {dict(k)["api_key"] for k in samples(metrics_registry, "fakeai_cost_usd_total")}
    assert ids == {"team-a", hash_key("sk-other-secret")}
    assert hash_key("sk-other-secret").startswith("key_") and len(hash_key("x")) == 16
    text = generate_latest(metrics_registry).decode()
    assert "secret" not in text


def test_key_without_budget_has_no_budget_series(cost_tracker, metrics_registry):
    cost_tracker.record_usage("k", "gpt-4o", EP, 10, 10)
    with pytest.raises(AssertionError):
        metric_value(metrics_registry, "fakeai_budget_limit_usd")


def test_clear_history_keeps_budgets(cost_tracker, metrics_registry):
    cost_tracker.set_budget("a", 10)
    cost_tracker.record_usage("a", "gpt-4o", EP, 1000, 0)
    cost_tracker.record_usage("b", "gpt-4o", EP, 1000, 0)
    cost_tracker.clear_history("a")
    assert cost_tracker.get_cost_by_key("a")["requests"] == 0
    assert cost_tracker.get_cost_by_key("b")["requests"] == 1
    assert cost_tracker.get_cost_by_key("a")["budget"]["limit"] == 10
    cost_tracker.clear_history()
    assert cost_tracker.get_total_cost() == 0
    assert metric_value(metrics_registry, "fakeai_budget_limit_usd") == 10


def test_alias_must_not_be_the_key():
    with pytest.raises(ValueError):
        KeyIds().alias("sk-1", "sk-1")
