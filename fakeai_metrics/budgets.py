"""Budgets and where their spend lives: one small store interface, and the in-process store.

A ``BudgetStore`` holds each budgeted key's configuration and its spend in the current calendar
period (UTC day, ISO week from Monday, month, or never rolling). ``CostTracker`` talks only to
this interface, so the same calls work on one process's memory (``InProcessBudgetStore``, the
default, no dependency) or on a store shared by a fleet of workers and replicas
(``redis_store.RedisBudgetStore``). ``open_store`` picks one from a URL, an object, or the
environment variable ``FAKEAI_METRICS_REDIS_URL``.

Store methods split by cost: ``add`` (every billed request) never does I/O; ``get``, ``allows``,
``set`` and ``remove`` may ask a shared store, bounded by its timeout, and never raise for it;
``budgets`` (every scrape) answers from what the process already knows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import threading
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Protocol, runtime_checkable

from . import validation as v

Clock = Callable[[], float]

#: The environment variable that selects the Redis store when no ``budget_store`` is given.
REDIS_URL_ENV = "FAKEAI_METRICS_REDIS_URL"


#: What a store reports failures of (the ``operation`` label of ``budget_store_errors_total``).
STORE_OPERATIONS = ("set", "remove", "read", "sync")


class BudgetPeriod(str, Enum):
    """How often a key's budget starts again (FakeAI's values; a string enum so configs can say
    ``"monthly"``)."""

    NEVER = "never"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class BudgetLimitType(str, Enum):
    """What a budget does when spent: ``soft`` only reports it, ``hard`` makes ``allows()`` refuse."""

    SOFT = "soft"
    HARD = "hard"


def period_start(period: BudgetPeriod, now: float) -> float:
    """Start (epoch seconds, UTC) of the budget period that contains ``now``."""
    if period is BudgetPeriod.NEVER:
        return 0.0
    day = dt.datetime.fromtimestamp(now, dt.timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0)
    if period is BudgetPeriod.WEEKLY:
        day -= dt.timedelta(days=day.weekday())
    elif period is BudgetPeriod.MONTHLY:
        day = day.replace(day=1)
    return day.timestamp()


def period_end(period: BudgetPeriod, now: float) -> float:
    """End (exclusive) of the period that contains ``now``; ``inf`` for ``NEVER``."""
    if period is BudgetPeriod.NEVER:
        return math.inf
    start = dt.datetime.fromtimestamp(period_start(period, now), dt.timezone.utc)
    if period is BudgetPeriod.DAILY:
        end = start + dt.timedelta(days=1)
    elif period is BudgetPeriod.WEEKLY:
        end = start + dt.timedelta(days=7)
    else:
        end = (start + dt.timedelta(days=32)).replace(day=1)
    return end.timestamp()


@dataclass(frozen=True)
class BudgetConfig:
    """What ``set_budget`` sets: validated by ``CostTracker`` before it reaches a store."""

    limit: float
    period: BudgetPeriod
    limit_type: BudgetLimitType
    alert_threshold: float


@dataclass
class Budget:
    """A budget in its current period: its configuration and what was spent in that period."""

    limit: float
    period: BudgetPeriod
    limit_type: BudgetLimitType
    alert_threshold: float
    started: float
    spent: float = 0.0

    @classmethod
    def of(cls, config: BudgetConfig, now: float, spent: float = 0.0) -> "Budget":
        return cls(config.limit, config.period, config.limit_type, config.alert_threshold,
                   period_start(config.period, now), spent)

    def roll(self, now: float) -> None:
        start = period_start(self.period, now)
        if start > self.started:
            self.started, self.spent = start, 0.0

    @property
    def admits(self) -> bool:
        """What ``allows`` answers for this budget: False only for a spent hard budget."""
        return self.limit_type is BudgetLimitType.SOFT or self.spent < self.limit

    def view(self) -> dict[str, Any]:
        remaining = self.limit - self.spent
        return {
            "limit": self.limit, "used": self.spent, "remaining": remaining,
            "percentage": self.spent / self.limit * 100 if self.limit else math.inf,
            "period": self.period.value, "limit_type": self.limit_type.value,
            "alert_threshold": self.alert_threshold,
            "over_threshold": self.spent >= self.limit * self.alert_threshold,
            "over_limit": self.spent >= self.limit,
            "period_start": self.started,
        }


@runtime_checkable
class BudgetStore(Protocol):
    """Where budgets and their spend live. Keys are key ids (``KeyIds``), never raw API keys.

    ``fleet_wide`` is True when every process sharing the store sees the same figures (so the
    exported spend gauge must not be summed over workers). ``bind`` is called once by the
    ``CostTracker`` that uses the store, with its wall clock, a callback counting the store's
    failures by operation, and one refreshing its exported gauges (which a shared store calls
    after each sync, so workers in multiprocess mode export fresh fleet figures).
    """

    fleet_wide: bool

    def bind(self, clock: Clock, on_error: Callable[[str], None],
             on_sync: Callable[[], None]) -> None: ...

    def set(self, key: str, config: BudgetConfig) -> None: ...

    def remove(self, key: str) -> None: ...

    def add(self, key: str, cost: float) -> float | None:
        """Record spend; returns the key's period spend to export, None if it has no budget.
        Never does I/O: it runs on every billed request, possibly on an event loop."""

    def get(self, key: str) -> Budget | None: ...

    def allows(self, key: str) -> bool: ...

    def budgets(self) -> list[tuple[str, Budget]]:
        """Every budget in its current period, from what the process knows (no I/O)."""

    def close(self) -> None: ...


class InProcessBudgetStore:
    """Budgets in this process's memory: exact for one process, per process in a fleet."""

    fleet_wide = False

    def __init__(self) -> None:
        self._budgets: dict[str, Budget] = {}
        self._lock = threading.Lock()
        self._clock: Clock = _no_clock

    def bind(self, clock: Clock, on_error: Callable[[str], None],
             on_sync: Callable[[], None]) -> None:
        self._clock = clock

    def set(self, key: str, config: BudgetConfig) -> None:
        now = self._clock()
        with self._lock:
            old = self._budgets.get(key)
            budget = Budget.of(config, now)
            if old is not None and old.period is config.period:
                old.roll(now)
                budget.spent = old.spent
            self._budgets[key] = budget

    def remove(self, key: str) -> None:
        with self._lock:
            self._budgets.pop(key, None)

    def add(self, key: str, cost: float) -> float | None:
        budget = self._budgets.get(key)
        if budget is None:
            return None
        with self._lock:
            budget.roll(self._clock())
            budget.spent += cost
            return budget.spent

    def get(self, key: str) -> Budget | None:
        with self._lock:
            budget = self._budgets.get(key)
            if budget is None:
                return None
            budget.roll(self._clock())
            return dataclasses.replace(budget)

    def allows(self, key: str) -> bool:
        budget = self.get(key)
        return budget is None or budget.admits

    def budgets(self) -> list[tuple[str, Budget]]:
        now = self._clock()
        with self._lock:
            for budget in self._budgets.values():
                budget.roll(now)
            return [(k, dataclasses.replace(b)) for k, b in self._budgets.items()]

    def close(self) -> None:
        pass


def _no_clock() -> float:
    raise RuntimeError("a budget store is used before CostTracker bound it")
