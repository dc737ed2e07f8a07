"""ErrorMetricsTracker: request outcomes, error types and patterns, and the availability SLO.

It owns ``fakeai_requests_total{endpoint, model, outcome}``: every finished request is recorded
here exactly once, as a success or an error, which makes it the SLO's event count. Burn rates per
window are exported as gauges computed at scrape time from ten-second slots (no event lists).

``get_metrics`` counts are totals since construction or ``reset``; ``get_slo_status`` covers the
last ``window_seconds``. Error messages are grouped into patterns after normalisation (ids, UUIDs,
numbers, timestamps, hex, e-mails and keys replaced); records keep the API key and user only as
their ids, and their message is clipped and has the raw key, the user and credentials of known
shapes scrubbed (``clip_message``).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from typing import Any

from . import catalog as c
from . import validation as v
from .keys import KeyIds, clip_message, scrub_path
from .slo import SLOStatus, burn_rate
from .collector import _make
from .tracker import Tracker
from .windows import Ring

UNKNOWN_MODEL = c.UNKNOWN_MODEL
_SLOT_SECONDS = 10.0

_MAX_PATTERN = 200
# Each pattern can start only at the start of the run it matches (a lookbehind or \b), so a
# failed attempt costs that run once: linear in the message (bench/bench_messages.py).
_NORMALISERS = [(re.compile(p, flags), token) for p, flags, token in [
    (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I, "<UUID>"),
    (r"(?<![\w.+-])[\w.+-]+@[\w-]+\.[\w.-]+", 0, "<EMAIL>"),
    (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?", 0, "<TIME>"),
    (r"\b(?:req|chatcmpl|resp|call|run|msg|file|batch)[-_][\w-]+", 0, "<ID>"),
    (r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I, "<HEX>"),
    (r"\d+(?:\.\d+)?", 0, "<NUM>"),
]]


def normalize_message(message: str) -> str:
    """The message with variable parts replaced, so similar errors share one pattern."""
    return _normalize_stored(clip_message(message))


def _normalize_stored(message: str) -> str:
    """``normalize_message`` of a message already in its stored form (``clip_message``)."""
    for pattern, token in _NORMALISERS:
        message = pattern.sub(token, message)
    return message[:_MAX_PATTERN]


def fingerprint(error_type: str, endpoint: str, normalized: str) -> str:
    return hashlib.sha256(f"{error_type}:{endpoint}:{normalized}".encode()).hexdigest()[:16]


_FAKEAI_NORMALISERS = [(re.compile(p, flags), token) for p, flags, token in [
    (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I, "<UUID>"),
    (r"req-[a-zA-Z0-9]+", 0, "<REQUEST_ID>"),
    (r"0x[0-9a-fA-F]+", 0, "<ADDR>"),
    (r"\d+", 0, "<NUM>"),
]]


def fakeai_fingerprint(error_type: str, endpoint: str, message: str) -> str:
    """FakeAI's fingerprint of an error: 8 hex digits of sha256 of ``type:endpoint:message``,
    the message with UUIDs, ``req-`` ids, ``0x`` addresses and digit runs replaced, cut to 200."""
    for pattern, token in _FAKEAI_NORMALISERS:
        message = pattern.sub(token, message)
    return hashlib.sha256(f"{error_type}:{endpoint}:{message[:200]}".encode()).hexdigest()[:8]


@dataclass(frozen=True)
class ErrorRecord:
    """FakeAI's error record. Built without a ``fingerprint`` it gets FakeAI's
    (``fakeai_fingerprint``); the tracker's own records carry its pattern fingerprint."""

    timestamp: float
    endpoint: str
    status_code: int
    error_type: str
    error_message: str
    model: str | None = None
    api_key: str | None = None  # the key's id, never the key
    request_id: str | None = None
    user_id: str | None = None
    stack_trace: str | None = None
    fingerprint: str | None = None

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fakeai_fingerprint(
                self.error_type, self.endpoint, self.error_message))

    def to_dict(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "endpoint": self.endpoint,
                "status_code": self.status_code, "error_type": self.error_type,
                "error_message": self.error_message, "model": self.model,
                "api_key": self.api_key, "request_id": self.request_id,
                "user_id": self.user_id, "fingerprint": self.fingerprint}


