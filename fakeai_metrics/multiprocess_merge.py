"""Scraping prometheus_client's multiprocess files with each series key parsed once per process.

prometheus_client's ``MultiProcessCollector`` JSON-decodes every key of every worker's file on
every scrape and merges sample by sample through generic branches; with four workers that was
three quarters of the scrape (docs/performance.md). ``MergingCollector`` reads the same files
with prometheus_client's own reader, remembers what each key says (metric, sample name, labels,
bucket bound) across scrapes, and merges by the same rules:

* counters, summaries and histogram ``_sum``: summed over files;
* histogram buckets: summed per bound, then made cumulative; ``_count`` is the last bucket;
* gauges: by the mode in their file name (``min``/``max``/``sum``/``mostrecent`` and their
  ``live`` forms drop the ``pid`` label; ``all``/``liveall`` keep one series per pid). As in
  prometheus_client, a metric's gauge mode is the one of the last file it was read from.

The test suite checks it sample for sample against ``MultiProcessCollector`` on files of every
type and mode. Exposition, the file format and ``mark_process_dead`` stay prometheus_client's.
"""

from __future__ import annotations

import glob
import json
import os
from collections import defaultdict
from functools import lru_cache
from typing import NamedTuple

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

Labels = tuple[tuple[str, str], ...]

#: Parsed keys kept across scrapes; past this many (series of long-gone deploys) the memo restarts.
MAX_KEYS = 100_000


class _Key(NamedTuple):
    """What one file key says, parsed once."""

    metric: str
    sample: str
    help: str
    labels: Labels                   # sorted, as prometheus_client groups them
    le: float | None                 # the bucket bound, when the labels have ``le``
    group: Labels                    # ``labels`` without ``le``: the histogram series


def _parse(key: str) -> _Key:
    metric, sample, label_map, help_text = json.loads(key)
    labels: Labels = tuple(sorted(label_map.items()))
    le_text = label_map.get("le")
    if le_text is None:
        return _Key(metric, sample, help_text, labels, None, labels)
    return _Key(metric, sample, help_text, labels, float(le_text),
                tuple(pair for pair in labels if pair[0] != "le"))


@lru_cache(maxsize=4096)
def _le_label(le: float) -> tuple[str, str]:
    return ("le", floatToGoString(le))


class _Family:
    """One metric's samples while files are read: sums by series, buckets, raw gauge values."""

    __slots__ = ("name", "help", "typ", "mode", "series", "buckets", "gauges")

    def __init__(self, name: str, help_text: str, typ: str) -> None:
        self.name, self.help, self.typ, self.mode = name, help_text, typ, ""
        # series labels -> {(sample name, sample labels): value}, in first-seen order
        self.series: dict[Labels, dict[tuple[str, Labels], float]] = {}
        self.buckets: dict[Labels, defaultdict[float, float]] = {}
        self.gauges: list[tuple[_Key, tuple[str, str], float, float]] = []

    def add(self, k: _Key, value: float) -> None:
        if k.le is not None and self.typ == "histogram":
            bounds = self.buckets.get(k.group)
            if bounds is None:
                bounds = self.buckets[k.group] = defaultdict(float)
            bounds[k.le] += value
            return
        samples = self.series.get(k.labels)
        if samples is None:
            samples = self.series[k.labels] = {}
        sample = (k.sample, k.labels)
        samples[sample] = samples.get(sample, 0.0) + value

    def metric(self) -> Metric:
        if self.gauges:
            self._combine_gauges()
        for group, bounds in self.buckets.items():
            samples = self.series.setdefault(group, {})
            total = 0.0
            for le in sorted(bounds):
                total += bounds[le]
                samples[(self.name + "_bucket", group + (_le_label(le),))] = total
            samples[(self.name + "_count", group)] = total
        m = Metric(self.name, self.help, self.typ)
        m.samples = [Sample(name, dict(labels), value)
                     for samples in self.series.values() for (name, labels), value in
                     samples.items()]
        return m

    def _combine_gauges(self) -> None:
        base = self.mode[4:] if self.mode.startswith("live") else self.mode
        keep_pid = base not in ("min", "max", "sum", "mostrecent")
        stamps: dict[tuple[str, Labels], float] = {}
        for k, pid, value, timestamp in self.gauges:
            labels = k.labels + (pid,) if keep_pid else k.labels
            sample = (k.sample, labels)
            if base == "mostrecent":  # a series shows up only once a newer value is kept
                timestamp = float(timestamp or 0)
                if stamps.get(sample, 0.0) < timestamp:
                    self.series.setdefault(labels, {})[sample] = value
                    stamps[sample] = timestamp
                continue
            samples = self.series.setdefault(labels, {})
            current = samples.get(sample)
            if base == "sum":
                samples[sample] = (current or 0.0) + value
            elif current is None or keep_pid or (base == "min" and value < current) or (
                    base == "max" and value > current):
                samples[sample] = value


class MergingCollector(MultiProcessCollector):
    """``MultiProcessCollector`` whose merge keeps parsed keys between scrapes (see module doc)."""

    def __init__(self, registry: CollectorRegistry | None, path: str | None = None) -> None:
        self._keys: dict[str, _Key] = {}
        super().__init__(registry, path)

    def collect(self) -> list[Metric]:
        if len(self._keys) > MAX_KEYS:
            self._keys = {}  # a new dict, not clear(): a concurrent scrape keeps its own
        keys = self._keys
        families: dict[str, _Family] = {}
        totals: dict[str, float] = {}  # counter, histogram and summary keys, summed over files
        for path in glob.glob(os.path.join(self._path, "*.db")):
            parts = os.path.basename(path).split("_")
            typ = parts[0]
            try:
                values = MmapedDict.read_all_values_from_file(path)
            except FileNotFoundError:
                if typ == "gauge" and parts[1].startswith("live"):
                    continue  # the worker was marked dead between the glob and this read
                raise
            if typ == "gauge":
                pid = ("pid", parts[2][:-3])
                for key, value, timestamp, _ in values:
                    family = _family(families, keys, key, typ)
                    family.mode = parts[1]
                    family.gauges.append((keys[key], pid, value, timestamp))
                continue
            for key, value, _, _ in values:  # the hot loop: one dict update per value
                total = totals.get(key)
                if total is None:
                    totals[key] = 0.0 + value
                    _family(families, keys, key, typ)
                else:
                    totals[key] = total + value
        for key, total in totals.items():
            k = keys[key]
            families[k.metric].add(k, total)
        return [family.metric() for family in families.values()]


def _family(families: dict[str, _Family], keys: dict[str, _Key], key: str, typ: str) -> _Family:
    """The family of ``key`` (parsed at most once while in ``keys``), made on first sight in this
    scrape with the type of the file it was first read from, as prometheus_client does."""
    k = keys.get(key)
    if k is None:
        k = keys[key] = _parse(key)
    family = families.get(k.metric)
    if family is None:
        family = families[k.metric] = _Family(k.metric, k.help, typ)
    return family
