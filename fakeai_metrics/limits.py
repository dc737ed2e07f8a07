"""Label cardinality caps: one misbehaving client must not explode Prometheus.

Models, endpoints, API keys and error types come from clients. Each kind admits at most a set
number of distinct values; later new values are reported as ``__other__`` and counted in
``fakeai_label_overflow_total{label}``: once per folded value per request when the request comes
through ``Telemetry`` (or the middleware), however many trackers it passes, and once per call for
a direct tracker call. Endpoints are first normalised, so ``/v1/files/file-abc`` and
``/v1/files/file-xyz`` are one ``/v1/files/{id}``, and segments shaped like keys or tokens become
``{key}``. A budgeted key is always admitted.

One ``LabelLimits`` serves every tracker on a registry (trackers find the one already there), so
a model is admitted or folded the same way everywhere.
"""

from __future__ import annotations

import threading
from typing import Any, Iterable

from prometheus_client import CollectorRegistry

from . import catalog as c
from . import validation as v
from .routes import normalize_endpoint
from .collector import CatalogCollector

OTHER = c.OTHER

class LabelLimits(CatalogCollector):
    """The label caps of one registry: admits a client-chosen value (model, endpoint, key, error
    type) until its kind's cap, then reports ``__other__`` and counts the overflow."""

    owner = "limits"

    def __init__(self, *, models: int = 200, endpoints: int = 100, api_keys: int = 2000,
                 error_types: int = 100, **kwargs: Any) -> None:
        caps = {"model": v.count("models", models), "endpoint": v.count("endpoints", endpoints),
                "api_key": v.count("api_keys", api_keys),
                "error_type": v.count("error_types", error_types)}
        super().__init__(**kwargs)
        self.caps = caps
        self._admitted: dict[str, set[str]] = {kind: set() for kind in self.caps}
        self._endpoints: dict[str, str] = {}  # request path -> normalised endpoint
        self._overflow = self._instrument(c.LABEL_OVERFLOW)
        for kind in self.caps:  # a zero from the start, so rate() and alerts see the series
            self._overflow.inc((kind,), 0)
        self._admit_lock = threading.Lock()
        self._request = threading.local()  # .folded: what this thread's request folded so far

    def admit(self, kind: str, value: str, force: bool = False) -> str:
        """``value`` if admitted (now or before), else ``OTHER``, counting the overflow."""
        admitted = self._admitted[kind]
        if value in admitted:
            return value
        with self._admit_lock:
            if value in admitted or force or len(admitted) < self.caps[kind]:
                admitted.add(value)
                return value
        folded = getattr(self._request, "folded", None)
        if folded is not None:
            if (kind, value) in folded:
                return OTHER  # this request has counted it already
            folded.add((kind, value))
        with self._lock:
            self._overflow.inc((kind,))
        return OTHER

    def begin_request(self, folded: Iterable[tuple[str, str]] = ()) -> set[tuple[str, str]]:
        """From now until ``end_request`` this thread records one request: a value it folds is
        counted once however many trackers see it. ``folded`` are values already counted for it
        (a stream's, at its start); returns the set that collects what it folds."""
        self._request.folded = seen = set(folded)
        return seen

    def end_request(self) -> None:
        self._request.folded = None

    def model(self, value: str) -> str:
        return value if value in self._admitted["model"] else self.admit("model", value)

    def api_key(self, key_id: str) -> str:
        return key_id if key_id in self._admitted["api_key"] else self.admit("api_key", key_id)

    def error_type(self, value: str) -> str:
        return value if value in self._admitted["error_type"] else \
            self.admit("error_type", value)

    def label_of(self, kind: str, value: str) -> str:
        """The label ``value`` is reported under, without admitting it: a reader's lookup."""
        return value if value in self._admitted[kind] else OTHER

    def endpoint(self, path: str) -> str:
        """The normalised, admitted endpoint label of a request path."""
        normalized = self._endpoints.get(path)
        if normalized is None:
            normalized = normalize_endpoint(path)
            if len(self._endpoints) < 10 * self.caps["endpoint"]:
                self._endpoints[path] = normalized
        return normalized if normalized in self._admitted["endpoint"] else \
            self.admit("endpoint", normalized)


def limits_for(registry: CollectorRegistry, namespace: str = c.DEFAULT_NAMESPACE,
               **kwargs: Any) -> LabelLimits:
    """The ``LabelLimits`` already on ``registry``, or a new one registered there.

    Caps (``kwargs``) can only be set by the first: asking an existing one for others raises.
    """
    name = c.LABEL_OVERFLOW.full_name(namespace)
    existing = getattr(registry, "_names_to_collectors", {}).get(name)
    if isinstance(existing, LabelLimits):
        if kwargs:
            raise ValueError("this registry already has a LabelLimits; set its caps there")
        return existing
    return LabelLimits(registry=registry, namespace=namespace, **kwargs)