@dataclass
class ErrorPattern:
    """A recurring error: one fingerprint of (error type, endpoint, message with its variable
    parts replaced), so a burst of the same failure is one row, not thousands."""

    fingerprint: str
    error_type: str
    endpoint: str
    normalized_message: str
    count: int
    first_seen: float
    last_seen: float
    affected_models: set[str] = field(default_factory=set)
    affected_users: set[str] = field(default_factory=set)  # user ids (hashed like keys)
    example_request_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """FakeAI's shape: the number of users, at most 5 example request ids."""
        return {"fingerprint": self.fingerprint, "error_type": self.error_type,
                "endpoint": self.endpoint, "normalized_message": self.normalized_message,
                "count": self.count, "first_seen": self.first_seen,
                "last_seen": self.last_seen, "affected_models": sorted(self.affected_models),
                "affected_users_count": len(self.affected_users),
                "example_request_ids": self.example_request_ids[:5]}


class ErrorMetricsTracker(Tracker):
    """FakeAI's ``ErrorMetricsTracker``: outcomes per endpoint and model (the availability SLO's
    events), error types, recurring patterns and recent errors with keys scrubbed, and the SLO's
    status and burn rates."""

    owner = "errors"
    default_clock = staticmethod(time.time)

    def __init__(self, max_recent_errors: int = 500, error_budget_slo: float = 0.999,
                 window_seconds: int = 300, pattern_threshold: int = 3, *,
                 slo_name: str = "availability", max_patterns: int = 1000,
                 key_ids: KeyIds | None = None, **kwargs: Any) -> None:
        v.ratio("error_budget_slo", error_budget_slo, high_closed=False)
        v.positive("window_seconds", window_seconds, v.MAX_SECONDS)
        v.count("max_recent_errors", max_recent_errors)
        v.count("pattern_threshold", pattern_threshold)
        v.label("slo_name", slo_name)
        v.count("max_patterns", max_patterns, minimum=1)
        if key_ids is not None and not isinstance(key_ids, KeyIds):
            raise v.InvalidMetricInput(f"key_ids must be a KeyIds, got {type(key_ids).__name__}")
        super().__init__(**kwargs)
        self.max_recent_errors = max_recent_errors
        self.error_budget_slo = error_budget_slo
        self.window_seconds = window_seconds
        self.pattern_threshold = pattern_threshold
        self.slo_name = slo_name
        self.max_patterns = max_patterns
        self.key_ids = key_ids or KeyIds()
        self._recent: deque[ErrorRecord] = deque(maxlen=max_recent_errors)
        #: least recently seen first, so a full table evicts in O(1)
        self._patterns: OrderedDict[str, ErrorPattern] = OrderedDict()
        longest = max(window_seconds, *c.BURN_RATE_WINDOWS.values())
        self._ring: Ring[list[int]] = Ring(longest, _SLOT_SECONDS, lambda: [0, 0])
        self._requests = self._instrument(c.REQUESTS)
        self._errors = self._instrument(c.ERRORS)
        self._objective = self._instrument(c.SLO_OBJECTIVE)
        self._burn = self._instrument(c.SLO_BURN_RATE)
        self._objective.set((slo_name,), error_budget_slo)
        self._shared: Any = None  # the fleet's counts per slot (share_slo)
        #: (endpoint, model) as given -> the series of a success there, for record_success
        self._success_series: dict[tuple[object, object], tuple[str, str, str]] = {}

    # --- recording ---------------------------------------------------------------------------

    def record_success(self, endpoint: str, model: str | None = None) -> None:
        try:  # an (endpoint, model) seen before: checked and resolved then
            key = self._success_series.get((endpoint, model))
        except TypeError:  # unhashable: not a label, the checks say so
            key = None
        self._record_success(key or self._success_key(endpoint, model))

    def _success_key(self, endpoint: object, model: object) -> tuple[str, str, str]:
        """The checked and resolved series of a success; kept for the next call with the same
        arguments unless a cap folded a label (a folded value counts its overflow per call)."""
        path = v.label("endpoint", endpoint)
        name = UNKNOWN_MODEL if model is None else v.label("model", model)
        limits = self.limits
        key = (limits.endpoint(path), limits.model(name), c.SUCCESS)
        if c.OTHER not in key and len(self._success_series) < 10_000:
            self._success_series[(endpoint, model)] = key
        return key

    def _record_success(self, key: tuple[str, str, str]) -> None:
        """``record_success`` of the resolved series ``(endpoint, model, "success")``."""
        now = self._clock()
        lock = self._lock
        lock.acquire()  # not `with`: see Tracker
        try:
            ring = self._ring
            # Ring.slot's common case inline: now in the running slot
            (ring.running if ring.running_from <= now < ring.running_until
             else ring.slot(now))[0] += 1
            self._requests.inc(key)
        finally:
            lock.release()

    def record_request(self, endpoint: str, model: str | None = None) -> None:
        """FakeAI's call, checked and otherwise ignored: ``record_success`` and ``record_error``
        count each request once (FakeAI counts it a second time here)."""
        v.label("endpoint", endpoint)
        v.optional(v.label, "model", model)

    def record_error(self, endpoint: str, status_code: int, error_type: str,
                     error_message: str = "", model: str | None = None,
                     api_key: str | None = None, request_id: str | None = None,
                     user_id: str | None = None, stack_trace: str | None = None) -> None:
        """One failed request: counted as a request and as an error, grouped into a pattern.

        The stored message is clipped to ``keys.MAX_MESSAGE`` characters, with the raw ``api_key``
        and ``user_id`` replaced by their ids and credentials of known shapes by ``<KEY>``.
        ``stack_trace`` is checked and not kept (FakeAI's argument).
        """
        v.label("endpoint", endpoint)
        v.label("error_type", error_type)
        v.status_code(status_code)
        error_message = v.text("error_message", error_message)
        for name, value in (("model", model), ("api_key", api_key),
                            ("request_id", request_id), ("user_id", user_id)):
            v.optional(v.label, name, value)
        v.optional(v.text, "stack_trace", stack_trace)
        key_ids = self.key_ids
        key_id = key_ids(api_key) if api_key is not None else None
        # callers pass keys as the user too: hashed like ModelMetricsTracker's users
        user = key_ids(user_id, "user_id") if user_id is not None else None
        limits = self.limits
        label = limits.endpoint(scrub_path(endpoint, api_key, user_id))
        model = None if model is None else limits.model(model)
        self._record_error(label, model, limits.error_type(error_type), status_code,
                           clip_message(key_ids.scrub(error_message, api_key, user_id)),
                           key_id, request_id, user)

    def _record_error(self, endpoint: str, model: str | None, error_type: str,
                      status_code: int, message: str, key_id: str | None,
                      request_id: str | None, user: str | None) -> None:
        """``record_error`` with checked values: ``endpoint``, ``model`` and ``error_type`` the
        resolved labels, ``message`` as stored (scrubbed and clipped: ``clip_message``),
        ``key_id`` and ``user`` the ids of the key and user."""
        normalized = _normalize_stored(message)
        fp = fingerprint(error_type, endpoint, normalized)
        now = self._clock()
        record = ErrorRecord(now, endpoint, status_code, error_type, message, model,
                             key_id, request_id, user, fingerprint=fp)
        with self._lock:
            slot = self._ring.slot(now)
            slot[0] += 1
            slot[1] += 1
            self._requests.inc((endpoint, model or UNKNOWN_MODEL, c.ERROR))
            self._errors.inc((endpoint, error_type, str(status_code)))
            self._recent.append(record)
            self._add_pattern(record, fp, normalized)

    def _otel_instruments(self, meter: Any, provider_name: str) -> Any:
        from .otel import ErrorInstruments

        def burn_rates() -> list[tuple[str, str, float]]:
            with self._lock:
                return [(self.slo_name, w, rate) for w, rate in self._burn_rates().items()]

        return ErrorInstruments(meter, provider_name, lambda: self._snapshot(c.REQUESTS),
                                lambda: self._snapshot(c.ERRORS), burn_rates)

    def _add_pattern(self, record: ErrorRecord, fp: str, normalized: str) -> None:
        p = self._patterns.get(fp)
        if p is not None:
            self._patterns.move_to_end(fp)
        else:
            if len(self._patterns) >= self.max_patterns:
                self._patterns.popitem(last=False)
            p = self._patterns[fp] = ErrorPattern(
                fp, record.error_type, record.endpoint, normalized, 0,
                record.timestamp, record.timestamp)
        p.count += 1
        p.last_seen = record.timestamp
        if record.model is not None and len(p.affected_models) < 100:
            p.affected_models.add(record.model)
        if record.user_id is not None and len(p.affected_users) < 100:
            p.affected_users.add(record.user_id)
        if record.request_id is not None and len(p.example_request_ids) < 10:
            p.example_request_ids.append(record.request_id)

    # --- reading -----------------------------------------------------------------------------

    def _totals(self) -> tuple[int, int, dict[str, list[int]], dict[str, int]]:
        """All-time requests, errors, per-endpoint [requests, errors], errors per model."""
        total = errors = 0
        by_endpoint: dict[str, list[int]] = {}
        by_model: dict[str, int] = {}
        for (endpoint, model, outcome), n in self._requests.values.items():
            n = int(n)
            ep = by_endpoint.setdefault(endpoint, [0, 0])
            total += n
            ep[0] += n
            if outcome == c.ERROR:
                errors += n
                ep[1] += n
                if model != UNKNOWN_MODEL:
                    by_model[model] = by_model.get(model, 0) + n
        return total, errors, by_endpoint, by_model

    def get_metrics(self) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            total, errors, by_endpoint, by_model = self._totals()
            windowed = [r for r in self._recent if r.timestamp >= now - self.window_seconds]
            patterns = len(self._patterns)
            recent = len(self._recent)
        return {
            "total_requests": total,
            "total_successes": total - errors,
            "total_errors": errors,
            # FakeAI's values: 6 decimals, and 0.0 for both before any request
            "error_rate": round(errors / total, 6) if total else 0.0,
            "success_rate": round((total - errors) / total, 6) if total else 0.0,
            "recent_errors_count": recent,
            "windowed_errors_count": len(windowed),
            "pattern_count": patterns,
            "top_error_types": _top(windowed, "error_type", "type"),
            "top_error_endpoints": _top(windowed, "endpoint", "endpoint"),
            "top_status_codes": _top(windowed, "status_code", "status_code"),
            "errors_by_endpoint": {ep: n[1] for ep, n in by_endpoint.items() if n[1]},
            "errors_by_model": by_model,
        }

    def get_slo_status(self) -> SLOStatus:
        """The SLO over the last ``window_seconds`` (to the ten-second slot).

        ``endpoint_error_rates`` alone is since construction or ``reset`` (FakeAI's field; the
        ring keeps no per-endpoint counts).
        """
        with self._lock:
            total, errors = self._window_counts(self.window_seconds)
            _, _, by_endpoint, _ = self._totals()
        rates = {ep: n[1] / n[0] for ep, n in by_endpoint.items() if n[0]}
        return SLOStatus.from_counts(self.error_budget_slo, self.window_seconds, total, errors,
                                     rates)

    def get_burn_rates(self) -> dict[str, float]:
        """Burn rate per exported window (5m, 30m, 1h, 6h), as the gauge reports it."""
        with self._lock:
            return self._burn_rates()

    def get_error_patterns(self, min_count: int | None = None,
                           recent_only: bool = True) -> list[ErrorPattern]:
        threshold = self.pattern_threshold if min_count is None else min_count
        since = self._clock() - self.window_seconds if recent_only else float("-inf")
        with self._lock:  # copies: the tracker's own patterns keep changing
            found = [replace(p, affected_models=set(p.affected_models),
                             affected_users=set(p.affected_users),
                             example_request_ids=list(p.example_request_ids))
                     for p in self._patterns.values()
                     if p.count >= threshold and p.last_seen >= since]
        return sorted(found, key=lambda p: p.count, reverse=True)

    def cleanup_old_patterns(self, age_seconds: int = 3600) -> int:
        """Forget patterns last seen more than ``age_seconds`` ago (all when <= 0); returns how
        many. Counters and recent errors are kept."""
        if isinstance(age_seconds, bool) or not isinstance(age_seconds, (int, float)) \
                or age_seconds != age_seconds:
            raise v.InvalidMetricInput(
                f"age_seconds must be a number, got {type(age_seconds).__name__}")
        cutoff = self._clock() - age_seconds
        with self._lock:
            old = [fp for fp, p in self._patterns.items()
                   if age_seconds <= 0 or p.last_seen < cutoff]
            for fp in old:
                del self._patterns[fp]
        return len(old)

    def get_recent_errors(self, limit: int = 50, endpoint: str | None = None,
                          error_type: str | None = None) -> list[ErrorRecord]:
        """Newest first."""
        with self._lock:
            records = list(self._recent)
        out = [r for r in reversed(records)
               if (endpoint is None or r.endpoint == endpoint)
               and (error_type is None or r.error_type == error_type)]
        return out[:limit]

    def reset(self) -> None:
        with self._lock:
            self._recent.clear()
            self._patterns.clear()
            self._ring.clear()
            self._requests.clear()
            self._errors.clear()

    def share_slo(self, store: Any) -> None:
        """Count the SLO over the fleet sharing ``store`` (a ``RedisBudgetStore``):
        ``get_slo_status``, ``get_burn_rates`` and the burn-rate gauge then include every
        process's requests (as of the store's last SLO sync), and the gauge is exported in
        multiprocess mode too (each worker exports the fleet's figure)."""
        if not callable(getattr(store, "share_slo", None)):
            raise v.InvalidMetricInput(f"store must be a shared budget store (RedisBudgetStore), "
                                       f"got {type(store).__name__}")
        if self.multiprocess:
            spec = replace(c.SLO_BURN_RATE, multiprocess_mode="livemostrecent")
            self._burn = self._instruments[spec.name] = _make(spec, None, self.namespace)

        def local() -> list[tuple[int, tuple[int, int]]]:
            with self._lock:
                return [(n, (slot[0], slot[1])) for n, slot in self._ring.held()]

        def on_sync() -> None:
            with self._lock:
                self._refresh()

        slots = math.ceil(self._ring.window / _SLOT_SECONDS) + 1
        self._shared = store.share_slo(self.slo_name, local, _SLOT_SECONDS, slots, on_sync)

    def _window_counts(self, seconds: float) -> tuple[int, int]:
        """(requests, errors) over the last ``seconds``; call under the lock."""
        now = self._clock()
        slots, _ = self._ring.recent(now, seconds)
        total, errors = sum(s[0] for s in slots), sum(s[1] for s in slots)
        if self._shared is not None:
            oldest, current = self._ring.epochs(now, seconds)
            for n, (t, e) in self._shared.others.items():
                if oldest <= n <= current:
                    total, errors = total + t, errors + e
        return total, errors

    def _burn_rates(self) -> dict[str, float]:
        """Burn rate per exported window; call under the lock."""
        rates = {}
        for window, seconds in c.BURN_RATE_WINDOWS.items():
            total, errors = self._window_counts(seconds)
            rates[window] = burn_rate(errors, total, self.error_budget_slo)
        return rates

    def _refresh(self) -> None:
        for window, rate in self._burn_rates().items():
            self._burn.set((self.slo_name, window), rate)


def _top(records: list[ErrorRecord], attr: str, name: str, n: int = 10) -> list[dict[str, Any]]:
    counts: dict[Any, int] = {}
    for r in records:
        value = getattr(r, attr)
        counts[value] = counts.get(value, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)[:n]
    return [{name: value, "count": count} for value, count in ranked]
