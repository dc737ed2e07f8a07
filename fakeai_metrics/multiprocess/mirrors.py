"""Instruments that also write to prometheus_client's multiprocess files.

A mirrored instrument keeps the in-process values the trackers read (``fakeai_metrics.instruments``)
and writes every change through to a prometheus_client child, whose value lives in this process's
memory-mapped file; ``scrape_registry()`` merges the files of every worker.

Counters and histograms write their children's file records directly (``_FileRecords``) instead of
calling the child. Why: with the bench mix in this mode, bare prometheus_client spends ~60 us per
request on ~40 writes, and a mirror that also called the child paid that on top of the in-process
views (1.6-1.7x, bench/bench_core.py --mp-only). A child's ``Histogram.observe`` takes ~2.2 us: two
``MmapedValue.inc`` calls, each taking prometheus_client's lock and calling ``os.getpid()``, after a
Python loop over the bounds. Written directly, an observation is one ``bisect`` and two 16-byte
stores (~0.6 us), a counter increment one store. The records and their values are exactly those
the child would write: the same value objects (``MmapedValue._value``), keys, positions and
``(value, timestamp 0.0)`` layout, the bucket ``bisect_left(bounds, x)``, which is the first bound
``>= x`` that prometheus_client's loop finds.

What replaces prometheus_client's per-write checks:

* its lock: each mirror's values belong to that mirror alone, and its tracker writes them under
  the tracker's lock; a record's position never moves once in a file, and a file that grows is
  remapped, the old map still writing the same pages;
* its ``os.getpid()`` per write: a pid changes only at a fork, and an ``os.register_at_fork`` hook
  makes every mirror renew before its next write (prometheus_client's own pid check then moves
  every value to the child's files). A process identifier other than ``os.getpid``, or values that
  are not memory-mapped (prometheus_client not in multiprocess mode), are written through the
  child as before.

These are prometheus_client internals (0.26); tests/multiprocess/test_mirrors.py fails if an
upgrade changes them: the fast path must be found, and its files must equal a bare child's.
"""

from __future__ import annotations

import inspect
import os
import struct
from bisect import bisect_left
from functools import lru_cache
from typing import Any

import prometheus_client

from ..catalog import MetricSpec
from ..instruments import Counter, Gauge, Histogram, Key

#: Bumped in the child of every fork: a mirror whose records were found before renews them.
_generation = [0]


def _forked() -> None:
    _generation[0] += 1


os.register_at_fork(after_in_child=_forked)

#: One record of prometheus_client's file: the value and its timestamp (``mmap_dict``).
_RECORD = struct.Struct("dd").pack


def _direct(values: list[Any]) -> bool:
    """True when these prometheus_client values may be written as file records: memory-mapped
    values whose process identifier is ``os.getpid`` (so only a fork changes it)."""
    return _forks_only(values[0].__class__) and all(
        hasattr(v, "_file") and hasattr(v, "_key") and hasattr(v, "_value") for v in values)


@lru_cache(maxsize=16)  # one class in a server; tests make more
def _forks_only(value_class: type) -> bool:
    """A memory-mapped value class (``values.MultiProcessValue()``) identifying processes by
    ``os.getpid``."""
    check = getattr(value_class, "_MmapedValue__check_for_pid_change", None)
    if not getattr(value_class, "_multiprocess", False) or check is None:
        return False
    return inspect.getclosurevars(check).nonlocals.get("process_identifier") is os.getpid


class _FileRecords:
    """The file records of one child's values (a counter's value; a histogram's sum and
    buckets), written as prometheus_client's ``MmapedValue.inc`` would (see module doc)."""

    __slots__ = ("values", "file", "positions", "generation")

    def __init__(self, values: list[Any]) -> None:
        self.values = values
        self.renew()

    def renew(self) -> None:
        """Find the records in this process's file; after a fork, ``get()`` runs
        prometheus_client's pid check, which first moves every value to the child's files."""
        self.generation = _generation[0]
        self.values[0].get()
        self.file = self.values[0]._file
        self.positions = [self.file._positions[v._key] for v in self.values]


class _CounterRecord(_FileRecords):
    __slots__ = ()

    def inc(self, amount: float) -> None:
        if self.generation != _generation[0]:
            self.renew()
        value, pos = self.values[0], self.positions[0]
        total = value._value = value._value + amount
        self.file._m[pos:pos + 16] = _RECORD(total, 0.0)  # a slice, as prometheus_client writes


class _HistogramRecords(_FileRecords):
    __slots__ = ("bounds",)

    def __init__(self, values: list[Any], bounds: tuple[float, ...]) -> None:
        super().__init__(values)
        self.bounds = bounds

    def observe(self, value: float) -> None:
        if self.generation != _generation[0]:
            self.renew()
        m, positions, values = self.file._m, self.positions, self.values
        total = values[0]._value = values[0]._value + value  # _sum
        m[positions[0]:positions[0] + 16] = _RECORD(total, 0.0)
        i = bisect_left(self.bounds, value) + 1  # _buckets[i - 1]; past the bounds: +Inf
        count = values[i]._value = values[i]._value + 1.0
        m[positions[i]:positions[i] + 16] = _RECORD(count, 0.0)


class _Children:
    """prometheus_client children by label tuple: ``labels()`` once per series."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        #: made so far; a hot path reads this first and calls ``self(key)`` only on a miss
        self.children: dict[Key, Any] = {}

    def __call__(self, key: Key) -> Any:
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = self.writer(self.metric.labels(*key))
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
        return _CounterRecord(values) if _direct(values) else child


class _HistogramChildren(_Children):
    def __init__(self, metric: Any, bounds: tuple[float, ...]) -> None:
        super().__init__(metric)
        self.bounds = bounds

    def writer(self, child: Any) -> Any:
        values = [child._sum, *child._buckets]
        return _HistogramRecords(values, self.bounds) if _direct(values) else child


class MirroredCounter(Counter):
    __slots__ = ("_mirror",)

    def __init__(self, spec: MetricSpec, namespace: str) -> None:
        super().__init__(spec)
        name = spec.full_name(namespace).removesuffix("_total")
        self._mirror = _CounterChildren(prometheus_client.Counter(name, spec.help, spec.labels,
                                                                  registry=None))

    def inc(self, key: Key, amount: float = 1) -> None:
        values = self.values  # Counter.inc, inline: this runs for every count in this mode
        values[key] = values.get(key, 0) + amount
        (self._mirror.children.get(key) or self._mirror(key)).inc(amount)


class MirroredGauge(Gauge):
    __slots__ = ("_mirror",)

    def __init__(self, spec: MetricSpec, namespace: str) -> None:
        super().__init__(spec)
        assert spec.multiprocess_mode is not None, "a per-process gauge has no mirror (_make)"
        self._mirror = _Children(prometheus_client.Gauge(
            spec.full_name(namespace), spec.help, spec.labels, registry=None,
            multiprocess_mode=spec.multiprocess_mode))

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
    __slots__ = ("_mirror",)

    def __init__(self, spec: MetricSpec, namespace: str, buckets: Any = None) -> None:
        super().__init__(spec, buckets)
        self._mirror = _HistogramChildren(prometheus_client.Histogram(
            spec.full_name(namespace), spec.help, spec.labels, registry=None,
            buckets=self.bounds), self.bounds)

    def observe(self, key: Key, value: float) -> None:
        super().observe(key, value)
        (self._mirror.children.get(key) or self._mirror(key)).observe(value)

    def mirror_of(self, key: Key) -> Any:
        """What a series' observations are written to (``observe(value)``), for a hot path that
        holds it."""
        return self._mirror(key)
