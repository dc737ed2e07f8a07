"""CostTracker: spend per API key and model, billed tokens, and budgets with alert thresholds.

Keys are stored and exported only as their ``KeyIds`` id (hash or alias); ``get_cost_by_key`` takes
the raw key and hashes it. Budget periods are calendar periods in UTC (day, ISO week from Monday,
month) and roll over lazily when the injectable wall clock passes a boundary: no thread.

A soft budget only reports; a hard budget also makes ``allows(api_key)`` return False once spent,
so a gateway can refuse before serving. Either way a call to ``record_usage`` records what was
spent: the tokens were already used.

Budgets and their spend live in a ``BudgetStore`` (``budgets.py``): this process's memory by
default, or Redis (``redis_store.py``) to make them fleet-wide across workers and replicas.

FakeAI's reports over time (``get_cost_by_key(period_hours=)``, ``get_projected_monthly_cost``,
the optimisation suggestions) read one-hour buckets of each key's spend kept for the last
``HISTORY_HOURS`` (seven days): memory is bounded per key, never a list of requests. A period
therefore counts whole hours: from the start of the UTC hour that holds now - ``period_hours``.
Image and audio requests are priced from ``metadata`` as FakeAI prices them (``media_cost``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Mapping, NamedTuple

from . import catalog as c
from . import validation as v
from .budgets import (STORE_OPERATIONS, Budget, BudgetConfig, BudgetLimitType, BudgetPeriod,
                      BudgetStore, period_start)
from .instruments import Counter
from .keys import KeyIds, scrub_path
from .pricing import (  # FakeAI's module constants, importable from here as from FakeAI's
    AUDIO_PRICING,
    FINE_TUNING_PRICING,
    IMAGE_PRICING,
    MODEL_PRICING,
    AudioPricing,
    ImagePricing,
    ModelPricing,
    Price,
    PriceTable,
    as_price_table,
    media_cost,
)
from .stores import open_store
from .collector import _make
from .tracker import Tracker


__all__ = ["AUDIO_PRICING", "FINE_TUNING_PRICING", "IMAGE_PRICING", "MODEL_PRICING", "AudioPricing",
           "BudgetLimitType", "BudgetPeriod", "CostOptimizationSuggestion", "CostTracker",
           "ImagePricing", "ModelPricing"]

#: The key id of usage recorded without an API key.
ANONYMOUS = "anonymous"
#: Hours of per-key hourly spend kept for period reports and the monthly projection.
HISTORY_HOURS = 7 * 24
BATCH_ENDPOINT = "/v1/batches"
#: Suggestions are analysed on every this-many-th recorded request (FakeAI's rule).
SUGGESTION_EVERY = 100
MAX_SUGGESTIONS = 100
_MAX_TOKENS = v.MAX_TOKENS

__all__ = ["ANONYMOUS", "Budget", "BudgetLimitType", "BudgetPeriod", "CostTracker", "period_start"]


def _enum(kind: type[Enum], name: str, value: object) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise v.InvalidMetricInput(f"{name} must be one of {allowed}, got {value!r}") from None


@dataclass
class CostOptimizationSuggestion:
    """FakeAI's suggestion record; ``api_key`` is the key's id, never the key."""

    api_key: str
    suggestion_type: str
    description: str
    potential_savings: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Spend:
    """Spend and tokens of one key, overall or in one hour: per model a row
    [cost, prompt, completion, cached, requests], and cost per endpoint. Totals are summed from
    the rows when read (a key uses few models), so recording updates one row
    (``CostTracker.record_usage`` does, inline: the hot path).

    A key's lifetime spend by model is also the exported ``cost_usd_total{api_key, model}``.
    """

    by_model: dict[str, list[float]] = field(default_factory=dict)
    by_endpoint: dict[str, float] = field(default_factory=dict)

    def _total(self, column: int) -> float:
        return sum(row[column] for row in self.by_model.values())

    @property
    def cost(self) -> float:
        return self._total(0)

    @property
    def prompt(self) -> int:
        return int(self._total(1))

    @property
    def completion(self) -> int:
        return int(self._total(2))

    @property
    def cached(self) -> int:
        return int(self._total(3))

    @property
    def requests(self) -> int:
        return int(self._total(4))

    def merge(self, other: "_Spend") -> None:
        for ep, cost in other.by_endpoint.items():
            self.by_endpoint[ep] = self.by_endpoint.get(ep, 0.0) + cost
        for model, row in other.by_model.items():
            mine = self.by_model.setdefault(model, [0.0, 0, 0, 0, 0])
            for i, x in enumerate(row):
                mine[i] += x


@dataclass(slots=True)
class _KeyUsage:
    """One key's spend: hourly buckets for the last ``HISTORY_HOURS``, older hours merged into
    ``archive``, so recording updates one bucket; ``clear_history`` forgets it all."""

    archive: _Spend = field(default_factory=_Spend)
    hours: dict[int, _Spend] = field(default_factory=dict)
    cache_regular: float = 0.0  # the cached tokens at their models' input price
    cache_cost: float = 0.0  # ... and at the cached price they were billed at
    batch_requests: int = 0
    batch_completion: int = 0
    batch_cost: float = 0.0
    _hour: int = -1  # the bucket last written, and its index
    _current: _Spend = field(default_factory=_Spend)

    def hour(self, hour: int) -> _Spend:
        """The bucket of UTC hour index ``hour``, made (and old ones archived) on first use."""
        if hour == self._hour:
            return self._current
        spend = self.hours.get(hour)
        if spend is None:
            for old in [h for h in self.hours if h <= hour - HISTORY_HOURS]:
                self.archive.merge(self.hours.pop(old))
            spend = self.hours[hour] = _Spend()
        self._hour, self._current = hour, spend
        return spend

    def since(self, first_hour: int) -> _Spend:
        """The hours from ``first_hour`` on, merged."""
        total = _Spend()
        for hour, spend in self.hours.items():
            if hour >= first_hour:
                total.merge(spend)
        return total

    def lifetime(self) -> _Spend:
        total = self.since(-1)
        total.merge(self.archive)
        return total


class _ModelRoute(NamedTuple):
    """What recording a model's usage needs, resolved once per model name (at most 10,000 names
    are kept): its price (for the cache savings) and the label tuples its token and unpriced
    series are keyed by."""

    price: Price
    cached_rate: float  # USD per million cached tokens (the input price without a cached one)
    label: str  # the model's label value (``__other__`` beyond the model cap)
    prompt: tuple[str, str]
    completion: tuple[str, str]
    cached: tuple[str, str]
    unpriced: tuple[str]


class CostTracker(Tracker):
    """FakeAI's ``CostTracker``: spend per API key, model and endpoint, budgets with alert
    thresholds, and cost history, exported as ``fakeai_cost_usd_total``, tokens and budget gauges."""

    owner = "cost"
    default_clock = staticmethod(time.time)

    def __init__(self, *, prices: Mapping[str, Price] | PriceTable | None = None,
                 fallback_price: Price | None = None, key_ids: KeyIds | None = None,
                 budget_store: BudgetStore | str | None = None, **kwargs: Any) -> None:
        """``prices``: extra or overriding ``Price``s by model, or a whole ``PriceTable``
        (``PriceTable.from_file(...)``, ``PriceTable(genai=GenaiPrices())``). ``budget_store``:
        where budgets and their spend live (``stores.open_store``): a ``redis://`` URL or a
        store object makes them fleet-wide; None uses ``$FAKEAI_METRICS_REDIS_URL`` when set,
        else this process's memory."""
        if key_ids is not None and not isinstance(key_ids, KeyIds):
            raise v.InvalidMetricInput(f"key_ids must be a KeyIds, got {type(key_ids).__name__}")
        prices_table = as_price_table(prices, fallback_price)
        store = open_store(budget_store)  # before registering: a bad store changes nothing
        super().__init__(**kwargs)
        self.prices = prices_table
        self.key_ids = key_ids or KeyIds()
        self._usage: dict[str, _KeyUsage] = {}
        self._recorded = 0
        self._suggestions: dict[tuple[str, str], CostOptimizationSuggestion] = {}
        self._routes: dict[str, _ModelRoute] = {}
        #: (key id or None, model, endpoint as given) -> (key label, batch endpoint?, endpoint
        #: label), for record_usage
        self._labels: dict[tuple[str | None, object, object], tuple[str, bool, str]] = {}
        if store.fleet_wide and self.multiprocess:
            # every worker exports the fleet's figure: keep the latest, do not sum them
            spec = dataclasses.replace(c.BUDGET_SPENT, multiprocess_mode="livemostrecent")
            self._instruments[spec.name] = _make(spec, None, self.namespace)
        self._cost: Counter = self._instrument(c.COST)
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
        """Bill one request; returns its cost in USD. ``api_key=None`` bills ``anonymous``.

        ``metadata`` prices image generations (``size``, ``quality``, ``n``) and audio
        (``characters``) as FakeAI does; other endpoints ignore it.
        """
        media = None
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise v.InvalidMetricInput(
                    f"metadata must be a mapping, got {type(metadata).__name__}")
            media = media_cost(model, endpoint, metadata)
        # Cheap checks of the common case; anything else gets the full checks, which raise the
        # same error they always did (or accept, e.g. an int subclass).
        if not (type(prompt_tokens) is int and type(completion_tokens) is int
                and type(cached_tokens) is int
                and 0 <= cached_tokens <= prompt_tokens <= _MAX_TOKENS
                and 0 <= completion_tokens <= _MAX_TOKENS):
            v.usage(model, endpoint, prompt_tokens, completion_tokens, cached_tokens)
        # the key's id of now (an alias may be set at any time); the key is checked there
        kid = None if api_key is None else self.key_ids(api_key)
        try:  # a (key id, model, endpoint) seen before: checked and resolved then
            labels = self._labels.get((kid, model, endpoint))
        except TypeError:  # unhashable: not a label, the checks say so
            labels = None
        if labels is None:
            v.label("model", model)
            v.label("endpoint", endpoint)
        if api_key is not None and api_key in endpoint:
            labels = self._labels_of(kid, scrub_path(endpoint, api_key), None)
        elif labels is None:
            labels = self._labels_of(kid, endpoint, (kid, model, endpoint))
        cost, known = media if media is not None else self.prices.cost(
            model, prompt_tokens, completion_tokens, cached_tokens)
        return self._record_usage(kid or ANONYMOUS, labels[0], model, labels[1], labels[2],
                                  prompt_tokens, completion_tokens, cached_tokens, cost, known)

    def _labels_of(self, kid: str | None, path: str,
                   keep_as: tuple[str | None, str, str] | None) -> tuple[str, bool, str]:
        """The key's label (``anonymous`` without a key id), whether a checked request path is
        the batch endpoint, and its endpoint label; kept for the next call under ``keep_as``
        (key id, model and endpoint as given) unless a cap folded a label (a folded value
        counts its overflow on each call)."""
        limits = self.limits
        labels = (ANONYMOUS if kid is None else limits.api_key(kid), path == BATCH_ENDPOINT,
                  limits.endpoint(path))
        if keep_as is not None and c.OTHER not in (labels[0], labels[2]) \
                and len(self._labels) < 10_000:
            self._labels[keep_as] = labels
        return labels

    def _record_usage(self, kid: str, key: str, model: str, batch: bool, endpoint: str,
                      prompt_tokens: int, completion_tokens: int, cached_tokens: int,
                      cost: float, known: bool) -> float:
        """``record_usage`` with checked values: ``kid`` the key's id (``anonymous`` without
        a key), ``key`` its label, ``model`` the name as given, ``batch`` whether the request
        came through the batch endpoint, ``endpoint`` the resolved label, ``cost`` and
        ``known`` the request's price (``PriceTable.cost``, or ``media_cost``)."""
        route = self._routes.get(model) or self._route(model)
        label = route.label
        series = (key, label)
        now = self._clock()
        lock = self._lock
        lock.acquire()  # not `with`: see Tracker
        try:
            try:  # subscripts, not .get(): no method call (a first time is the miss)
                usage = self._usage[key]
            except KeyError:
                usage = self._usage[key] = _KeyUsage()
            hour = int(now // 3600)
            spend = usage._current if hour == usage._hour else usage.hour(hour)
            try:
                row = spend.by_model[label]
            except KeyError:
                row = spend.by_model[label] = [0.0, 0, 0, 0, 0]
            row[0] += cost
            row[1] += prompt_tokens
            row[2] += completion_tokens
            row[4] += 1
            try:
                spend.by_endpoint[endpoint] += cost
            except KeyError:
                spend.by_endpoint[endpoint] = 0.0 + cost
            if batch:
                usage.batch_requests += 1
                usage.batch_completion += completion_tokens
                usage.batch_cost += cost
            self._cost.inc(series, cost)
            tokens = self._tokens
            tokens.inc(route.prompt, prompt_tokens)
            tokens.inc(route.completion, completion_tokens)
            if cached_tokens:  # all the cached tokens' figures (most requests have none)
                row[3] += cached_tokens
                usage.cache_regular += cached_tokens * route.price.input / 1_000_000
                usage.cache_cost += cached_tokens * route.cached_rate / 1_000_000
                tokens.inc(route.cached, cached_tokens)
            if not known:
                self._unpriced.inc(route.unpriced)
            spent = self.budget_store.add(kid, cost)
            if spent is not None:
                self._spent.set((kid,), spent)
            self._recorded += 1
            if self._recorded % SUGGESTION_EVERY == 0:
                self._suggest(key, usage, now)
        finally:
            lock.release()
        if self._otel is not None:
            self._otel.usage(endpoint, route.label, prompt_tokens, completion_tokens)
        return cost

    def _route(self, model: str) -> _ModelRoute:
        price = self.prices.price(model)[0]
        label = self.limits.model(model)
        cached_rate = price.input if price.cached_input is None else price.cached_input
        route = _ModelRoute(price, cached_rate, label, (label, c.PROMPT), (label, c.COMPLETION),
                            (label, c.CACHED), (label,))
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

    def _key_of(self, api_key: str | None) -> str:
        """The id a raw key is reported under (``__other__`` beyond the ``api_keys`` cap)."""
        return ANONYMOUS if api_key is None else \
            self.limits.label_of("api_key", self.key_ids(api_key))

    def get_cost_by_key(self, api_key: str | None,
                        period_hours: int | None = None) -> dict[str, Any]:
        """Usage of one key, over all time or (``period_hours``) the last whole hours.

        FakeAI's shape: ``tokens`` and ``budget`` are lifetime whatever the period; with no
        matching usage, ``tokens_by_model`` and ``period_hours`` are absent.
        """
        if period_hours is not None:
            self._period("period_hours", period_hours)
        key = self._key_of(api_key)
        budget = self.budget_store.get(key)
        with self._lock:
            usage = self._usage.get(key)
            u = None if usage is None else usage.lifetime()
            out: dict[str, Any] = {
                "api_key": key, "total_cost": 0.0, "by_model": {}, "by_endpoint": {},
                "tokens": {} if u is None else {
                    "prompt_tokens": u.prompt, "completion_tokens": u.completion,
                    "cached_tokens": u.cached, "total_tokens": u.prompt + u.completion},
                "requests": 0, "budget": budget.view() if budget else None,
            }
            if usage is None or u is None:
                return out
            spend = usage.since(self._first_hour(period_hours)) if period_hours else u
            if not spend.requests:
                return out
            out.update(
                total_cost=spend.cost, requests=spend.requests,
                by_model={m: row[0] for m, row in spend.by_model.items()},
                by_endpoint=dict(spend.by_endpoint),
                tokens_by_model={m: {"prompt": int(row[1]), "completion": int(row[2]),
                                     "cached": int(row[3])}
                                 for m, row in spend.by_model.items()},
                period_hours=period_hours)
            return out

    def _first_hour(self, hours: float) -> int:
        """The oldest UTC hour (index) a report over the last ``hours`` includes."""
        return int((self._clock() - hours * 3600) // 3600)

    def get_projected_monthly_cost(self, api_key: str | None = None) -> float:
        """Spend of the last 7 days (in whole hours) / 7 x 30; one key, or all when None/""."""
        first = self._first_hour(HISTORY_HOURS)
        with self._lock:
            if api_key:
                u = self._usage.get(self._key_of(api_key))
                usages = [u] if u is not None else []
            else:
                usages = list(self._usage.values())
            week = sum(s.cost for u in usages for h, s in u.hours.items() if h >= first)
        return week / 7 * 30

    def get_optimization_suggestions(
            self, api_key: str | None = None) -> list[CostOptimizationSuggestion]:
        """Copies of the current suggestions (of one key when given), oldest first."""
        key = self._key_of(api_key) if api_key else None
        with self._lock:
            return [replace(s, details=dict(s.details)) for s in self._suggestions.values()
                    if key is None or s.api_key == key]

    def _suggest(self, key: str, usage: _KeyUsage, now: float) -> None:
        """FakeAI's analysis of one key's last 24 hours; call under the lock.

        One suggestion per key and type is kept (a newer one replaces it), newest 100 overall.
        """
        day = usage.since(int((now - 86400) // 3600))
        if day.requests < 10:
            return
        found = []
        gpt4 = day.by_model.get("gpt-4")
        if gpt4 is not None and gpt4[0] > 1.0:
            found.append(CostOptimizationSuggestion(
                key, "cheaper_model",
                f"Consider GPT-4o instead of GPT-4: similar quality at lower cost "
                f"(${gpt4[0]:.2f} spent on GPT-4 in 24 h)",
                gpt4[0] * 0.75,
                {"current_model": "gpt-4", "suggested_model": "gpt-4o",
                 "current_cost": gpt4[0], "requests": int(gpt4[4])}))
        if day.requests > 50:
            daily = day.prompt / 1_000_000 * 2.5 * 0.5
            if daily > 0.10:
                found.append(CostOptimizationSuggestion(
                    key, "enable_caching",
                    f"Enable prompt caching for repeated prompts: about ${daily:.2f} a day",
                    daily * 30, {"requests_per_day": day.requests, "daily_savings": daily}))
        for s in found:
            self._suggestions.pop((key, s.suggestion_type), None)
            self._suggestions[(key, s.suggestion_type)] = s
        while len(self._suggestions) > MAX_SUGGESTIONS:
            del self._suggestions[next(iter(self._suggestions))]

    def get_cache_savings(self, api_key: str | None = None) -> dict[str, float]:
        """Cached tokens (all time) and what caching saved, at each request's model prices."""
        with self._lock:
            usages = self._usages(api_key)
            cached = sum(u.lifetime().cached for u in usages)
            regular = sum(u.cache_regular for u in usages)
            billed = sum(u.cache_cost for u in usages)
        return {"cached_tokens": cached, "savings": regular - billed,
                "regular_cost": regular, "cached_cost": billed}

    def get_batch_savings(self, api_key: str | None = None) -> dict[str, float]:
        """``/v1/batches`` requests: their cost as billed, and at the Batch API's 50 % discount."""
        with self._lock:
            usages = self._usages(api_key)
            regular = sum(u.batch_cost for u in usages)
            return {"batch_requests": sum(u.batch_requests for u in usages),
                    "completion_tokens": sum(u.batch_completion for u in usages),
                    "regular_cost": regular, "batch_cost": regular / 2,
                    "savings": regular - regular / 2}

    def _usages(self, api_key: str | None) -> list[_KeyUsage]:
        """One key's usage (when truthy) or every key's; call under the lock."""
        if not api_key:
            return list(self._usage.values())
        u = self._usage.get(self._key_of(api_key))
        return [] if u is None else [u]

    def shutdown(self) -> None:
        """FakeAI's call: nothing to stop (no thread; budgets roll over lazily). Data is kept."""

    def get_cost_by_model(self, period_hours: int | None = None) -> dict[str, float]:
        """Spend by model, all time or over the last ``period_hours`` (whole hours, as
        ``get_cost_by_key``)."""
        return {m: row[0] for m, row in self._all_spend(period_hours).by_model.items()}

    def get_cost_by_endpoint(self, period_hours: int | None = None) -> dict[str, float]:
        return dict(self._all_spend(period_hours).by_endpoint)

    def get_total_cost(self, period_hours: int | None = None) -> float:
        if not period_hours:
            with self._lock:
                return sum(self._cost.values.values())
        return self._all_spend(period_hours).cost

    def _all_spend(self, period_hours: int | None) -> _Spend:
        """Every key's spend, all time or over the last ``period_hours``."""
        first = self._first_hour(self._period("period_hours", period_hours)) \
            if period_hours else None
        total = _Spend()
        with self._lock:
            for u in self._usage.values():
                total.merge(u.lifetime() if first is None else u.since(first))
        return total

    @staticmethod
    def _period(name: str, hours: object) -> int:
        """A period in hours that the hourly history covers."""
        hours = v.tokens(name, hours)
        if hours > HISTORY_HOURS:
            raise v.InvalidMetricInput(
                f"{name} must be at most {HISTORY_HOURS} (the hours kept), got {hours}")
        return hours

    def get_summary(self) -> dict[str, Any]:
        """Totals by key id, model and endpoint; keys appear only as their ids. Budgets are as
        the store last knew them (with a shared store: as of its last sync, no round trip)."""
        budgets = dict(self.budget_store.budgets())
        with self._lock:
            keys = list(self._usage)
            requests = sum(u.lifetime().requests for u in self._usage.values())
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
            u = (self._usage.get(key) or _KeyUsage()).lifetime()
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
                self._suggestions.clear()
                for inst in (self._cost, self._tokens, self._unpriced):
                    inst.clear()
                return
            key = self.key_ids(api_key)
            self._usage.pop(key, None)
            for pair in [p for p in self._suggestions if p[0] == key]:
                del self._suggestions[pair]
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
