"""Budgets shared by a fleet through Redis: exact totals, bounded overspend, no call ever raises.

Data model (``P`` is the prefix, ``fakeai`` by default):

- ``P:budgets`` (hash): key id -> ``gen|period|limit_type|limit|alert_threshold``. ``gen`` is
  taken from the counter ``P:budget_gen`` when a budget is created or its period changes, so a
  new period kind (or a removed and re-set budget) starts at zero, as in one process.
- ``P:spent:{key}:{gen}:{period start}`` (hash, one per budget period): process id -> that
  process's *absolute* spend in the period, in integer nano-dollars. A process only ever raises
  its own field to its own running total (a Lua max), so a write can be repeated or reordered
  without counting anything twice, and no write of one process can lose another's. The fleet's
  spend is the sum of the fields. The hash expires a day after its period ends: periods roll
  over by key name, with no cron.
- ``P:dataset`` (string): a random id set by the first process that finds it missing. A process
  that sees it change (Redis restarted empty, or flushed) writes again every total and budget it
  knows, so the fleet total is exact again once every live process has synced.
- ``P:slo:{name}:{slot}`` (hash, with ``shared_slo``): process id -> ``requests,errors`` of that
  ten-second slot, absolute like spend; it expires when the longest burn-rate window has passed.

Hot paths do no I/O: ``add`` (each billed request) only raises the in-memory total and wakes the
sync thread, which pushes totals and pulls every budget and its fleet spend, once per
``sync_interval``, or as soon as there is something to push but at most once per
``push_interval``. ``allows``/``get`` ask Redis (one round trip, a second only when the budget
changed) after pushing this process's total, so a process always counts its own spend and sees
everyone's pushed spend.

Faults: every command has ``timeout`` seconds (connect and read, no retries). A failure marks the
store down and counts ``fakeai_budget_store_errors_total``; until the sync thread's probe (a
PING every ``probe_interval``) succeeds no call waits on Redis again: answers come from what the
process knows (last fleet figures + its own spend), ``allows`` fails open (or closed, with
``fail_closed=True``: False for every key with a hard budget), and ``set``/``remove`` are applied
locally and written once Redis is back. An outage loses no spend of a process that outlives it:
the process's absolute totals are pushed when the probe succeeds.

Why Lua and not MULTI: the max-then-sum has to read before it writes, atomically, in one round
trip; Redis runs a script atomically. redis-py registers and caches the scripts (EVALSHA).
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import secrets
import socket
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .budgets import (Budget, BudgetConfig, BudgetLimitType, BudgetPeriod, Clock, period_end,
                      period_start)
from .validation import InvalidMetricInput

log = logging.getLogger(__name__)

#: Nano-dollars per USD: spend is kept in integers in Redis, so sums are exact.
NANO = 1_000_000_000
#: Seconds a period's spend hash outlives the period.
GRACE_SECONDS = 86_400

# KEYS[1] dataset id, KEYS[2] budgets hash, KEYS[3..] spend hashes.
# ARGV[1] process id, ARGV[2] dataset id to set if missing, ARGV[3] which budgets to return:
# '' none, '*' all (HGETALL), else one key id (HGET); then per spend hash: this process's total
# and the hash's TTL in seconds (0: none). Returns {dataset id, budgets, then per spend hash the
# sum of the other processes' fields}.
_SYNC = """
local dataset = redis.call('GET', KEYS[1])
if not dataset then redis.call('SET', KEYS[1], ARGV[2]); dataset = ARGV[2] end
local out = {dataset, false}
if ARGV[3] == '*' then out[2] = redis.call('HGETALL', KEYS[2])
elseif ARGV[3] ~= '' then out[2] = redis.call('HGET', KEYS[2], ARGV[3]) end
for i = 3, #KEYS do
  local j = 4 + (i - 3) * 2
  local mine = tonumber(ARGV[j])
  local stored = tonumber(redis.call('HGET', KEYS[i], ARGV[1]) or '0')
  if mine > stored then redis.call('HSET', KEYS[i], ARGV[1], ARGV[j]); stored = mine end
  local ttl = tonumber(ARGV[j + 1])
  if ttl > 0 and stored > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
  local sum = 0
  for _, value in ipairs(redis.call('HVALS', KEYS[i])) do sum = sum + tonumber(value) end
  out[#out + 1] = sum - stored
end
return out
"""

# KEYS[1] budgets hash, KEYS[2] generation counter; ARGV[1] key id, ARGV[2] period,
# ARGV[3] 'period|limit_type|limit|alert_threshold', ARGV[4] generation to keep if > 0 (a
# budget written again after Redis lost it). Keeps the generation when the period is unchanged.
_SET = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
local gen = tonumber(ARGV[4])
if gen > 0 then
  if tonumber(redis.call('GET', KEYS[2]) or '0') < gen then redis.call('SET', KEYS[2], gen) end
  if old then return old end
else
  gen = nil
  if old then
    local g, period = string.match(old, '^(%d+)|([^|]*)|')
    if period == ARGV[2] then gen = g end
  end
  if not gen then gen = redis.call('INCR', KEYS[2]) end
end
local text = gen .. '|' .. ARGV[3]
redis.call('HSET', KEYS[1], ARGV[1], text)
return text
"""


# KEYS: an SLO's slot hashes; ARGV[1] process id, ARGV[2] TTL seconds, ARGV[2 + i] this
# process's 'requests,errors' of slot i, or '' when unchanged. Returns, per slot, the other
# processes' requests and errors.
_SLO = """
local out = {}
for i = 1, #KEYS do
  local mine = ARGV[2 + i]
  if mine ~= '' then
    redis.call('HSET', KEYS[i], ARGV[1], mine)
    redis.call('EXPIRE', KEYS[i], ARGV[2])
  end
  local total, errors = 0, 0
  local fields = redis.call('HGETALL', KEYS[i])
  for j = 1, #fields, 2 do
    if fields[j] ~= ARGV[1] then
      local t, e = string.match(fields[j + 1], '^(%d+),(%d+)$')
      total = total + tonumber(t)
      errors = errors + tonumber(e)
    end
  end
  out[#out + 1] = total
  out[#out + 1] = errors
end
return out
"""

#: This process's counts of an SLO: (slot number, (requests, errors)) per slot it holds.
SlotCounts = Callable[[], list[tuple[int, tuple[int, int]]]]


class SharedSLO:
    """One SLO's request and error counts per time slot, shared by the fleet.

    Each process owns its absolute count of each slot (idempotent, like spend); ``others``
    holds the rest of the fleet's counts per slot number as of the last sync, which the owning
    tracker adds to its own. ``on_sync`` runs after each sync (the tracker sets its burn-rate
    gauge there, so workers in multiprocess mode export it without a scrape of their own).
    """

    def __init__(self, name: str, local: SlotCounts, slot_seconds: float, slots: int,
                 on_sync: Callable[[], None]) -> None:
        self.name, self.local, self.on_sync = name, local, on_sync
        self.slot_seconds, self.slots = slot_seconds, slots
        self.others: dict[int, tuple[int, int]] = {}
        self._pushed: dict[int, tuple[int, int]] = {}
        self.synced_at = -math.inf


@dataclass(frozen=True)
class _Config:
    """A budget as stored: its configuration and generation."""

    config: BudgetConfig
    gen: int

    def encode(self) -> str:
        c = self.config
        return (f"{c.period.value}|{c.limit_type.value}|{c.limit!r}|{c.alert_threshold!r}")

    @classmethod
    def parse(cls, text: str | bytes) -> "_Config | None":
        """The budget stored as ``text``; None for anything else found under the prefix."""
        try:
            return cls.decode(text)
        except ValueError:  # also UnicodeDecodeError
            return None

    @classmethod
    def decode(cls, text: str | bytes) -> "_Config":
        if isinstance(text, bytes):
            text = text.decode()
        gen, period, limit_type, limit, threshold = text.split("|")
        return cls(BudgetConfig(float(limit), BudgetPeriod(period), BudgetLimitType(limit_type),
                                float(threshold)), int(gen))


@dataclass
class _Period:
    """One budget period of one key as this process sees it."""

    name: str       # the spend hash
    gen: int
    start: float
    end: float
    mine: int = 0   # this process's total, nano-dollars
    pushed: int = 0  # the part of it Redis is known to hold
    others: int = 0  # the other processes' total at the last read


class RedisBudgetStore:
    """A ``BudgetStore`` on Redis (``pip install 'fakeai-metrics[redis]'``): fleet-wide figures.

    ``url_or_client`` is a ``redis://host:port/db`` URL (also ``rediss://``, ``unix://``) or a
    ``redis.Redis`` (whose own timeouts and retries then apply: give it short ones). Every process
    of the fleet must use the same Redis, database and ``prefix``, and name keys alike (the same
    ``KeyIds`` secret and aliases). A budget first set while Redis is down counts spend from
    when it is written (its period's generation comes from Redis).
    """

    fleet_wide = True
    #: seconds (set from the keywords of the same names)
    timeout: float
    probe_interval: float
    sync_interval: float
    push_interval: float
    slo_interval: float

    def __init__(self, url_or_client: str | redis.Redis, *, prefix: str = "fakeai",
                 timeout: float = 0.1, probe_interval: float = 0.5, sync_interval: float = 1.0,
                 push_interval: float = 0.05, slo_interval: float = 5.0,
                 fail_closed: bool = False) -> None:
        intervals = dict(timeout=timeout, probe_interval=probe_interval,
                         sync_interval=sync_interval, push_interval=push_interval,
                         slo_interval=slo_interval)
        for name, value in intervals.items():
            if not (isinstance(value, (int, float)) and 0 < value < math.inf):
                raise InvalidMetricInput(
                    f"{name} must be a positive number of seconds, got {value!r}")
            setattr(self, name, float(value))
        options: dict[str, Any] = dict(socket_timeout=timeout, socket_connect_timeout=timeout,
                                       retry=Retry(NoBackoff(), 0))
        self.client = redis.Redis.from_url(url_or_client, **options) \
            if isinstance(url_or_client, str) else url_or_client
        self.prefix = prefix
        self.fail_closed = fail_closed
        self._slos: list[SharedSLO] = []
        self._sync = self.client.register_script(_SYNC)
        self._set = self.client.register_script(_SET)
        self._slo = self.client.register_script(_SLO)
        self._clock: Clock = _unbound
        self._on_error: Callable[[str], None] = lambda operation: None
        self._on_sync: Callable[[], None] = lambda: None
        self._closed = threading.Event()
        self.process_id = _member_id()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._configs: dict[str, _Config] = {}
        self._periods: dict[str, _Period] = {}   # spend hash -> period
        self._current: dict[str, _Period] = {}   # key id -> its current period
        #: set (a config) or remove (None) not yet written; True = restore after a data loss
        self._pending: dict[str, tuple[_Config | None, bool]] = {}
        #: budgets written so far: a read that began before a write may not drop what it wrote
        self._written = 0
        self._dirty = False
        self._dataset: str | None = None
        self._down = False
        self._thread: threading.Thread | None = None
        # weakly, so a store nobody uses any more can go: at exit push what is left; in a
        # forked child start over as a new member
        me = weakref.ref(self)
        atexit.register(_if_alive, me, "close")
        os.register_at_fork(after_in_child=lambda: _if_alive(me, "_forked"))

    def _forked(self) -> None:
        """In a forked child (a worker forked after the app was built): a new member of the
        fleet, with its own id, no spend yet, the budgets the parent knew, and its own thread."""
        self.process_id = _member_id()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._periods, self._current, self._pending = {}, {}, {}
        for slo in self._slos:  # its SLO counts are its trackers' (a copy of the parent's ring)
            slo._pushed = {}
        self._dirty = False
        self._thread = None
        if self._clock is not _unbound:
            self._launch()

    def bind(self, clock: Clock, on_error: Callable[[str], None],
             on_sync: Callable[[], None]) -> None:
        self._clock, self._on_error, self._on_sync = clock, on_error, on_sync
        if self._thread is None:
            self._launch()

    def _launch(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fakeai-budget-sync", daemon=True)
        self._thread.start()

    @property
    def available(self) -> bool:
        """False from a failed call until the probe sees Redis again."""
        return not self._down

    # --- BudgetStore -------------------------------------------------------------------------

    def set(self, key: str, config: BudgetConfig) -> None:
        with self._lock:
            old = self._configs.get(key)
            keep = old is not None and old.config.period is config.period
            self._configs[key] = _Config(config, old.gen if keep and old else 0)
            self._pending[key] = (self._configs[key], False)
        self._call("set", self._write_pending)

    def remove(self, key: str) -> None:
        with self._lock:
            self._configs.pop(key, None)
            self._current.pop(key, None)
            self._pending[key] = (None, False)
        self._call("remove", self._write_pending)

    def add(self, key: str, cost: float) -> float | None:
        stored = self._configs.get(key)
        if stored is None:
            return None
        with self._lock:
            period = self._period(key, stored, self._clock())
            if period is None:
                return None
            period.mine += round(cost * NANO)
            if not self._dirty:
                self._dirty = True
                self._wake.set()
            return (period.mine + period.others) / NANO

    def get(self, key: str) -> Budget | None:
        if not self._down:
            self._call("read", self._refresh_key, key)
        now = self._clock()
        with self._lock:
            stored = self._configs.get(key)
            if stored is None:
                return None
            period = self._period(key, stored, now)
            spent = (period.mine + period.others) / NANO if period else 0.0
            return Budget.of(stored.config, now, spent)

    def allows(self, key: str) -> bool:
        budget = self.get(key)
        if budget is None:
            return True
        if self._down and self.fail_closed and budget.limit_type is BudgetLimitType.HARD:
            return False
        return budget.admits

    def budgets(self) -> list[tuple[str, Budget]]:
        now = self._clock()
        with self._lock:
            rows = []
            for key, stored in self._configs.items():
                period = self._period(key, stored, now)
                spent = (period.mine + period.others) / NANO if period else 0.0
                rows.append((key, Budget.of(stored.config, now, spent)))
            return rows

    def close(self) -> None:
        """Push what is left (within the timeout) and stop the sync thread. Runs at interpreter
        exit too; a second call does nothing."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5 * self.timeout + self.probe_interval)
        if not self._down:
            self._call("sync", self._sync_all)

    def sync(self) -> bool:
        """Push this process's totals and SLO counts and pull the fleet's now; True if Redis
        answered."""
        return not self._down and self._call("sync", self._sync_all) \
            and all(self._call("sync", self._sync_slo, slo) for slo in self._slos)

    def share_slo(self, name: str, local: SlotCounts, slot_seconds: float, slots: int,
                  on_sync: Callable[[], None]) -> SharedSLO:
        """Share an SLO's slot counts (``local()``: this process's ``(slot number, (requests,
        errors))``) over the last ``slots`` slots; synced every ``slo_interval`` seconds."""
        slo = SharedSLO(name, local, slot_seconds, slots, on_sync)
        self._slos.append(slo)
        return slo

    # --- state -------------------------------------------------------------------------------

    def _period(self, key: str, stored: _Config, now: float) -> _Period | None:
        """The key's current period, created or rolled as needed; call under the lock.
        None while the budget's generation is not known yet (set while Redis was down)."""
        period = self._current.get(key)
        if period is not None and period.gen == stored.gen and period.start <= now < period.end:
            return period
        if stored.gen == 0:
            return None
        budget_period = stored.config.period
        start = period_start(budget_period, now)
        name = f"{self.prefix}:spent:{{{key}}}:{stored.gen}:{start:.0f}"
        period = self._periods.get(name)
        if period is None:
            period = self._periods[name] = _Period(name, stored.gen, start,
                                                   period_end(budget_period, now))
        self._current[key] = period
        return period

    @staticmethod
    def _ttl(period: _Period, now: float) -> int:
        if period.end == math.inf:
            return 0
        return max(1, math.ceil(period.end - now + GRACE_SECONDS))

    # --- Redis -------------------------------------------------------------------------------

    def _call(self, operation: str, fn: Callable[..., Any], *args: Any) -> bool:
        """Run ``fn`` unless the store is down; a Redis failure marks it down. Never raises."""
        if self._down:
            return False
        try:
            fn(*args)
            return True
        except (redis.RedisError, OSError) as exc:
            self._failed(operation, exc)
            return False

    def _failed(self, operation: str, exc: BaseException) -> None:
        log.warning("fakeai_metrics budget store: %s failed (%s); answering from this process "
                    "until Redis is back", operation, type(exc).__name__)
        with self._lock:
            self._down = True
        self._on_error(operation)
        self._wake.set()

    def _keys(self) -> list[str]:
        return [f"{self.prefix}:dataset", f"{self.prefix}:budgets"]

    def _script(self, which: str, periods: list[_Period], sent: list[int]) -> list[Any]:
        """Run the sync script; ``which`` budgets back. Pushes ``sent`` (``periods``' totals,
        read under the lock), returns [dataset, budgets, others per period]."""
        now = self._clock()
        args: list[Any] = [self.process_id, secrets.token_hex(8), which]
        for p, mine in zip(periods, sent):
            args += [mine, self._ttl(p, now)]
        reply: list[Any] = self._sync(keys=self._keys() + [p.name for p in periods], args=args)
        return reply

    def _seen(self, dataset: bytes, periods: list[_Period], sent: list[int],
              others: list[int]) -> bool:
        """Take a sync's answer; returns False if the dataset changed (all must be written)."""
        same = self._dataset is None or self._dataset == dataset.decode()
        with self._lock:
            self._dataset = dataset.decode()
            if not same:
                for p in self._periods.values():
                    p.pushed = 0
                for key, stored in self._configs.items():
                    self._pending.setdefault(key, (stored, True))
                for slo in self._slos:
                    slo._pushed = {}
                return False
            for p, mine, other in zip(periods, sent, others):
                p.pushed = max(p.pushed, mine)
                p.others = int(other)
        return True

    def _refresh_key(self, key: str) -> None:
        self._write_pending()
        for _ in range(2):  # a second pass only when the budget's generation or period changed
            now = self._clock()
            with self._lock:
                stored = self._configs.get(key)
                period = self._period(key, stored, now) if stored else None
                periods = [period] if period else []
                sent = [p.mine for p in periods]
                written = self._written
            dataset, raw, *others = self._script(key, periods, sent)
            if not self._seen(dataset, periods, sent, others):
                self._sync_all()
                return
            fresh = _Config.parse(raw) if raw else None
            with self._lock:
                if key in self._pending or self._written != written:
                    return  # a local change not written yet, or written since, wins
                if fresh is None:
                    self._configs.pop(key, None)
                    self._current.pop(key, None)
                    return
                self._configs[key] = fresh
                if stored == fresh and period is not None:
                    return

    def _sync_all(self) -> None:
        """Write pending budgets, push every total Redis lacks, pull every budget and the
        fleet's spend of each."""
        self._write_pending()
        now = self._clock()
        with self._lock:
            for key, stored in self._configs.items():
                self._period(key, stored, now)
            current = {id(p) for p in self._current.values()}
            periods = [p for p in self._periods.values() if id(p) in current or p.mine > p.pushed]
            sent = [p.mine for p in periods]
            self._dirty = False
            written = self._written
        dataset, raw, *others = self._script("*", periods, sent)
        if not self._seen(dataset, periods, sent, others):
            self._sync_all()  # the dataset is set now, so this runs once
            return
        pairs = raw or []
        parsed = {pairs[i].decode(): _Config.parse(pairs[i + 1]) for i in range(0, len(pairs), 2)}
        fresh = {key: stored for key, stored in parsed.items() if stored is not None}
        with self._lock:
            if self._written != written:
                return  # a budget was written meanwhile: this answer may predate it
            for key in self._pending:
                fresh.pop(key, None)
                if self._configs.get(key) is not None:
                    fresh[key] = self._configs[key]
            self._configs = fresh
            for key in [k for k in self._current if k not in fresh]:
                del self._current[key]
            current = {id(p) for p in self._current.values()}
            for name in [n for n, p in self._periods.items()
                         if id(p) not in current and p.pushed >= p.mine and p.end <= now]:
                del self._periods[name]
        self._on_sync()

    def _write_pending(self) -> None:
        """Write budgets set or removed here but not yet in Redis."""
        with self._lock:
            pending = dict(self._pending)
        for key, (stored, restore) in pending.items():
            written = None
            if stored is None:
                self.client.hdel(f"{self.prefix}:budgets", key)
            else:
                text = self._set(keys=[f"{self.prefix}:budgets", f"{self.prefix}:budget_gen"],
                                 args=[key, stored.config.period.value, stored.encode(),
                                       stored.gen if restore else 0])
                written = _Config.decode(text)
            with self._lock:
                self._written += 1
                if self._pending.get(key) == (stored, restore):
                    del self._pending[key]
                    if written is not None:
                        self._configs[key] = written

    # --- the sync thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.probe_interval if self._down else self.sync_interval)
            self._wake.clear()
            if self._closed.is_set():
                return
            if self._down and not self._probe():
                continue
            self._call("sync", self._sync_all)
            for slo in self._slos:
                if self._clock() - slo.synced_at >= self.slo_interval:
                    self._call("sync", self._sync_slo, slo)
            self._closed.wait(self.push_interval)  # spend pushed at most this often

    def _sync_slo(self, slo: SharedSLO) -> None:
        """Push the slots of ``slo`` that changed, read the fleet's counts of all its slots."""
        now = self._clock()
        current = int(now // slo.slot_seconds)
        numbers = range(current - slo.slots + 1, current + 1)
        mine = dict(slo.local())
        args: list[Any] = [self.process_id, math.ceil(slo.slots * slo.slot_seconds)]
        args += ["" if mine.get(n, (0, 0)) == slo._pushed.get(n, (0, 0))
                 else "%d,%d" % mine[n] for n in numbers]
        keys = [f"{self.prefix}:slo:{{{slo.name}}}:{n}" for n in numbers]
        counts = self._slo(keys=keys, args=args)
        slo.others = {n: (int(counts[2 * i]), int(counts[2 * i + 1]))
                      for i, n in enumerate(numbers) if counts[2 * i]}
        slo._pushed = {n: mine[n] for n in numbers if n in mine}
        slo.synced_at = now
        slo.on_sync()

    def _probe(self) -> bool:
        """PING; when Redis answers, mark every total unpushed (it may have lost them)."""
        try:
            self.client.connection_pool.disconnect()  # pooled connections may be dead ones
            self.client.ping()
        except (redis.RedisError, OSError):
            return False
        with self._lock:
            for p in self._periods.values():
                p.pushed = 0
            for slo in self._slos:
                slo._pushed = {}
            self._down = False
        log.warning("fakeai_metrics budget store: Redis is back; pushing this process's totals")
        return True


def _if_alive(ref: weakref.ReferenceType[RedisBudgetStore], method: str) -> None:
    store = ref()
    if store is not None:
        getattr(store, method)()


def _member_id() -> str:
    """This process's field name in the spend hashes: unique per process lifetime."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _unbound() -> float:
    raise RuntimeError("RedisBudgetStore is used before CostTracker bound it")
