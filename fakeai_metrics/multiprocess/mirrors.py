"""Instruments that also write to prometheus_client's multiprocess files.

A mirrored instrument keeps the in-process values the trackers read (``fakeai_metrics.instruments``)
and writes every change through to a prometheus_client child, whose value lives in this process's
memory-mapped file; ``scrape_registry()`` merges the files of every worker.

Counters and histograms write their children's file records directly (``_FileRecords``) instead of
calling the child. Why: with the bench mix in this mode, bare prometheus_client spends most of its
time on ~40 file writes per request, and a mirror that also called the child paid those on top of
the in-process views (1.42-2.09x bare prometheus_client, bench/bench_core.py --mp-only). A
child's ``Histogram.observe`` takes ~1.7 us: two ``MmapedValue.inc`` calls, each taking
prometheus_client's lock and calling ``os.getpid()``, after a Python loop over the bounds. Written
directly, an observation is one ``bisect`` and two 16-byte stores under that lock taken once
(~0.37 us), a counter increment one store (~0.2 us). The records and their values are exactly
those the child would write: the same value objects (``MmapedValue._value``), keys, positions,
``(value, timestamp 0.0)`` layout and lock, and the bucket ``bisect_left(bounds, x)``, which is
the first bound ``>= x`` that prometheus_client's loop finds.

prometheus_client's ``os.getpid()`` per write is replaced by a fork hook: a pid changes only at a
fork, and ``os.register_at_fork`` makes every mirror renew before its next write
(prometheus_client's own pid check then moves every value to the child's files). A process
identifier other than ``os.getpid``, which may change without a fork, and values that are not
memory-mapped (prometheus_client not in multiprocess mode) are written through the child as
before.

Mirrors of one metric share its children (``_Children.shared``), so two trackers of one kind in a
process add to the same values. A histogram's mirrors share them only when their bounds agree.

These are prometheus_client internals (0.26); tests/multiprocess/test_mirrors.py fails if an
upgrade changes them: the fast path must be found, and its files must equal a bare child's.
"""

from __future__ import annotations

import inspect
import os
import struct
import threading
import weakref
from bisect import bisect_left
from functools import lru_cache
from typing import Any, Callable, Self

import prometheus_client
from prometheus_client import values as pc_values

from ..catalog import MetricSpec
from ..instruments import Counter, Gauge, Histogram, Key

#: Bumped in the child of every fork: a mirror whose records were found before renews them.
_generation = [0]


def _forked() -> None:
    _generation[0] += 1


os.register_at_fork(after_in_child=_forked)

#: Every mirrored metric's children in use in this process (``_Children.shared``).
_SHARED: weakref.WeakValueDictionary[tuple[Any, ...], _Children] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()

#: One record of prometheus_client's file: the value and its timestamp (``mmap_dict``).
_RECORD = struct.Struct("dd").pack


def _direct(values: list[Any]) -> Any:
    """prometheus_client's lock for these values when they may be written as file records:
    memory-mapped values whose process identifier is ``os.getpid`` (so only a fork changes it);
    else None."""
    lock = _lock_of(values[0].__class__)
    if lock is None or not all(hasattr(v, "_file") and hasattr(v, "_key")
                               and hasattr(v, "_value") for v in values):
        return None
    return lock


@lru_cache(maxsize=16)  # one class in a server; tests make more
def _lock_of(value_class: type) -> Any:
    """The lock of a memory-mapped value class (``values.MultiProcessValue()``) identifying
    processes by ``os.getpid``; None for any other value class."""
    check = getattr(value_class, "_MmapedValue__check_for_pid_change", None)
    inc = getattr(value_class, "inc", None)
    if not getattr(value_class, "_multiprocess", False) or check is None or inc is None:
        return None
    if inspect.getclosurevars(check).nonlocals.get("process_identifier") is not os.getpid:
        return None
    lock = inspect.getclosurevars(inc).nonlocals.get("lock")
    return lock if callable(getattr(lock, "acquire", None)) else None


class _FileRecords:
    """The file records of one child's values (a counter's value; a histogram's sum and
    buckets), written as prometheus_client's ``MmapedValue.inc`` would (see module doc)."""

    __slots__ = ("values", "lock", "file", "positions", "generation")

    def __init__(self, values: list[Any], lock: Any) -> None:
        self.values, self.lock = values, lock
        self.renew()

    def renew(self) -> None:
        """Find the records in this process's file; after a fork, ``get()`` runs
        prometheus_client's pid check, which first moves every value to the child's files.
        The generation is set last: a thread that sees it current sees the new file too."""
        generation = _generation[0]
        self.values[0].get()
        file = self.values[0]._file
        self.file, self.positions = file, [file._positions[v._key] for v in self.values]
        self.generation = generation


class _CounterRecord(_FileRecords):
    __slots__ = ()

    def inc(self, amount: float) -> None:
        if self.generation != _generation[0]:
            self.renew()
        value, pos, lock = self.values[0], self.positions[0], self.lock
        lock.acquire()  # not `with`: see CatalogCollector
        try:
            total = value._value = value._value + amount
            self.file._m[pos:pos + 16] = _RECORD(total, 0.0)  # a slice, as prometheus_client does
        finally:
            lock.release()


