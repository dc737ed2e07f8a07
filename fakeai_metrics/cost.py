"""CostTracker: spend per API key and model, billed tokens, and budgets with alert thresholds.

Keys are stored and exported only as their ``KeyIds`` id (hash or alias); ``get_cost_by_key`` takes
the raw key and hashes it. Budget periods are calendar periods in UTC (day, ISO week from Monday,
month) and roll over lazily when the injectable wall clock passes a boundary: no thread.

A soft budget only reports; a hard budget also makes ``allows(api_key)`` return False once spent,
so a gateway can refuse before serving. Either way a call to ``record_usage`` records what was
spent: the tokens were already used.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping, NamedTuple

from . import catalog as c
from . import validation as v
from .keys import KeyIds, scrub_path
from .pricing import Price, PriceTable
from .tracker import Tracker


#: The key id of usage recorded without an API key.
ANONYMOUS = "anonymous"


class BudgetPeriod(str, Enum):
    NEVER = "never"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class BudgetLimitType(str, Enum):
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


def _enum(kind: type[Enum], name: str, value: object) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)  # type: ignore[attr-defined]
        raise v.InvalidMetricInput(f"{name} must be one of {allowed}, got {value!r}") from None


@dataclass
class Budget:
    limit: float
    period: BudgetPeriod
    limit_type: BudgetLimitType
    alert_threshold: float
    started: float
    spent: float = 0.0

    def roll(self, now: float) -> None:
        start = period_start(self.period, now)
        if start > self.started:
            self.started, self.spent = start, 0.0

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


@dataclass
class _KeyUsage:
    """In-process totals of one key; ``clear_history`` forgets them.

    Its spend by model is not kept here: the exported ``cost_usd_total{api_key, model}`` counter
    holds exactly that sum.
    """

    cost: float = 0.0
    requests: int = 0
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    by_endpoint: dict[str, float] = field(default_factory=dict)

    def add(self, endpoint: str, cost: float, prompt: int, completion: int, cached: int) -> None:
        self.cost += cost
        self.requests += 1
        self.prompt += prompt
        self.completion += completion
        self.cached += cached
        self.by_endpoint[endpoint] = self.by_endpoint.get(endpoint, 0.0) + cost


class _ModelRoute(NamedTuple):
    """What billing a model needs, resolved from ``CostTracker.prices`` once per model name (at
    most 10,000 names are kept): its price, whether it was found, and the label tuples its token
    and unpriced series are keyed by."""

    price: Price
    known: bool
    label: str  # the model's label value (``__other__`` beyond the model cap)
    prompt: tuple[str, str]
    completion: tuple[str, str]
    cached: tuple[str, str]
    unpriced: tuple[str]


class CostTracker(Tracker):
    owner = "cost"
    default_clock = staticmethod(time.time)

    def __init__(self, *, prices: Mapping[str, Price] | None = None,
                 fallback_price: Price | None = None, key_ids: KeyIds | None = None,
                 **kwargs: Any) -> None:
        if key_ids is not None and not isinstance(key_ids, KeyIds):
            raise v.InvalidMetricInput(f"key_ids must be a KeyIds, got {type(key_ids).__name__}")
        prices_table = PriceTable(prices, fallback_price)
        super().__init__(**kwargs)
        self.prices = prices_table
        self.key_ids = key_ids or KeyIds()
        self._usage: dict[str, _KeyUsage] = {}
        self._routes: dict[str, _ModelRoute] = {}
        self._budgets: dict[str, Budget] = {}
        self._cost = self._instrument(c.COST)
        self._tokens = self._instrument(c.TOKENS)
        self._unpriced = self._instrument(c.UNPRICED)
        self._limit = self._instrument(c.BUDGET_LIMIT)
        self._spent = self._instrument(c.BUDGET_SPENT)
        self._threshold = self._instrument(c.BUDGET_THRESHOLD)

    def alias_key(self, api_key: str, alias: str) -> None:
        """Report ``api_key`` as ``alias`` from now on (set it before the key's first use)."""
        self.key_ids.alias(api_key, alias)

    # --- recording ---------------------------------------------------------------------------

    def record_usage(self, api_key: str | None, model: str, endpoint: str, prompt_tokens: int,
                     completion_tokens: int, cached_tokens: int = 0,
                     metadata: Mapping[str, Any] | None = None) -> float:
        """Bill one request; returns its cost in USD. ``api_key=None`` bills ``anonymous``."""
        # Cheap checks of the common case; anything else gets the full checks, which raise the
        # same error they always did (or accept, e.g. an int subclass).
        if not (type(model) is str and model and model.isascii()
                and type(endpoint) is str and endpoint and endpoint.isascii()
                and type(prompt_tokens) is int and type(completion_tokens) is int
                and type(cached_tokens) is int
                and 0 <= cached_tokens <= prompt_tokens <= v.MAX_TOKENS
                and 0 <= completion_tokens <= v.MAX_TOKENS):
            v.usage(model, endpoint, prompt_tokens, completion_tokens, cached_tokens)
        if metadata is not None and not isinstance(metadata, Mapping):
            raise v.InvalidMetricInput(f"metadata must be a mapping, got {type(metadata).__name__}")
        if api_key is None:
            key = ANONYMOUS
        else:
            key = self.limits.api_key(self.key_ids(api_key))
            if api_key in endpoint:
                endpoint = scrub_path(endpoint, api_key)
        endpoint = self.limits.endpoint(endpoint)
        route = self._routes.get(model) or self._route(model)
        cost = route.price.cost(prompt_tokens, completion_tokens, cached_tokens)
        series = (key, route.label)
        lock = self._lock
        lock.acquire()  # not `with`: see Tracker
        try:
            usage = self._usage.get(key)
            if usage is None:
                usage = self._usage[key] = _KeyUsage()
            usage.add(endpoint, cost, prompt_tokens, completion_tokens, cached_tokens)
            self._cost.inc(series, cost)
            tokens = self._tokens
            tokens.inc(route.prompt, prompt_tokens)
            tokens.inc(route.completion, completion_tokens)
            if cached_tokens:
                tokens.inc(route.cached, cached_tokens)
            if not route.known:
                self._unpriced.inc(route.unpriced)
            budget = self._budgets.get(key)
            if budget is not None:
                budget.roll(self._clock())
                budget.spent += cost
                self._spent.set((key,), budget.spent)
        finally:
            lock.release()
        if self._otel is not None:
            self._otel.usage(endpoint, route.label, prompt_tokens, completion_tokens)
        return cost

    def _route(self, model: str) -> _ModelRoute:
        price, known = self.prices.price(model)
        label = self.limits.model(model)
        route = _ModelRoute(price, known, label, (label, "prompt"), (label, "completion"),
                            (label, "cached"), (label,))
        if len(self._routes) < 10_000:
            self._routes[model] = route
        return route

    def _otel_instruments(self, meter: Any, provider_name: str) -> Any:
        from .otel import CostInstruments

        def budgets() -> list[tuple[str, float, float]]:
            with self._lock:
                return self._budget_rows()

        return CostInstruments(meter, provider_name, lambda: self._snapshot(c.COST), budgets)

    def set_budget(self, api_key: str, limit: float, period: BudgetPeriod = BudgetPeriod.NEVER,
                   limit_type: BudgetLimitType = BudgetLimitType.SOFT,
                   alert_threshold: float = 0.8) -> None:
        """Set or change a key's budget.

        Changing the limit, type or threshold keeps what was spent in the current period;
        changing the period starts the new one at zero spent.
        """
        key = self.key_ids(v.label("api_key", api_key))
        limit = v.non_negative("limit", limit)
        if limit == 0:
            raise v.InvalidMetricInput("limit must be > 0")
        alert_threshold = v.ratio("alert_threshold", alert_threshold)
        period = _enum(BudgetPeriod, "period", period)
        limit_type = _enum(BudgetLimitType, "limit_type", limit_type)
        key = self.limits.admit("api_key", key, force=True)  # a budgeted key is always shown
        now = self._clock()
        with self._lock:
            old = self._budgets.get(key)
            budget = Budget(limit, period, limit_type, alert_threshold, period_start(period, now))
            if old is not None and old.period is period:
                old.roll(now)
                budget.spent = old.spent
            self._budgets[key] = budget
            self._set_budget_gauges(key, budget)

    def remove_budget(self, api_key: str) -> None:
        key = self.key_ids(v.label("api_key", api_key))
        with self._lock:
            self._budgets.pop(key, None)
            for gauge in (self._limit, self._spent, self._threshold):
                gauge.remove((key,))

    def _set_budget_gauges(self, key: str, budget: Budget) -> None:
        self._limit.set((key,), budget.limit)
        self._spent.set((key,), budget.spent)
        self._threshold.set((key,), budget.alert_threshold)

    # --- reading -----------------------------------------------------------------------------

    def _budget(self, key: str) -> Budget | None:
        budget = self._budgets.get(key)
        if budget is not None:
            budget.roll(self._clock())
        return budget

    def check_budget(self, api_key: str) -> tuple[float, float, bool]:
        """(used, remaining, over_limit); a key without a budget gives (0.0, inf, False)."""
        with self._lock:
            budget = self._budget(self.key_ids(api_key))
            if budget is None:
                return 0.0, math.inf, False
            return budget.spent, budget.limit - budget.spent, budget.spent >= budget.limit

    def allows(self, api_key: str) -> bool:
        """False only for a hard budget already spent: a gateway's check before serving."""
        with self._lock:
            budget = self._budget(self.key_ids(api_key))
            return (budget is None or budget.limit_type is BudgetLimitType.SOFT
                    or budget.spent < budget.limit)

    def get_cost_by_key(self, api_key: str | None) -> dict[str, Any]:
        """Usage of one key; a key beyond the ``api_keys`` cap reads the ``__other__`` row."""
        key = ANONYMOUS if api_key is None else \
            self.limits.label_of("api_key", self.key_ids(api_key))
        with self._lock:
            u = self._usage.get(key) or _KeyUsage()
            budget = self._budget(key)
            return {
                "api_key": key,
                "total_cost": u.cost,
                "requests": u.requests,
                "tokens": {"prompt_tokens": u.prompt, "completion_tokens": u.completion,
                           "cached_tokens": u.cached, "total_tokens": u.prompt + u.completion},
                "by_model": {m: cost for (k, m), cost in self._cost.values.items() if k == key},
                "by_endpoint": dict(u.by_endpoint),
                "budget": budget.view() if budget else None,
            }

    def get_cost_by_model(self) -> dict[str, float]:
        with self._lock:
            out: dict[str, float] = {}
            for (_, model), cost in self._cost.values.items():
                out[model] = out.get(model, 0.0) + cost
            return out

    def get_cost_by_endpoint(self) -> dict[str, float]:
        with self._lock:
            out: dict[str, float] = {}
            for u in self._usage.values():
                for endpoint, cost in u.by_endpoint.items():
                    out[endpoint] = out.get(endpoint, 0.0) + cost
            return out

    def get_total_cost(self) -> float:
        with self._lock:
            return sum(u.cost for u in self._usage.values())

    def get_summary(self) -> dict[str, Any]:
        """Totals by key id, model and endpoint; keys appear only as their ids."""
        with self._lock:
            keys = list(self._usage)
            requests = sum(u.requests for u in self._usage.values())
        return {
            "total_cost": self.get_total_cost(),
            "total_requests": requests,
            "unique_api_keys": len(keys),
            "by_key": {k: self._key_view(k) for k in keys},
            "by_model": self.get_cost_by_model(),
            "by_endpoint": self.get_cost_by_endpoint(),
        }

    def _key_view(self, key: str) -> dict[str, Any]:
        with self._lock:
            u = self._usage.get(key) or _KeyUsage()
            budget = self._budget(key)
            return {"total_cost": u.cost, "requests": u.requests,
                    "budget": budget.view() if budget else None}

    def clear_history(self, api_key: str | None = None) -> None:
        """Forget usage (of one key, or all) in process and in the exported spend; budgets stay.

        Exported counters that drop to zero read as a counter reset, which ``rate()`` handles.
        Keys folded into ``__other__`` by the cap are forgotten only with all the others
        (``clear_history()``), and ``fakeai_tokens_total`` only then too (it has no key label).
        """
        with self._lock:
            if api_key is None:
                self._usage.clear()
                for inst in (self._cost, self._tokens, self._unpriced):
                    inst.clear()
                return
            key = self.key_ids(api_key)
            self._usage.pop(key, None)
            for series in [k for k in self._cost.values if k[0] == key]:
                del self._cost.values[series]

    def _budget_rows(self) -> list[tuple[str, float, float]]:
        """(key id, limit, spent) of every budget in its current period; call under the lock."""
        rows = []
        for key in self._budgets:
            budget = self._budget(key)
            rows.append((key, budget.limit, budget.spent))
        return rows

    def _refresh(self) -> None:
        for key in self._budgets:
            self._set_budget_gauges(key, self._budget(key))
