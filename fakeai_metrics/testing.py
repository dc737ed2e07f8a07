"""Helpers for asserting on a registry, and a manual clock for exact timing in tests."""

from __future__ import annotations

from typing import Mapping

from prometheus_client import CollectorRegistry


class MetricNotFound(AssertionError):
    """No sample matched; the message lists the series that do exist under that name."""


class ManualClock:
    """A clock that moves only when told: ``clock.advance(0.05)``; pass it as ``clock=``."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.now += seconds
        return self.now


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called ``name`` (full sample name, e.g. ``..._bucket``) by sorted labels."""
    out = {}
    for family in registry.collect():
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def metric_value(registry: CollectorRegistry, name: str,
                 labels: Mapping[str, str] | None = None) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``.

    Raises ``MetricNotFound`` (listing what exists) when no sample matches, so a typo in a name
    or label fails loudly instead of reading as zero.
    """
    wanted = set((labels or {}).items())
    found = samples(registry, name)
    matched = [v for key, v in found.items() if wanted <= set(key)]
    if not matched:
        listing = "\n".join(f"  {name}{{{', '.join(f'{k}={v!r}' for k, v in key)}}} = {value}"
                            for key, value in sorted(found.items())) or "  (none)"
        raise MetricNotFound(f"no sample {name} with labels {dict(wanted)}; present:\n{listing}")
    return sum(matched)


def assert_metric(registry: CollectorRegistry, name: str, labels: Mapping[str, str] | None,
                  expected: float, *, tolerance: float = 1e-9) -> None:
    """Assert ``metric_value(...)`` equals ``expected`` within ``tolerance``."""
    value = metric_value(registry, name, labels)
    if abs(value - expected) > tolerance:
        raise AssertionError(f"{name}{dict(labels or {})} is {value}, expected {expected}")
