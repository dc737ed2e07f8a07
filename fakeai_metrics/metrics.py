"""MetricsTracker: the per-endpoint view — request, response, token and error rates, latency.

Rates are per second over a sliding window (``window_seconds``, 60 by default) kept in one-second
slots, so memory is fixed per endpoint. ``get_metrics`` gives, per kind and endpoint, the rate and
avg/min/max/p50/p90/p99 of the values the calls carried in the window: latency in seconds for
responses, tokens per call for tokens; requests and errors carry no value, so theirs are 0. The
token rate is tokens per second. A completed stream counts as a response whose latency is the
stream's duration; a failed stream counts as an error.

Stream TTFT and tokens/s here are in-process conveniences in seconds; the exported TTFT histogram
belongs to ``StreamingMetricsTracker``. A stream opened through ``Telemetry`` is held only by that
tracker (one open-stream table): this view counts it active under its endpoint and records its
end from that tracker's numbers; ``start_stream`` here, and ``max_active_streams``, are for this
tracker used on its own.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import time
from bisect import bisect_left
from collections import OrderedDict
from typing import Any

from . import catalog as c
from . import validation as v
from .instruments import Counter, Distribution, Histogram, fine_grid
from .open_stream import OpenStream
from .tracker import Tracker
from .windows import Ring

log = logging.getLogger(__name__)

KINDS = ("requests", "responses", "tokens", "errors")
_STAT_QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))
_LATENCY_STATS = ("avg", "min", "max", "p50", "p90", "p99")
CSV_LATENCY_COLUMNS = tuple(f"{stat}_latency" for stat in _LATENCY_STATS)
#: Open request timers kept per endpoint (FakeAI's cap).
MAX_TIMERS = 1000
_PLAIN_GRID = fine_grid(())[0]


#: Index of each kind in a second's ``events``, and its bit in ``_Window.seen``.
_REQUESTS, _RESPONSES, _TOKENS, _ERRORS = range(len(KINDS))
#: The kinds a finished request counts (``_record_request``), as bits.
_REQUEST_KINDS = 1 << _REQUESTS | 1 << _RESPONSES | 1 << _TOKENS


class _Second:
    """One second of one endpoint: the events of each kind (``KINDS`` order), and the values
    responses (latency, seconds) and token calls (tokens per call) carried."""

    __slots__ = ("events", "latency", "tokens")

    def __init__(self) -> None:
        self.events = [0, 0, 0, 0]
        self.latency = Distribution()
        self.tokens = Distribution()


class _Window:
    """One endpoint's events over the sliding window, every kind in one ring of seconds (one
    slot lookup per recording call, however many kinds it counts). ``key`` is the endpoint's
    label tuple, the key of its exported series."""

    __slots__ = ("key", "ring", "seen")

    def __init__(self, endpoint: str, window_seconds: float) -> None:
        self.key = (endpoint,)
        self.ring: Ring[_Second] = Ring(window_seconds, 1.0, _Second)
        self.seen = 0  # a bit per kind this endpoint has had an event of

    def stats(self, now: float, kind: int, grid: tuple[float, ...]) -> dict[str, float]:
        """Rate and avg/min/max/p50/p90/p99 of one kind over the window."""
        slots, covered = self.ring.recent(now)
        values = Distribution()
        if kind == _RESPONSES or kind == _TOKENS:
            for slot in slots:
                values.merge(slot.latency if kind == _RESPONSES else slot.tokens)
        events = sum(slot.events[kind] for slot in slots)
        out = {"rate": (values.sum if kind == _TOKENS else events) / covered}
        if values.count:
            out.update(avg=values.mean, min=values.min, max=values.max)
            out.update({name: values.quantile(q, grid) for name, q in _STAT_QUANTILES})
        else:
            out.update(avg=0.0, min=0.0, max=0.0, p50=0.0, p90=0.0, p99=0.0)
        return out


class MetricsTracker(Tracker):
    """FakeAI's ``MetricsTracker``: the per-endpoint view (request, response, token, error and
    stream rates over a sliding window, latency percentiles), exported as ``fakeai_endpoint_*``."""

    owner = "endpoints"

    def __init__(self, window_seconds: float = 60.0, *, max_active_streams: int = 10000,
                 **kwargs: Any) -> None:
        v.positive("window_seconds", window_seconds, v.MAX_SECONDS)
        v.count("max_active_streams", max_active_streams)
        super().__init__(**kwargs)
        self.window_seconds = window_seconds
        self.max_active_streams = max_active_streams
        self._windows: dict[str, _Window] = {}  # by endpoint label
        #: request paths as given (checked) -> their endpoint's window (``_path``)
        self._paths: dict[object, _Window] = {}
        #: per kind, the endpoints that have had an event of it, in the order of their first
        self._listed: list[dict[str, None]] = [{} for _ in KINDS]
        self._requests = self._instrument(c.ENDPOINT_REQUESTS)
        self._latency: Histogram = self._instrument(c.ENDPOINT_LATENCY)
        self._tokens = self._instrument(c.ENDPOINT_TOKENS)
        self._errors = self._instrument(c.ENDPOINT_ERRORS)
        self._streams_total = self._instrument(c.ENDPOINT_STREAMS)
        self._streams_active = self._instrument(c.ENDPOINT_STREAMS_ACTIVE)
        #: streams opened by ``start_stream``; those ``Telemetry`` opens live in its streaming
        #: tracker, and this view only counts them (``_stream_opened``/``_stream_closed``)
        self._streams: dict[str, OpenStream] = {}
        self._ttft = Histogram(c.TTFT)  # in-process only
        self._tps = Histogram(c.TPS)  # in-process only
        self._timer_ids = itertools.count(1)
        #: endpoint -> timer id -> start, at most MAX_TIMERS per endpoint (oldest dropped)
        self._timers: dict[str, OrderedDict[int, float]] = {}
        self._first_request: float | None = None

    def _path(self, endpoint: object) -> _Window:
        """The window of a request path as given, checked and resolved; kept in ``_paths`` for
        the next call with that path unless a cap folded it (a folded value counts its overflow
        on each call)."""
        label = self.limits.endpoint(v.label("endpoint", endpoint))
        w = self._window(label)
        if label != c.OTHER and len(self._paths) < 10_000:
            self._paths[endpoint] = w
        return w

    def _window(self, endpoint: str) -> _Window:
        """The window of a resolved endpoint label, made on first use."""
        w = self._windows.get(endpoint)
        if w is None:  # setdefault: of two threads making it, both keep the first
            w = self._windows.setdefault(endpoint, _Window(endpoint, self.window_seconds))
        return w

    def _second(self, w: _Window, now: float, kinds: int) -> _Second:
        """The running second of an endpoint's window, about to count events of ``kinds``
        (bits); call under the lock."""
        if w.seen & kinds != kinds:
            self._list(w, kinds)
        ring = w.ring
        if ring.running_from <= now < ring.running_until:  # Ring.slot's common case, inline
            return ring.running
        return ring.slot(now)

    def _list(self, w: _Window, kinds: int) -> None:
        """A first event of some of ``kinds`` at this endpoint: listed from now on."""
        for kind, listed in enumerate(self._listed):
            if kinds >> kind & 1 and not w.seen >> kind & 1:
                listed[w.key[0]] = None
        w.seen |= kinds

    def _grid(self, kind: int) -> tuple[float, ...]:
        return self._latency.grid if kind == _RESPONSES else _PLAIN_GRID

    # --- requests ----------------------------------------------------------------------------
    # A public call looks its endpoint up as given (``_paths``): a path found there was checked
    # and resolved before. Anything else, and a value outside the common case, gets the full
    # checks of validation.py, which raise the same error they always did (or accept and
    # convert), before any state changes.

    def track_request(self, endpoint: str) -> None:
        try:
            w = self._paths.get(endpoint)
        except TypeError:  # unhashable: not a label, the checks say so
            w = None
        self._count(w or self._path(endpoint), _REQUESTS, self._requests)

    def track_error(self, endpoint: str) -> None:
        try:
            w = self._paths.get(endpoint)
        except TypeError:  # unhashable: not a label, the checks say so
            w = None
        self._count(w or self._path(endpoint), _ERRORS, self._errors)

    def _count(self, w: _Window, kind: int, counter: Counter) -> None:
        """An event that carries no value (a request, an error) at an endpoint."""
        now = self._clock()
        lock = self._lock
        lock.acquire()  # not `with`: see Tracker
        try:
            self._event_in(self._second(w, now, 1 << kind), kind, counter, w.key, now)
        finally:
            lock.release()

    def _count_label(self, kind: str, endpoint: str) -> None:
        """``_count`` of a kind by name (``KINDS``: a request or an error) at a resolved
        endpoint label."""
        if kind == "errors":
            self._count(self._window(endpoint), _ERRORS, self._errors)
        else:
            self._count(self._window(endpoint), _REQUESTS, self._requests)

    def _event_in(self, second: _Second, kind: int, counter: Counter, key: tuple[str],
                  now: float) -> None:
        second.events[kind] += 1
        counter.inc(key)
        if kind == _REQUESTS and self._first_request is None:
            self._first_request = now

    def track_response(self, endpoint: str, latency: float | None = None) -> None:
        """A response; ``latency`` in seconds (None: counted, no latency)."""
        try:
            w = self._paths.get(endpoint)
        except TypeError:  # unhashable: not a label, the checks say so
            w = None
        if not (latency is None or type(latency) is float and 0.0 <= latency <= v.MAX_SECONDS):
            if w is None:
                v.label("endpoint", endpoint)
            latency = v.seconds("latency", latency)
        if w is None:
            w = self._path(endpoint)
        now = self._clock()
        lock = self._lock
        lock.acquire()  # not `with`: see Tracker
        try:
            self._response_in(self._second(w, now, 1 << _RESPONSES), w.key, latency)
        finally:
            lock.release()

    def _response(self, endpoint: str, now: float, latency: float | None) -> None:
        """A response at a resolved endpoint label; call under the lock."""
        w = self._window(endpoint)
        self._response_in(self._second(w, now, 1 << _RESPONSES), w.key, latency)

    def _response_in(self, second: _Second, key: tuple[str], latency: float | None) -> None:
        second.events[_RESPONSES] += 1
        if latency is not None:
            second.latency.add(bisect_left(self._latency.grid, latency), latency)
            self._latency.observe(key, latency)

    def track_tokens(self, endpoint: str, count: int) -> None:
        try:
            w = self._paths.get(endpoint)
        except TypeError:  # unhashable: not a label, the checks say so
            w = None
        if not (type(count) is int and 0 <= count <= v.MAX_TOKENS):
            if w is None:
                v.label("endpoint", endpoint)
            v.tokens("count", count)
        self._add_tokens(w or self._path(endpoint), count)

    def _count_tokens(self, endpoint: str, count: int) -> None:
        """``track_tokens`` with a checked count and a resolved endpoint label."""
        self._add_tokens(self._window(endpoint), count)

    def _add_tokens(self, w: _Window, count: int) -> None:
        now = self._clock()
        lock = self._lock
        lock.acquire()  # not `with`: see Tracker
        try:
            self._tokens_in(self._second(w, now, 1 << _TOKENS), w.key, count)
        finally:
            lock.release()

    def _tokens_in(self, second: _Second, key: tuple[str], count: int) -> None:
        """A call that carried ``count`` tokens; call under the lock."""
        value = float(count)
        second.events[_TOKENS] += 1
        second.tokens.add(bisect_left(_PLAIN_GRID, value), value)
        self._tokens.inc(key, count)

    def _record_request(self, endpoint: str, latency: float, tokens: int) -> None:
        """A finished request as ``track_request``, ``track_response`` and ``track_tokens``
        record it, under one lock and one clock read: ``Telemetry``'s path, which has checked
        the values and resolved the endpoint label."""
        w = self._window(endpoint)
        key = w.key
        now = self._clock()
        lock = self._lock
        lock.acquire()  # not `with`: see Tracker
        try:
            second = self._second(w, now, _REQUEST_KINDS)
            self._event_in(second, _REQUESTS, self._requests, key, now)
            self._response_in(second, key, latency)
            self._tokens_in(second, key, tokens)
        finally:
            lock.release()

    # --- request timers (FakeAI's start/end pair) -----------------------------------------------

    def start_request_timer(self, endpoint: str) -> int:
        """Start timing a request; returns its id for ``end_request_timer``.

        At most ``MAX_TIMERS`` timers per endpoint are open; starting more forgets the oldest.
        """
        v.label("endpoint", endpoint)
        endpoint = self.limits.endpoint(endpoint)
        now = self._clock()
        with self._lock:
            request_id = next(self._timer_ids)
            timers = self._timers.get(endpoint)
            if timers is None:
                timers = self._timers[endpoint] = OrderedDict()
            timers[request_id] = now
            if len(timers) > MAX_TIMERS:
                timers.popitem(last=False)
        return request_id

    def end_request_timer(self, endpoint: str, request_id: int) -> float:
        """Record the response of a timed request and return its latency in seconds.

        The timer ends here: an unknown or already ended id records a response without a
        latency and returns 0.0.
        """
        v.label("endpoint", endpoint)
        if isinstance(request_id, bool) or not isinstance(request_id, int):
            raise v.InvalidMetricInput(
                f"request_id must be an int from start_request_timer, "
                f"got {type(request_id).__name__}")
        endpoint = self.limits.endpoint(endpoint)
        now = self._clock()
        with self._lock:
            timers = self._timers.get(endpoint)
            start = None if timers is None else timers.pop(request_id, None)
            latency = None if start is None else max(0.0, now - start)
            self._response(endpoint, now, latency)
        return 0.0 if latency is None else latency

    # --- streams -----------------------------------------------------------------------------

    def start_stream(self, stream_id: str, endpoint: str, *,
                     started_at: float | None = None) -> bool:
        """Open a stream; False when ignored (a duplicate id, or ``max_active_streams`` open).

        ``started_at`` (this tracker's clock) backdates the start to the request's arrival.
        """
        v.label("stream_id", stream_id)
        v.label("endpoint", endpoint)
        v.optional(v.non_negative, "started_at", started_at)
        endpoint = self.limits.endpoint(endpoint)
        now = self._clock()
        if started_at is not None:
            now = min(now, started_at)
        with self._lock:
            if stream_id in self._streams or len(self._streams) >= self.max_active_streams:
                log.debug("start_stream ignored: duplicate id or at capacity")
                return False
            self._streams[stream_id] = OpenStream((endpoint,), now)
            self._streams_active.inc((endpoint,))
        return True

    def _stream_opened(self, endpoint: str) -> None:
        """A stream ``Telemetry`` opened: the streaming tracker holds its state (one open-stream
        table), this view only counts it active under its resolved endpoint label."""
        lock = self._lock
        lock.acquire()  # not `with`: see Tracker
        try:
            self._streams_active.inc((endpoint,))
        finally:
            lock.release()

    def track_stream_first_token(self, stream_id: str) -> None:
        self.track_stream_token(stream_id)

    def track_stream_token(self, stream_id: str) -> None:
        """A token; the first one a stream sees sets its TTFT. Unknown ids are ignored."""
        now = self._clock()
        lock = self._lock
        lock.acquire()  # not `with`: see Tracker
        try:
            try:
                s = self._streams.get(stream_id)
            except TypeError:  # unhashable: no stream has that id
                return
            if s is None:
                return
            if s.first is None:
                s.first = now
            s.last = now
            s.tokens += 1
        finally:
            lock.release()

    def complete_stream(self, stream_id: str, endpoint: str | None = None, *,
                        tokens: int | None = None, ttft_s: float | None = None) -> None:
        """Finish a stream. ``tokens`` and ``ttft_s`` tell what a caller counted itself instead
        of calling ``track_stream_token`` per token. ``endpoint`` is FakeAI's argument: checked,
        and the endpoint given at start is used."""
        v.optional(v.label, "endpoint", endpoint)
        v.optional(v.tokens, "tokens", tokens)
        v.optional(v.seconds, "ttft_s", ttft_s)
        self._finish(stream_id, c.COMPLETED, tokens, ttft_s)

    def fail_stream(self, stream_id: str, endpoint: str | None = None,
                    error_message: str = "") -> None:
        v.optional(v.label, "endpoint", endpoint)
        v.text("error_message", error_message)
        self._finish(stream_id, c.FAILED)

    def _finish(self, stream_id: str, outcome: str, tokens: int | None = None,
                ttft_s: float | None = None) -> None:
        """A stream this view opened (``start_stream``) ends."""
        now = self._clock()
        with self._lock:
            try:
                s = self._streams.pop(stream_id, None)
            except TypeError:  # unhashable: no stream has that id
                return
            if s is None:
                return
            if ttft_s is None and s.first is not None:
                ttft_s = s.first - s.start
            self._closed(s.key[0], outcome, now, now - s.start,
                         s.tokens if tokens is None else tokens, ttft_s)

    def _stream_closed(self, endpoint: str, outcome: str, duration_s: float | None,
                       tokens: int = 0, ttft_s: float | None = None) -> None:
        """A stream ``Telemetry`` opened (``_stream_opened``) ends, as the streaming tracker
        measured it; ``duration_s`` None (that tracker no longer held it): no latency."""
        now = self._clock()
        lock = self._lock
        lock.acquire()  # not `with`: see Tracker
        try:
            self._closed(endpoint, outcome, now, duration_s, tokens, ttft_s)
        finally:
            lock.release()

    def _closed(self, endpoint: str, outcome: str, now: float, duration_s: float | None,
                tokens: int, ttft_s: float | None) -> None:
        """Record a finished stream: no longer active, a response (completed) or an error
        (failed); call under the lock."""
        key = (endpoint,)
        self._streams_active.inc(key, -1)
        self._streams_total.inc((endpoint, outcome))
        if outcome == c.FAILED:
            w = self._window(endpoint)
            self._event_in(self._second(w, now, 1 << _ERRORS), _ERRORS, self._errors, w.key, now)
            return
        self._response(endpoint, now, duration_s)
        if ttft_s is not None:
            self._ttft.observe((), ttft_s)
        if tokens and duration_s is not None and duration_s > 0:
            self._tps.observe((), tokens / duration_s)

    def get_active_streams(self) -> int:
        """Streams open in this view: its own and those ``Telemetry`` opened (the gauge)."""
        with self._lock:
            return self._active_count()

    def _active_count(self) -> int:
        return int(sum(self._streams_active.values.values()))

    def _finished_count(self, outcome: str) -> int:
        return int(sum(n for (_, o), n in self._streams_total.values.items() if o == outcome))

    # --- reading -----------------------------------------------------------------------------

    def get_streaming_stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "active_streams": self._active_count(),
                "completed_streams": self._finished_count(c.COMPLETED),
                "failed_streams": self._finished_count(c.FAILED),
                "ttft": _summary(self._ttft),
                "tokens_per_second": _summary(self._tps),
            }

    def get_metrics(self) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            out: dict[str, Any] = {}
            for index, kind in enumerate(KINDS):
                grid = self._grid(index)
                out[kind] = {ep: self._windows[ep].stats(now, index, grid)
                             for ep in self._listed[index]}
        out["streaming_stats"] = self.get_streaming_stats()
        return out


    def get_csv_metrics(self) -> str:
        """FakeAI's CSV: one row per kind and endpoint (error rows only when the rate is > 0);
        the latency columns are filled on response rows only. CRLF line ends (the csv module's)."""
        metrics = self.get_metrics()
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["metric_type", "endpoint", "rate", *CSV_LATENCY_COLUMNS])
        for kind in KINDS:
            for endpoint, st in metrics[kind].items():
                if kind == "errors" and st["rate"] <= 0:
                    continue
                latency = [st[k] if kind == "responses" else 0.0 for k in _LATENCY_STATS]
                writer.writerow([kind, endpoint, st["rate"], *latency])
        return out.getvalue()

    def get_detailed_health(self) -> dict[str, Any]:
        """FakeAI's health view: ``unhealthy`` above 10 % errors per request, ``degraded``
        above 5 %, else ``healthy``; rates over the window, latencies of responses."""
        metrics = self.get_metrics()
        now = self._clock()
        requests = sum(st["rate"] for st in metrics["requests"].values())
        errors = sum(st["rate"] for st in metrics["errors"].values())
        pct = errors / requests * 100 if requests > 0 else 0
        status = "unhealthy" if pct > 10 else "degraded" if pct > 5 else "healthy"
        averages = [st["avg"] for st in metrics["responses"].values() if st["avg"] > 0]
        with self._lock:
            first, active = self._first_request, self._active_count()
        return {
            "status": status,
            "timestamp": time.time(),
            "uptime_seconds": 0.0 if first is None else now - first,
            "metrics_summary": {
                "total_requests_per_second": requests,
                "total_errors_per_second": errors,
                "error_rate_percentage": round(pct, 2),
                "average_latency_seconds": round(sum(averages) / len(averages), 3)
                if averages else 0,
                "active_streams": active,
            },
            "endpoints": {
                endpoint: {"requests_per_second": st["rate"],
                           "latency_p50_ms": round(st["p50"] * 1000, 2),
                           "latency_p99_ms": round(st["p99"] * 1000, 2)}
                for endpoint, st in metrics["responses"].items() if st["rate"] > 0
            },
        }

    def shutdown(self) -> None:
        """FakeAI's call: this tracker starts no thread, so there is nothing to stop; data and
        recording are unaffected."""


def _summary(hist: Histogram) -> dict[str, float]:
    d = hist.get(())
    if d is None:
        return {}
    out = {"avg": d.mean, "min": d.min, "max": d.max}
    out.update({name: hist.quantile(d, q) for name, q in _STAT_QUANTILES})
    return out
