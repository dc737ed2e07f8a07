"""StreamingMetricsTracker: TTFT, inter-token latency, TPOT and tokens/s of streamed completions.

Per token it does one clock read, one dict lookup and one histogram add under the tracker's lock;
an open stream is a handful of numbers (``OpenStream``), whatever its length.

Calls that name a stream this tracker does not hold (a token, completion or failure for an unknown
id, a second ``start_stream`` for an open id, a start beyond ``max_active_streams``) never raise,
since they come from a server's request path: they are ignored and counted in
``fakeai_stream_events_dropped_total{event, reason}``.

In-process statistics (``get_metrics``) cover the tracker's life since construction or ``reset``
and come from the exported histograms' own counts; windowed views are Prometheus' job (``rate``
over a range). ``aggregation_window_seconds`` is kept for FakeAI compatibility and reported back.
Failed streams count in TTFT and ITL (their tokens were sent) but not in TPOT or tokens/s.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from . import catalog as c
from . import validation as v
from .instruments import Distribution, Histogram
from .keys import clip_message
from .multiprocess.mirrors import MirroredHistogram
from .open_stream import OpenStream
from .tracker import Tracker

log = logging.getLogger(__name__)


#: A finished stream kept for ``get_stream_details``: (stream, end, outcome, finish_reason,
#: error_message). A plain tuple: made on every finish, a NamedTuple's constructor costs more.
_Finished = tuple[OpenStream, float, str, "str | None", "str | None"]


class StreamSummary(NamedTuple):
    """What ``complete_stream`` / ``fail_stream`` return: enough for a caller to bill the stream."""

    model: str
    prompt_tokens: int
    tokens: int
    duration_s: float
    ttft_s: float | None
    tpot_s: float | None


@dataclass
class StreamingAggregateMetrics:
    """FakeAI's aggregate shape; latencies in milliseconds."""

    total_streams: int = 0
    active_streams: int = 0
    completed_streams: int = 0
    failed_streams: int = 0
    total_tokens_generated: int = 0
    total_bytes_sent: int = 0
    avg_tokens_per_second: float = 0.0
    p50_tokens_per_second: float = 0.0
    p95_tokens_per_second: float = 0.0
    p99_tokens_per_second: float = 0.0
    avg_ttft: float = 0.0
    p50_ttft: float = 0.0
    p95_ttft: float = 0.0
    p99_ttft: float = 0.0
    min_ttft: float = 0.0
    max_ttft: float = 0.0
    avg_itl: float = 0.0
    p50_itl: float = 0.0
    p95_itl: float = 0.0
    p99_itl: float = 0.0
    avg_tpot: float = 0.0
    p50_tpot: float = 0.0
    p95_tpot: float = 0.0
    p99_tpot: float = 0.0
    avg_duration: float = 0.0
    p50_duration: float = 0.0
    p95_duration: float = 0.0
    p99_duration: float = 0.0
    total_backpressure_events: int = 0
    success_rate: float = 0.0
    aggregation_window_seconds: float = 0.0
    streams_by_model: dict[str, int] = field(default_factory=dict)
    tokens_by_model: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """FakeAI's JSON shape (latencies grouped, 2 decimals; success rate 4), plus ``tpot``
        and ``aggregation_window_seconds``."""
        def group(name: str, stats: tuple[str, ...] = ("avg", "p50", "p95", "p99")
                  ) -> dict[str, float]:
            return {stat: round(getattr(self, f"{stat}_{name}"), 2) for stat in stats}

        return {
            "total_streams": self.total_streams, "active_streams": self.active_streams,
            "completed_streams": self.completed_streams, "failed_streams": self.failed_streams,
            "total_tokens_generated": self.total_tokens_generated,
            "total_bytes_sent": self.total_bytes_sent,
            **{f"{stat}_tokens_per_second": round(getattr(self, f"{stat}_tokens_per_second"), 2)
               for stat in ("avg", "p50", "p95", "p99")},
            "ttft": group("ttft", ("avg", "p50", "p95", "p99", "min", "max")),
            "itl": group("itl"), "tpot": group("tpot"), "duration": group("duration"),
            "total_backpressure_events": self.total_backpressure_events,
            "success_rate": round(self.success_rate, 4),
            "aggregation_window_seconds": self.aggregation_window_seconds,
            "streams_by_model": dict(self.streams_by_model),
            "tokens_by_model": dict(self.tokens_by_model),
        }