class _HistogramRecords(_FileRecords):
    __slots__ = ("bounds",)

    def __init__(self, values: list[Any], lock: Any, bounds: tuple[float, ...]) -> None:
        super().__init__(values, lock)
        self.bounds = bounds

    def observe(self, value: float) -> None:
        if self.generation != _generation[0]:
            self.renew()
        positions, values = self.positions, self.values
        i = bisect_left(self.bounds, value) + 1  # _buckets[i - 1]; past the bounds: +Inf
        lock = self.lock
        lock.acquire()
        try:
            m = self.file._m
            total = values[0]._value = values[0]._value + value  # _sum
            m[positions[0]:positions[0] + 16] = _RECORD(total, 0.0)
            count = values[i]._value = values[i]._value + 1.0
            m[positions[i]:positions[i] + 16] = _RECORD(count, 0.0)
        finally:
            lock.release()


class _Children:
    """prometheus_client children by label tuple: ``labels()`` once per series.

    One per metric and process (``shared``): two trackers of one kind in a process (two hubs, or
    a tracker beside a hub) write the same file records, and with a child each, each would write
    its own total over the other's.
    """

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        #: made so far; a hot path reads this first and calls ``self(key)`` only on a miss
        self.children: dict[Key, Any] = {}

    @classmethod
    def shared(cls, key: tuple[Any, ...], make: Callable[[], Any], *args: Any) -> Self:
        """The children of the metric ``make()`` builds, made once per ``key`` while in use
        (and per prometheus_client value class, which tests swap)."""
        key = (cls, pc_values.ValueClass, *key)
        with _SHARED_LOCK:
            children = _SHARED.get(key)
            if not isinstance(children, cls):
                children = _SHARED[key] = cls(make(), *args)
        return children

    def __call__(self, key: Key) -> Any:
        child = self.children.get(key)
        if child is None:  # two trackers may race here: the first child made is kept
            child = self.children.setdefault(key, self.writer(self.metric.labels(*key)))
        return child

    def writer(self, child: Any) -> Any:
        """What a series' changes are written to: the child itself here."""
        return child

    def remove(self, key: Key) -> None:
        if self.children.pop(key, None) is not None:
            self.metric.remove(*key)


class _CounterChildren(_Children):
    def writer(self, child: Any) -> Any:
        values = [child._value]
        lock = _direct(values)
        return child if lock is None else _CounterRecord(values, lock)


class _HistogramChildren(_Children):
    def __init__(self, metric: Any, bounds: tuple[float, ...]) -> None:
        super().__init__(metric)
        self.bounds = bounds

    def writer(self, child: Any) -> Any:
        values = [child._sum, *child._buckets]
        lock = _direct(values)
        return child if lock is None else _HistogramRecords(values, lock, self.bounds)


class MirroredCounter(Counter):
    """A counter that also writes each add to this process's multiprocess file, so a scrape of
    every worker's files sums it exactly."""

    __slots__ = ("_mirror",)

    def __init__(self, spec: MetricSpec, namespace: str) -> None:
        super().__init__(spec)
        name = spec.full_name(namespace).removesuffix("_total")
        self._mirror = _CounterChildren.shared(
            (name, spec.help, spec.labels),
            lambda: prometheus_client.Counter(name, spec.help, spec.labels, registry=None))

    def inc(self, key: Key, amount: float = 1) -> None:
        values = self.values  # Counter.inc, inline: this runs for every count in this mode
        values[key] = values.get(key, 0) + amount
        (self._mirror.children.get(key) or self._mirror(key)).inc(amount)


class MirroredGauge(Gauge):
    """A gauge that also writes to the multiprocess files, combined across workers as the
    catalog's ``multiprocess_mode`` says."""

    __slots__ = ("_mirror",)

    def __init__(self, spec: MetricSpec, namespace: str) -> None:
        super().__init__(spec)
        assert spec.multiprocess_mode is not None, "a per-process gauge has no mirror (_make)"
        name, mode = spec.full_name(namespace), spec.multiprocess_mode
        self._mirror = _Children.shared(
            (name, spec.help, spec.labels, mode),
            lambda: prometheus_client.Gauge(name, spec.help, spec.labels, registry=None,
                                            multiprocess_mode=mode))

    def set(self, key: Key, value: float) -> None:
        super().set(key, value)
        self._mirror(key).set(value)

    def inc(self, key: Key, amount: float = 1) -> None:
        super().inc(key, amount)
        self._mirror(key).inc(amount)

    def remove(self, key: Key) -> None:
        super().remove(key)
        self._mirror.remove(key)


class MirroredHistogram(Histogram):
    """A histogram that also writes each observation's bucket and sum to the multiprocess files,
    with the same bounds as the in-process view."""

    __slots__ = ("_mirror",)

    def __init__(self, spec: MetricSpec, namespace: str, buckets: Any = None) -> None:
        super().__init__(spec, buckets)
        name, bounds = spec.full_name(namespace), self.bounds
        self._mirror = _HistogramChildren.shared(
            (name, spec.help, spec.labels, bounds),
            lambda: prometheus_client.Histogram(name, spec.help, spec.labels, registry=None,
                                                buckets=bounds), bounds)

    def observe(self, key: Key, value: float) -> None:
        super().observe(key, value)
        (self._mirror.children.get(key) or self._mirror(key)).observe(value)

    def mirror_of(self, key: Key) -> Any:
        """What a series' observations are written to (``observe(value)``), for a hot path that
        holds it."""
        return self._mirror(key)
