"""prometheus_client's multiprocess mode: values also written to its per-process files.

With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn or uvicorn with several workers), each tracker's
instruments also write through to prometheus_client metrics, whose values live in memory-mapped
files that ``scrape_registry()`` merges at scrape time (prometheus_client's rules, each file key
parsed once per process: see ``multiprocess_merge``). Counters and histograms are exact across
workers. Gauges combine as the catalog's ``multiprocess_mode`` says: open streams and budget
spend are summed over live workers (``livesum``), budget limits and thresholds and the SLO
objective take the most recent value. The burn-rate gauge is per-process state and is not
exported in this mode; the generated recording rules compute it fleet-wide from
``fakeai_requests_total``. With the Redis budget store (``redis_store``) budget spend and, with
``shared_slo``, the burn rate are already the fleet's in every worker: those gauges then take the
most recent worker's value (``livemostrecent``) instead.

In this mode ``reset()``/``clear_history()`` reset the in-process views only: files never go back.
"""

from __future__ import annotations

import os
from typing import Any

import prometheus_client

from .catalog import MetricSpec
from .instruments import Counter, Gauge, Histogram, Key


def enabled() -> bool:
    """True when prometheus_client runs in multiprocess mode in this process."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")
                or os.environ.get("prometheus_multiproc_dir"))


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


def scrape_registry() -> prometheus_client.CollectorRegistry:
    """A registry that reads every worker's files: serve this one in multiprocess mode."""
    from .multiprocess_merge import MergingCollector
    registry = prometheus_client.CollectorRegistry()
    MergingCollector(registry)
    return registry