class StreamingMetricsTracker(Tracker):
    """FakeAI's ``StreamingMetricsTracker``: per-stream TTFT, inter-token latency, TPOT and tokens
    per second, exported as histograms, with FakeAI's per-stream details and aggregates."""

    owner = "streaming"

    def __init__(self, max_active_streams: int = 10000, max_completed_streams: int = 1000,
                 aggregation_window_seconds: int = 300, **kwargs: Any) -> None:
        v.count("max_active_streams", max_active_streams)
        v.count("max_completed_streams", max_completed_streams)
        v.positive("aggregation_window_seconds", aggregation_window_seconds, v.MAX_SECONDS)
        super().__init__(**kwargs)
        self.max_active_streams = max_active_streams
        self.max_completed_streams = max_completed_streams
        self.aggregation_window_seconds = aggregation_window_seconds
        self._streams: dict[object, OpenStream] = {}  # looked up by any id, holds str ids
        self._ttft: Histogram = self._instrument(c.TTFT)
        self._itl: Histogram = self._instrument(c.ITL)
        self._itl_grid = self._itl.grid
        self._tpot: Histogram = self._instrument(c.TPOT)
        self._tps: Histogram = self._instrument(c.TPS)
        self._active = self._instrument(c.STREAMS_ACTIVE)
        self._finished = self._instrument(c.STREAMS)
        self._bytes = self._instrument(c.STREAM_BYTES)
        self._dropped = self._instrument(c.STREAM_EVENTS_DROPPED)
        self._durations = Histogram(c.REQUEST_DURATION)  # in-process only: avg/p50 duration
        self._tokens_by_model: dict[str, int] = {}
        #: the last ``max_completed_streams`` finished streams' details, oldest first
        self._retained: OrderedDict[str, _Finished] = OrderedDict()
        self._backpressure = 0  # backpressure events since construction or reset

    # --- recording ---------------------------------------------------------------------------

    def start_stream(self, stream_id: str, model: str, prompt_tokens: int = 0,
                     temperature: float | None = None, max_tokens: int | None = None,
                     client_id: str | None = None, *, started_at: float | None = None) -> bool:
        """Open a stream; False when it was ignored (a duplicate id, or at capacity).

        ``started_at`` (this tracker's clock) backdates the start to when the request arrived,
        for a caller that opens the stream only once the response begins.
        """
        v.label("stream_id", stream_id)
        v.label("model", model)
        if not (type(prompt_tokens) is int and 0 <= prompt_tokens <= v.MAX_TOKENS):
            v.tokens("prompt_tokens", prompt_tokens)
        # the optional ones, left out in the common case: no check called for them
        if temperature is not None:
            v.non_negative("temperature", temperature)
        if max_tokens is not None:
            v.tokens("max_tokens", max_tokens)
        if client_id is not None:
            v.label("client_id", client_id)
        if started_at is not None:
            v.non_negative("started_at", started_at)
        return self._start_stream(stream_id, model, prompt_tokens, started_at)

    def _start_stream(self, stream_id: str, model: str, prompt_tokens: int,
                      started_at: float | None) -> bool:
        """``start_stream`` with checked arguments."""
        key = (self.limits.model(model),)
        now = self._clock()
        if started_at is not None:
            now = min(now, started_at)
        with self._lock:
            if stream_id in self._streams:
                self._drop("start", "duplicate_stream")
                return False
            if len(self._streams) >= self.max_active_streams:
                self._drop("start", "capacity")
                return False
            self._streams[stream_id] = OpenStream(key, now, prompt_tokens)
            self._active.inc(key)
        return True

    def record_token(self, stream_id: str, token: str = "",
                     chunk_size_bytes: int | None = 0) -> None:
        """One token of an open stream. ``token`` (FakeAI's argument, the text) is not kept or
        looked at; ``chunk_size_bytes`` adds to the bytes sent (0 or None: no bytes counted).
        An id this tracker does not hold, unhashable ones included, is dropped and counted."""
        if chunk_size_bytes and (chunk_size_bytes.__class__ is not int
                                 or not 0 <= chunk_size_bytes <= v.MAX_BYTES):
            v.integer("chunk_size_bytes", chunk_size_bytes, v.MAX_BYTES)
        clock = self._clock  # a local, then called: quicker than a method-style self._clock()
        now = clock()
        lock = self._lock
        lock.acquire()  # not `with`: see Tracker
        try:
            try:  # a subscript, not .get(): no method call per token
                s = self._streams[stream_id]
            except (KeyError, TypeError):  # unknown, or unhashable: no stream has that id
                s = None
            if s is not None and (itl := s.itl) is not None:
                # The common case, a gap of a stream whose ITL series is known: Distribution.add
                # inlined (the one copy of it; a call here costs a fifth of the per-token budget).
                gap = now - s.last
                itl.bins[bisect_left(self._itl_grid, gap)] += 1
                itl.sum += gap
                if gap < itl.min:
                    itl.min = gap
                if gap > itl.max:
                    itl.max = gap
                s.last = now
                s.tokens += 1
                if chunk_size_bytes:
                    self._bytes.inc(s.key, chunk_size_bytes)
                if s.mirror is not None:  # multiprocess mode: prometheus_client's file too
                    s.mirror.observe(gap)
                return
            self._token(s, now, chunk_size_bytes)
        finally:
            lock.release()

    def _token(self, s: OpenStream | None, now: float, chunk_size_bytes: int | None) -> None:
        """``record_token`` for an unknown stream, a first token or a first gap. Call under the
        lock."""
        if s is None:
            self._drop("token", "unknown_stream")
            return
        if s.first is None:
            s.first = now
            if s.given_ttft is None:  # else record_first_token_time observed it
                self._ttft.observe(s.key, now - s.start)
        else:  # the first gap: observe() makes the series, which later gaps then update in place
            itl = self._itl
            itl.observe(s.key, now - s.last)
            if itl.observed_in_place:
                s.itl = itl.series[s.key]
            elif isinstance(itl, MirroredHistogram):  # and its prometheus_client child
                s.itl, s.mirror = itl.series[s.key], itl.mirror_of(s.key)
        s.last = now
        s.tokens += 1
        if chunk_size_bytes:
            self._bytes.inc(s.key, chunk_size_bytes)

    def record_first_token_time(self, stream_id: str, ttft_ms: float) -> None:
        """Set an open stream's TTFT from the caller's measure, if no token set it yet.

        Later ``record_token`` calls keep it (the first of them starts the inter-token gaps).
        An unknown or finished stream is ignored and counted as dropped.
        """
        seconds = v.milliseconds("ttft_ms", ttft_ms) / 1000.0
        with self._lock:
            s = self._open(stream_id)
            if s is None:
                self._drop("first_token", "unknown_stream")
                return
            if s.first is not None or s.given_ttft is not None:
                return
            s.given_ttft = seconds
            self._ttft.observe(s.key, seconds)

    def _open(self, stream_id: object) -> OpenStream | None:
        """The open stream of that id; None for any other id, unhashable ones included."""
        try:
            return self._streams.get(stream_id)
        except TypeError:
            return None

    def record_backpressure(self, stream_id: str) -> None:
        """One backpressure event of an open stream (unknown ids: counted as dropped)."""
        with self._lock:
            s = self._open(stream_id)
            if s is None:
                self._drop("backpressure", "unknown_stream")
                return
            s.backpressure += 1
            self._backpressure += 1

    def complete_stream(self, stream_id: str, finish_reason: str = "stop",
                        client_id: str | None = None) -> StreamSummary | None:
        v.label("finish_reason", finish_reason)
        if client_id is not None:
            v.label("client_id", client_id)
        return self._finish(stream_id, c.COMPLETED, finish_reason, None)

    def fail_stream(self, stream_id: str, error_message: str = "") -> StreamSummary | None:
        error_message = v.text("error_message", error_message)
        return self._finish(stream_id, c.FAILED, None, clip_message(error_message))

    def _finish(self, stream_id: str, outcome: str, finish_reason: str | None,
                error_message: str | None) -> StreamSummary | None:
        now = self._clock()
        with self._lock:
            try:
                s = self._streams.pop(stream_id, None)
            except TypeError:  # unhashable: no stream has that id
                s = None
            if s is None:
                self._drop(outcome, "unknown_stream")
                return None
            self._retain(stream_id, s, now, outcome, finish_reason, error_message)
            key = s.key
            self._active.inc(key, -1)
            self._finished.inc((key[0], outcome))
            tpot = s.tpot()
            if outcome == c.COMPLETED:
                tps = s.tokens_per_second(now)
                if tps is not None:
                    self._tps.observe(key, tps)
                if tpot is not None:
                    self._tpot.observe(key, tpot)
            self._durations.observe(key, now - s.start)
            model = key[0]
            self._tokens_by_model[model] = self._tokens_by_model.get(model, 0) + s.tokens
        ttft = s.ttft()
        if self._otel is not None and outcome == c.COMPLETED:
            self._otel.completed(model, ttft, tpot)
        return StreamSummary(model, s.prompt_tokens, s.tokens, now - s.start, ttft, tpot)

    def _retain(self, stream_id: str, s: OpenStream, now: float, outcome: str,
                finish_reason: str | None, error_message: str | None) -> None:
        """Keep a finished stream for ``get_stream_details`` (its view is built when asked:
        most are never asked for); call under the lock."""
        self._retained.pop(stream_id, None)
        self._retained[stream_id] = (s, now, outcome, finish_reason, error_message)
        while len(self._retained) > self.max_completed_streams:
            self._retained.popitem(last=False)

    def get_stream_details(self, stream_id: str) -> dict[str, Any] | None:
        """One stream: an open one, else the newest finished one kept; None if neither."""
        now = self._clock()
        with self._lock:
            s = self._streams.get(stream_id)
            if s is not None:
                return {"stream_id": stream_id, "model": s.key[0], "status": "active",
                        **s.details(now)}
            done = self._retained.get(stream_id)
            if done is None:
                return None
            stream, end, outcome, finish_reason, error_message = done
            return {"stream_id": stream_id, "model": stream.key[0], "status": outcome,
                    **stream.details(end), "finish_reason": finish_reason,
                    "error_message": error_message}

    def _otel_instruments(self, meter: Any, provider_name: str) -> Any:
        from .otel import StreamingInstruments
        return StreamingInstruments(meter, provider_name, lambda: self._snapshot(c.STREAMS_ACTIVE))

    def drop(self, event: str, reason: str) -> None:
        """Count a stream call that was ignored upstream (e.g. by ``Telemetry``)."""
        v.label("event", event)
        v.label("reason", reason)
        with self._lock:
            self._drop(event, reason)

    def _drop(self, event: str, reason: str) -> None:
        self._dropped.inc((event, reason))
        log.debug("stream %s ignored: %s", event, reason)

    # --- reading -----------------------------------------------------------------------------

    def get_active_stream_count(self) -> int:
        return len(self._streams)

    def get_metrics(self) -> StreamingAggregateMetrics:
        with self._lock:
            finished = self._finished.values
            completed = sum(n for (_, o), n in finished.items() if o == c.COMPLETED)
            failed = sum(n for (_, o), n in finished.items() if o == c.FAILED)
            active = len(self._streams)
            total = completed + failed + active
            open_tokens: dict[str, int] = {}
            for s in self._streams.values():
                open_tokens[s.key[0]] = open_tokens.get(s.key[0], 0) + s.tokens
            tokens_by_model = dict(self._tokens_by_model)
            for model, n in open_tokens.items():
                tokens_by_model[model] = tokens_by_model.get(model, 0) + n
            streams_by_model: dict[str, int] = {}
            for (model, _), n in finished.items():
                streams_by_model[model] = streams_by_model.get(model, 0) + int(n)
            for s in self._streams.values():
                streams_by_model[s.key[0]] = streams_by_model.get(s.key[0], 0) + 1
            ttft, itl = self._ttft.merged(), self._itl.merged()
            tpot, tps = self._tpot.merged(), self._tps.merged()
            dur = self._durations.merged()
            m = StreamingAggregateMetrics(
                total_streams=total, active_streams=active, completed_streams=completed,
                failed_streams=failed, total_tokens_generated=sum(tokens_by_model.values()),
                total_bytes_sent=int(sum(self._bytes.values.values())),
                success_rate=completed / total if total else 0.0,
                total_backpressure_events=self._backpressure,
                aggregation_window_seconds=self.aggregation_window_seconds,
                streams_by_model=streams_by_model, tokens_by_model=tokens_by_model,
            )
            m.avg_tokens_per_second, m.p50_tokens_per_second, m.p95_tokens_per_second, \
                m.p99_tokens_per_second = _stats(self._tps, tps, 1.0)
            m.avg_ttft, m.p50_ttft, m.p95_ttft, m.p99_ttft = _stats(self._ttft, ttft, 1000.0)
            m.min_ttft = ttft.min * 1000.0 if ttft.count else 0.0
            m.max_ttft = ttft.max * 1000.0 if ttft.count else 0.0
            m.avg_itl, m.p50_itl, m.p95_itl, m.p99_itl = _stats(self._itl, itl, 1000.0)
            m.avg_tpot, m.p50_tpot, m.p95_tpot, m.p99_tpot = _stats(self._tpot, tpot, 1000.0)
            m.avg_duration, m.p50_duration, m.p95_duration, m.p99_duration = _stats(
                self._durations, dur, 1000.0)
        return m

    def reset(self) -> None:
        """Forget everything, open streams included; exported series start again from zero."""
        with self._lock:
            self._streams.clear()
            self._retained.clear()
            self._backpressure = 0
            self._tokens_by_model.clear()
            self._durations.clear()
            for inst in self._instruments.values():
                inst.clear()


def _stats(hist: Histogram, dist: Distribution, scale: float) -> tuple[float, float, float, float]:
    """avg, p50, p95, p99 of a merged distribution, scaled (1000 turns seconds into ms)."""
    return (dist.mean * scale, hist.quantile(dist, 0.50) * scale,
            hist.quantile(dist, 0.95) * scale, hist.quantile(dist, 0.99) * scale)
