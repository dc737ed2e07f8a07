"""Where the numbers live: plain counters, gauges and histograms that a tracker owns.

They hold no lock: the owning tracker takes its one lock around a whole recording call, and again
around ``family()`` at scrape time, so a scrape sees a consistent snapshot. They are exported by the
tracker's collector (prometheus_client's own way to export state one keeps oneself), so the hot path
is a dict lookup and an add, not a prometheus_client child with its own lock.

A ``Histogram`` keeps counts on a fine log grid that contains every Prometheus bucket bound: the
exported ``le`` buckets are exact, and the in-process percentiles come from the same counts with a
relative error of at most ``GRID_RATIO ** 0.5 - 1`` (about 1 %).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from functools import lru_cache
from typing import Iterable

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from . import validation
from .catalog import MetricSpec

Key = tuple[str, ...]

#: Ratio between consecutive fine-grid bounds; percentiles are within sqrt(ratio) - 1 (~1 %).
GRID_RATIO = 1.02
_GRID_LOW, _GRID_HIGH = 1e-6, 1e7


@lru_cache(maxsize=None)
def fine_grid(bounds: tuple[float, ...]) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """The fine bin upper bounds (a log grid plus every bucket bound) and each bin's bucket index.

    Bin ``i`` holds values in ``(grid[i-1], grid[i]]``; the last bin (index ``len(grid)``) holds
    everything above the grid. ``bucket_of[i]`` is the Prometheus bucket that bin falls in.
    """
    steps = int(math.log(_GRID_HIGH / _GRID_LOW) / math.log(GRID_RATIO)) + 1
    grid = sorted({_GRID_LOW * GRID_RATIO**i for i in range(steps)} | set(bounds))
    bucket_of = tuple(bisect_left(bounds, g) for g in grid) + (len(bounds),)
    return tuple(grid), bucket_of


class Counter:
    """A counter's values by label tuple: a dict add on the hot path, prometheus_client's family at
    scrape time (cheaper than a prometheus_client child per series; docs/performance.md)."""

    __slots__ = ("spec", "values")

    def __init__(self, spec: MetricSpec) -> None:
        self.spec = spec
        self.values: dict[Key, float] = {}

    def inc(self, key: Key, amount: float = 1) -> None:
        try:  # one subscript and one store, no method call (a series' first add is the miss)
            self.values[key] += amount
        except KeyError:
            self.values[key] = amount

    def get(self, key: Key) -> float:
        return self.values.get(key, 0)

    def family(self, namespace: str) -> Metric:
        fam = CounterMetricFamily(self.spec.full_name(namespace), self.spec.help,
                                  labels=self.spec.labels, unit="")
        for key, value in self.values.items():
            fam.add_metric(key, value)
        return fam

    def clear(self) -> None:
        self.values.clear()


class Gauge:
    """A gauge's values by label tuple, set or added on the hot path, exported at scrape time."""

    __slots__ = ("spec", "values")

    def __init__(self, spec: MetricSpec) -> None:
        self.spec = spec
        self.values: dict[Key, float] = {}

    def set(self, key: Key, value: float) -> None:
        self.values[key] = value

    def inc(self, key: Key, amount: float = 1) -> None:
        try:  # one subscript and one store, no method call (a series' first add is the miss)
            self.values[key] += amount
        except KeyError:
            self.values[key] = amount

    def remove(self, key: Key) -> None:
        self.values.pop(key, None)

    def family(self, namespace: str) -> Metric:
        fam = GaugeMetricFamily(self.spec.full_name(namespace), self.spec.help,
                                labels=self.spec.labels)
        for key, value in self.values.items():
            fam.add_metric(key, value)
        return fam

    def clear(self) -> None:
        self.values.clear()


class Distribution:
    """Counts of one series on the fine grid, with exact count, sum, min and max.

    Memory is the number of distinct fine bins hit (at most ~1,540), never the number of events.
    The count is not stored but summed from the bins when read, so an observation (the hot path)
    updates one field fewer.
    """

    __slots__ = ("bins", "sum", "min", "max")

    def __init__(self) -> None:
        self.bins: defaultdict[int, int] = defaultdict(int)  # `+= 1`: no .get() call per add
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, index: int, value: float) -> None:
        self.bins[index] += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def merge(self, other: "Distribution") -> None:
        bins = self.bins
        for i, n in other.bins.items():
            bins[i] += n
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    @property
    def count(self) -> int:
        return sum(self.bins.values())

    @property
    def mean(self) -> float:
        count = self.count
        return self.sum / count if count else 0.0

    def quantile(self, q: float, grid: tuple[float, ...]) -> float:
        """Estimate of the q-quantile (nearest rank), within the grid's relative error."""
        count = self.count
        if not count:
            return 0.0
        rank = max(1, math.ceil(q * count))
        seen = 0
        for i in sorted(self.bins):
            seen += self.bins[i]
            if seen >= rank:
                if i >= len(grid):
                    return self.max
                hi = grid[i]
                lo = grid[i - 1] if i else 0.0
                estimate = math.sqrt(lo * hi) if lo > 0 else hi
                return min(max(estimate, self.min), self.max)
        return self.max


class Histogram:
    """A labelled histogram whose series are ``Distribution``s on the fine grid of its buckets."""

    __slots__ = ("spec", "bounds", "grid", "bucket_of", "series")

    def __init__(self, spec: MetricSpec, buckets: Iterable[float] | None = None) -> None:
        self.spec = spec
        bounds = spec.buckets if buckets is None else \
            validation.bounds(f"buckets[{spec.name!r}]", buckets)
        self.bounds = bounds
        self.grid, self.bucket_of = fine_grid(bounds)
        self.series: dict[Key, Distribution] = {}

    def observe(self, key: Key, value: float) -> None:
        try:  # a subscript, not .get(): no method call (a series' first value is the miss)
            dist = self.series[key]
        except KeyError:
            dist = self.series[key] = Distribution()
        dist.add(bisect_left(self.grid, value), value)

    @property
    def observed_in_place(self) -> bool:
        """True when ``observe`` only updates the series' ``Distribution``, so a hot path that
        holds that ``Distribution`` may update it directly (False for a subclass that does more,
        such as the multiprocess mirror)."""
        return type(self).observe is Histogram.observe

    def get(self, key: Key) -> Distribution | None:
        return self.series.get(key)

    def merged(self) -> Distribution:
        """All series together, for in-process totals across labels."""
        total = Distribution()
        for dist in self.series.values():
            total.merge(dist)
        return total

    def quantile(self, dist: Distribution, q: float) -> float:
        return dist.quantile(q, self.grid)

    def family(self, namespace: str) -> Metric:
        fam = HistogramMetricFamily(self.spec.full_name(namespace), self.spec.help,
                                    labels=self.spec.labels)
        les = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        bucket_of = self.bucket_of
        for key, dist in self.series.items():
            per_bucket = [0] * len(les)
            for i, n in dist.bins.items():
                per_bucket[bucket_of[i]] += n
            cumulative, running = [], 0
            for le, n in zip(les, per_bucket):
                running += n
                cumulative.append((le, running))
            fam.add_metric(key, cumulative, dist.sum)
        return fam

    def clear(self) -> None:
        self.series.clear()


Instrument = Counter | Gauge | Histogram
