"""CostTracker: spend per API key and model, billed tokens, and budgets with alert thresholds.

Keys are stored and exported only as their ``KeyIds`` id (hash or alias); ``get_cost_by_key`` takes
the raw key and hashes it. Budget periods are calendar periods in UTC (day, ISO week from Monday,
month) and roll over lazily when the injectable wall clock passes a boundary: no thread.

A soft budget only reports; a hard budget also makes ``allows(api_key)`` return False once spent,
so a gateway can refuse before serving. Either way a call to ``record_usage`` records what was
spent: the tokens were already used.

Budgets and their spend live in a ``BudgetStore`` (``budgets.py``): this process's memory by
default, or Redis (``redis_store.py``) to make them fleet-wide across workers and replicas.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping, NamedTuple

from . import catalog as c
from . import validation as v
from .budgets import (STORE_OPERATIONS, Budget, BudgetConfig, BudgetLimitType, BudgetPeriod,
                      BudgetStore, open_store, period_start)
from .keys import KeyIds, scrub_path
from .pricing import Price, PriceTable
from .tracker import Tracker, _make


#: The key id of usage recorded without an API key.
ANONYMOUS = "anonymous"

__all__ = ["ANONYMOUS", "Budget", "BudgetLimitType", "BudgetPeriod", "CostTracker", "period_start"]


def _enum(kind: type[Enum], name: str, value: object) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)  # type: ignore[attr-defined]
        raise v.InvalidMetricInput(f"{name} must be one of {allowed}, got {value!r}") from None


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
                 budget_store: BudgetStore | str | None = None, **kwargs: Any) -> None:
        """``budget_store``: where budgets and their spend live (``budgets.open_store``): a
        ``redis://`` URL or a store object makes them fleet-wide; None uses
        ``$FAKEAI_METRICS_REDIS_URL`` when set, else this process's memory."""
        if key_ids is not None and not isinstance(key_ids, KeyIds):
            raise v.InvalidMetricInput(f"key_ids must be a KeyIds, got {type(key_ids).__name__}")
        prices_table = PriceTable(prices, fallback_price)
        store = open_store(budget_store)  # before registering: a bad store changes nothing
        super().__init__(**kwargs)
        self.prices = prices_table
        self.key_ids = key_ids or KeyIds()
        self._usage: dict[str, _KeyUsage] = {}
        self._routes: dict[str, _ModelRoute] = {}
        if store.fleet_wide and self.multiprocess:
            # every worker exports the fleet's figure: keep the latest, do not sum them
            spec = dataclasses.replace(c.BUDGET_SPENT, multiprocess_mode="livemostrecent")
            self._instruments[spec.name] = _make(spec, None, self.namespace)
        self._cost = self._instrument(c.COST)
        self._tokens = self._instrument(c.TOKENS)
        self._unpriced = self._instrument(c.UNPRICED)
        self._limit = self._instrument(c.BUDGET_LIMIT)
        self._spent = self._instrument(c.BUDGET_SPENT)
        self._threshold = self._instrument(c.BUDGET_THRESHOLD)
        self._store_errors = self._instrument(c.BUDGET_STORE_ERRORS)
        for operation in STORE_OPERATIONS:  # series from zero, so rate() sees the first one
            self._store_errors.inc((operation,), 0)
        self._gauged: set[str] = set()  # keys with budget gauges
        self.budget_store = store
        store.bind(self._clock, self._store_failed, self._refresh_gauges)

    def _refresh_gauges(self) -> None:
        with self._lock:
            self._refresh()

    def _store_failed(self, operation: str) -> None:
        with self._lock:
            self._store_errors.inc((operation,))

    def close(self) -> None:
        """Hand the budget store what is left to write and stop its thread (a shared store)."""
        self.budget_store.close()

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
        kid = ANONYMOUS if api_key is None else self.key_ids(api_key)
        key = kid if api_key is None else self.limits.api_key(kid)
        if api_key is not None and api_key in endpoint:
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
            spent = self.budget_store.add(kid, cost)
            if spent is not None:
                self._spent.set((kid,), spent)
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
            return [(key, b.limit, b.spent) for key, b in self.budget_store.budgets()]

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
        self.budget_store.set(key, BudgetConfig(limit, period, limit_type, alert_threshold))
        budget = self.budget_store.get(key)
        with self._lock:
            if budget is not None:
                self._set_budget_gauges(key, budget)

    def remove_budget(self, api_key: str) -> None:
        key = self.key_ids(v.label("api_key", api_key))
        self.budget_store.remove(key)
        with self._lock:
            self._remove_budget_gauges(key)

    def _remove_budget_gauges(self, key: str) -> None:
        self._gauged.discard(key)
        for gauge in (self._limit, self._spent, self._threshold):
            gauge.remove((key,))

    def _set_budget_gauges(self, key: str, budget: Budget) -> None:
        self._gauged.add(key)
        self._limit.set((key,), budget.limit)
        self._spent.set((key,), budget.spent)
        self._threshold.set((key,), budget.alert_threshold)

    # --- reading -----------------------------------------------------------------------------

    def check_budget(self, api_key: str) -> tuple[float, float, bool]:
        """(used, remaining, over_limit); a key without a budget gives (0.0, inf, False)."""
        budget = self.budget_store.get(self.key_ids(api_key))
        if budget is None:
            return 0.0, math.inf, False
        return budget.spent, budget.limit - budget.spent, budget.spent >= budget.limit

    def allows(self, api_key: str) -> bool:
        """False only for a hard budget already spent: a gateway's check before serving.
        With a shared store the spend is the fleet's (see README, "Running a fleet")."""
        return self.budget_store.allows(self.key_ids(api_key))

    def get_cost_by_key(self, api_key: str | None) -> dict[str, Any]:
        """Usage of one key; a key beyond the ``api_keys`` cap reads the ``__other__`` row."""
        key = ANONYMOUS if api_key is None else \
            self.limits.label_of("api_key", self.key_ids(api_key))
        budget = self.budget_store.get(key)
        with self._lock:
            u = self._usage.get(key) or _KeyUsage()
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
        """Totals by key id, model and endpoint; keys appear only as their ids. Budgets are as
        the store last knew them (with a shared store: as of its last sync, no round trip)."""
        budgets = dict(self.budget_store.budgets())
        with self._lock:
            keys = list(self._usage)
            requests = sum(u.requests for u in self._usage.values())
        return {
            "total_cost": self.get_total_cost(),
            "total_requests": requests,
            "unique_api_keys": len(keys),
            "by_key": {k: self._key_view(k, budgets.get(k)) for k in keys},
            "by_model": self.get_cost_by_model(),
            "by_endpoint": self.get_cost_by_endpoint(),
        }

    def _key_view(self, key: str, budget: Budget | None) -> dict[str, Any]:
        with self._lock:
            u = self._usage.get(key) or _KeyUsage()
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

    def _refresh(self) -> None:
        """Budget gauges from the store's current figures (fleet-wide with a shared store);
        a budget removed elsewhere loses its series here."""
        rows = self.budget_store.budgets()
        for key in self._gauged - {key for key, _ in rows}:
            self._remove_budget_gauges(key)
        for key, budget in rows:
            if key not in self._gauged:
                self.limits.admit("api_key", key, force=True)
            self._set_budget_gauges(key, budget)
