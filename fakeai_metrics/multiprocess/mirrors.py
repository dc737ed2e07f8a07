"""Instruments that also write to prometheus_client's multiprocess files.

A mirrored instrument keeps the in-process values the trackers read (``fakeai_metrics.instruments``)
and writes every change through to a prometheus_client child, whose value lives in this process's
memory-mapped file; ``scrape_registry()`` merges the files of every worker.
"""

from __future__ import annotations

from typing import Any

import prometheus_client

from ..catalog import MetricSpec
from ..instruments import Counter, Gauge, Histogram, Key


class _Children:
    """prometheus_client children by label tuple: ``labels()`` once per series."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        #: made so far; a hot path reads this first and calls ``self(key)`` only on a miss
        self.children: dict[Key, Any] = {}

    def __call__(self, key: Key) -> Any:
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = self.metric.labels(*key)
        return child

    def remove(self, key: Key) -> None:
        if self.children.pop(key, None) is not None:
            self.metric.remove(*key)


class MirroredCounter(Counter):
    __slots__ = ("_mirror",)

    def __init__(self, spec: MetricSpec, namespace: str) -> None:
        super().__init__(spec)
        name = spec.full_name(namespace).removesuffix("_total")
        self._mirror = _Children(prometheus_client.Counter(name, spec.help, spec.labels,
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
        self._mirror = _Children(prometheus_client.Histogram(
            spec.full_name(namespace), spec.help, spec.labels, registry=None,
            buckets=self.bounds))

    def observe(self, key: Key, value: float) -> None:
        super().observe(key, value)
        (self._mirror.children.get(key) or self._mirror(key)).observe(value)

    def mirror_of(self, key: Key) -> Any:
        """The prometheus_client child of a series, for a hot path that holds it."""
        return self._mirror(key)
