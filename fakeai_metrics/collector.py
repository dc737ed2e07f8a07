"""What every owner of catalog series shares: one lock, an injectable clock, its instruments and
the collector role.

A collector is an ordinary object. It registers itself as a collector in the registry it is given, or
in a private ``CollectorRegistry`` of its own, so any number of trackers can coexist; registering two
owners of the same metric in one registry raises prometheus_client's duplicate error, which names
the metric.
"""

from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from . import multiprocess as mp
from . import validation as v
from .multiprocess import mirrors
from .catalog import DEFAULT_NAMESPACE, MetricSpec, Owner, owned_by
from .instruments import Counter, Gauge, Histogram, Instrument

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider


Clock = Callable[[], float]
Buckets = Mapping[str, Iterable[float]]


class CatalogCollector:
    """Base class of the trackers and ``LabelLimits``. Subclasses set ``owner`` (the catalog
    series they export) and record under ``self._lock``.

    The per-request and per-token recording methods take the lock with ``lock.acquire()`` and
    ``try: ... finally: lock.release()`` rather than ``with self._lock:``: the same guarantee,
    about 0.1 us less per call on CPython 3.11 (bench/bench_core.py; docs/performance.md).
    Everything else uses ``with``.

    With a ``meter_provider`` (an OpenTelemetry ``MeterProvider``) the tracker also records into
    OpenTelemetry instruments from the same calls (see ``otel.py``); with None it does no
    OpenTelemetry work at all. ``genai_provider`` is the ``gen_ai.provider.name`` attribute.
    """

    owner: Owner
    default_clock: Clock = staticmethod(time.monotonic)

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        meter_provider: MeterProvider | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        buckets: Buckets | None = None,
        clock: Clock | None = None,
        genai_provider: str = "openai",
        multiprocess: bool | None = None,
    ) -> None:
        check_namespace(namespace)
        v.label("genai_provider", genai_provider)
        check_parts(registry, meter_provider, clock, buckets, multiprocess)
        self._lock = threading.Lock()
        self._clock: Clock = clock or type(self).default_clock
        self.namespace = namespace
        self.meter_provider = meter_provider
        buckets = dict(buckets or {})
        self.multiprocess = mp.enabled() if multiprocess is None else multiprocess
        mirror = namespace if self.multiprocess else None
        self._instruments: dict[str, Instrument] = {
            spec.name: _make(spec, buckets.pop(spec.name, None), mirror)
            for spec in owned_by(self.owner)
        }
        if buckets:
            raise v.InvalidMetricInput(
                f"buckets: {type(self).__name__} owns no histogram named {sorted(buckets)}")
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry.register(self)
        self._otel: Any = None
        if meter_provider is not None:
            from .otel import get_meter
            self._otel = self._otel_instruments(get_meter(meter_provider), genai_provider)

    def _otel_instruments(self, meter: Any, provider_name: str) -> Any:
        """This tracker's OpenTelemetry instruments; None where it exports nothing there."""
        return None

    def _instrument(self, spec: MetricSpec) -> Any:
        return self._instruments[spec.name]

    def _snapshot(self, spec: MetricSpec) -> dict[tuple[str, ...], float]:
        """A copy of a counter's or gauge's values, for an OpenTelemetry observable callback."""
        with self._lock:
            return dict(self._instrument(spec).values)

    def _refresh(self) -> None:
        """Update gauges computed from state (budgets, burn rates) just before a scrape."""

    def collect(self) -> list[Metric]:
        with self._lock:
            self._refresh()
            return [inst.family(self.namespace) for inst in self._instruments.values()]

    def describe(self) -> list[Metric]:
        return [_make(inst.spec, None).family(self.namespace)
                for inst in self._instruments.values()]

    def get_prometheus_metrics(self) -> str:
        """This tracker's own series in the Prometheus text format, by prometheus_client
        (whatever else shares its registry is left out)."""
        own = CollectorRegistry(auto_describe=False)
        own.register(_Own(self))
        return generate_latest(own).decode()


class _Own:
    """A collector as the only one of a throwaway registry (``get_prometheus_metrics``)."""

    def __init__(self, collector: CatalogCollector) -> None:
        self.collect = collector.collect


def check_parts(registry: object, meter_provider: object, clock: object, buckets: object,
                multiprocess: object = None, limits: object = None,
                clock_name: str = "clock") -> None:
    """The objects a tracker is built from have the shape it will use."""
    if multiprocess is not None and not isinstance(multiprocess, bool):
        raise v.InvalidMetricInput("multiprocess must be True, False or None")
    for name, value, method in (("registry", registry, "register"),
                                ("meter_provider", meter_provider, "get_meter"),
                                ("limits", limits, "admit")):
        if value is not None and not callable(getattr(value, method, None)):
            raise v.InvalidMetricInput(f"{name} must have a {method}() method, got "
                                       f"{type(value).__name__}")
    if clock is not None and not callable(clock):
        raise v.InvalidMetricInput(f"{clock_name} must be callable, got {type(clock).__name__}")
    if buckets is not None and not isinstance(buckets, Mapping):
        raise v.InvalidMetricInput(f"buckets must map histogram names to bounds, got "
                                   f"{type(buckets).__name__}")


_NAMESPACE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def check_namespace(namespace: object) -> str:
    """A metric-name prefix Prometheus accepts (a bad one would break every scrape)."""
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        raise v.InvalidMetricInput(
            f"namespace must match [a-zA-Z_:][a-zA-Z0-9_:]*, got {namespace!r}")
    return namespace


def _make(spec: MetricSpec, buckets: Iterable[float] | None,
          mirror_namespace: str | None = None) -> Instrument:
    """A plain instrument, or one that also writes to prometheus_client's multiprocess files."""
    if spec.kind == "histogram":
        return mirrors.MirroredHistogram(spec, mirror_namespace, buckets) \
            if mirror_namespace is not None else Histogram(spec, buckets)
    if buckets is not None:
        raise v.InvalidMetricInput(f"buckets: {spec.name} is a {spec.kind}; only histograms "
                                   "take buckets")
    if spec.kind == "counter":
        return mirrors.MirroredCounter(spec, mirror_namespace) \
            if mirror_namespace is not None else Counter(spec)
    if mirror_namespace is not None and spec.multiprocess_mode is not None:
        return mirrors.MirroredGauge(spec, mirror_namespace)
    return Gauge(spec)  # per-process gauges stay out of the files; see multiprocess.py
