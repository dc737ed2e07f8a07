"""GoodputTracker: counts, per latency SLO, the finished requests it matched and the good ones.

It owns ``fakeai_slo_requests_total{slo}`` and ``fakeai_slo_good_requests_total{slo}`` (both start
at 0 for every SLO, so ``rate()`` and the rules see the series from the first scrape) and keeps a
ring of ten-second slots for ``status()``, the in-process view over the last ``window_seconds``.

Hot path: no per-token work at all (the hub hands over TTFT and TPOT once, when a stream ends).
Per request, the SLOs that match a (model, endpoint) pair are computed once and cached, so a
request costs one dict lookup, and per matching SLO a few float comparisons and list adds
(bench/bench_goodput.py: <= 1 us per request per SLO). The running totals live in a plain list
that the counters are set from at scrape time; a ``Counter.inc`` per SLO and request measured
about half the per-SLO cost. In prometheus_client's multiprocess mode the counters' files are
written per request as well, since another process scrapes them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, NamedTuple, Sequence

from . import catalog as c
from .latency_slo import LatencySLO, check_unique
from .slo import burn_rate, violated
from .tracker import Tracker
from . import validation as v
from .validation import InvalidMetricInput
from .windows import Ring

#: Slot width of the in-process window, as the availability SLO's ring uses.
SLOT_SECONDS = 10.0
#: Distinct (model, endpoint) pairs whose matches are cached; beyond, matches are recomputed.
MAX_ROUTES = 10_000

_INF = math.inf


class _Judge(NamedTuple):
    """One SLO as the hot path reads it: its slot index, label key and bounds (inf: none)."""

    at: int
    key: tuple[str]
    ttft: float
    tpot: float
    duration: float


@dataclass
class GoodputStatus:
    """One latency SLO over the last ``window_seconds`` (to the ten-second slot).

    ``seconds_covered`` is the time the counted slots span, at most the tracker's age (the
    rates' denominator).
    ``good_ratio`` is 1.0 and ``burn_rate`` 0.0 without requests; ``violated`` compares the
    counts as fractions, so a good ratio exactly at the objective is not a violation.
    """

    name: str
    objective: float
    window_seconds: float
    seconds_covered: float
    total_requests: int
    good_requests: int
    bad_requests: int
    good_ratio: float
    goodput_per_second: float
    throughput_per_second: float
    burn_rate: float
    violated: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class GoodputTracker(Tracker):
    """Judges every finished request against the latency SLOs that match it, so goodput (requests
    that met their SLOs) is measured by the server itself and alerted on by burn rate."""

    owner = "goodput"

    def __init__(self, slos: Sequence[LatencySLO] = (), *, window_seconds: float = 300,
                 **kwargs: Any) -> None:
        slos = check_unique(slos)
        window_seconds = check_window(window_seconds)
        super().__init__(**kwargs)
        self.slos = slos
        self.window_seconds = window_seconds
        self._index = {s.name: i for i, s in enumerate(slos)}
        self._judges = tuple(
            _Judge(2 * i, (s.name,), _bound(s.ttft_seconds), _bound(s.tpot_seconds),
                   _bound(s.duration_seconds)) for i, s in enumerate(slos))
        width = 2 * len(slos)
        self._ring: Ring[list[int]] = Ring(self.window_seconds, SLOT_SECONDS,
                                           lambda: [0] * width)
        self._requests = self._instrument(c.SLO_REQUESTS)
        self._good = self._instrument(c.SLO_GOOD_REQUESTS)
        #: requests and good requests per SLO since construction, at 2 * i and 2 * i + 1
        self._totals = [0] * width
        self._write_through = self.multiprocess
        if self._write_through:  # the series exist in the files from the start, as here
            for judge in self._judges:
                self._requests.inc(judge.key, 0)
                self._good.inc(judge.key, 0)
        self._routes: dict[tuple[str | None, str], tuple[_Judge, ...]] = {}
        self._started = self._clock()

    def judges(self, model: str | None, endpoint: str) -> tuple[_Judge, ...]:
        """The SLOs matching a request, cached per (model, endpoint)."""
        route = (model, endpoint)
        found = self._routes.get(route)
        if found is None:
            found = tuple(j for j, s in zip(self._judges, self.slos)
                          if s.matches(model, endpoint))
            if len(self._routes) < MAX_ROUTES:
                self._routes[route] = found
        return found

    def record(self, model: str | None, endpoint: str, ok: bool, duration_s: float,
               ttft_s: float | None = None, tpot_s: float | None = None) -> None:
        """One finished request, already validated by the caller (``Telemetry``).

        ``ttft_s`` is None for a request that was not streamed, ``tpot_s`` for one of fewer
        than two output tokens: their bounds do not apply. A failed request is bad.
        """
        judges = self._routes.get((model, endpoint))
        if judges is None:
            judges = self.judges(model, endpoint)
        if not judges:
            return
        ttft = -_INF if ttft_s is None else ttft_s
        tpot = -_INF if tpot_s is None else tpot_s
        now = self._clock()
        totals, write_through = self._totals, self._write_through
        lock = self._lock
        lock.acquire()  # not `with`: see Tracker
        try:
            slot = self._ring.slot(now)
            for at, key, ttft_bound, tpot_bound, duration_bound in judges:
                slot[at] += 1
                totals[at] += 1
                if write_through:
                    self._requests.inc(key)
                if ok and duration_s <= duration_bound and ttft <= ttft_bound \
                        and tpot <= tpot_bound:
                    slot[at + 1] += 1
                    totals[at + 1] += 1
                    if write_through:
                        self._good.inc(key)
        finally:
            lock.release()

    def status(self, name: str) -> GoodputStatus:
        i = self._index.get(name) if isinstance(name, str) else None
        if i is None:
            raise InvalidMetricInput(f"name {name!r} is no latency SLO here (known: "
                                     f"{', '.join(self._index) or 'none'})")
        slo = self.slos[i]
        now = self._clock()
        with self._lock:
            slots, covered = self._ring.recent(now)
            total = sum(s[2 * i] for s in slots)
            good = sum(s[2 * i + 1] for s in slots)
        covered = min(covered, now - self._started)  # a young tracker has seen less time
        bad = total - good
        return GoodputStatus(
            name=name, objective=slo.objective, window_seconds=self.window_seconds,
            seconds_covered=covered, total_requests=total, good_requests=good,
            bad_requests=bad, good_ratio=good / total if total else 1.0,
            goodput_per_second=good / covered if covered > 0 else 0.0,
            throughput_per_second=total / covered if covered > 0 else 0.0,
            burn_rate=burn_rate(bad, total, slo.objective),
            violated=violated(bad, total, slo.objective))

    def totals(self) -> dict[tuple[str], tuple[int, int]]:
        """(requests, good requests) per SLO label since construction: what is exported."""
        with self._lock:
            return {j.key: (self._totals[j.at], self._totals[j.at + 1])
                    for j in self._judges}

    def _refresh(self) -> None:
        for j in self._judges:
            self._requests.values[j.key] = self._totals[j.at]
            self._good.values[j.key] = self._totals[j.at + 1]

    def _otel_instruments(self, meter: Any, provider_name: str) -> Any:
        from .otel import GoodputInstruments

        def column(offset: int) -> Callable[[], dict[tuple[str, ...], float]]:
            return lambda: {key: counts[offset] for key, counts in self.totals().items()}

        return GoodputInstruments(meter, column(0), column(1))


def check_window(window_seconds: object, name: str = "window_seconds") -> float:
    """The window of ``status()``: a positive number of seconds."""
    if v.seconds(name, window_seconds) <= 0:
        raise InvalidMetricInput(f"{name} must be > 0, got {window_seconds!r}")
    return float(window_seconds)  # type: ignore[arg-type]


def _bound(value: float | None) -> float:
    return _INF if value is None else value
