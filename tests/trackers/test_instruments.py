"""The fine-grid histogram: exported buckets must be exact, in-process quantiles within ~1 %."""

from __future__ import annotations

import random
from bisect import bisect_left

import pytest
from prometheus_client import CollectorRegistry, Histogram as PromHistogram

from fakeai_metrics import catalog
from fakeai_metrics.instruments import GRID_RATIO, Histogram
from fakeai_metrics.testing import samples
from fakeai_metrics.windows import Ring


def _values(n: int = 5000) -> list[float]:
    rng = random.Random(7)
    vals = [rng.lognormvariate(-3, 1.5) for _ in range(n)]
    return vals + list(catalog.LATENCY_BUCKETS) + [0.0, 1e-9, 1e6]  # bounds, zero, extremes


def test_buckets_equal_prometheus_client_histogram():
    vals = _values()
    ours = Histogram(catalog.TTFT)
    reg = CollectorRegistry()
    ref = PromHistogram("ref", "ref", ["model"], buckets=catalog.LATENCY_BUCKETS, registry=reg)
    for v in vals:
        ours.observe(("m",), v)
        ref.labels("m").observe(v)
    fam = ours.family("fakeai")
    got = {(s.labels["le"]): s.value for s in fam.samples if s.name.endswith("_bucket")}
    want = {dict(k)["le"]: v for k, v in samples(reg, "ref_bucket").items()}
    assert got == want
    assert [s.value for s in fam.samples if s.name.endswith("_sum")][0] == pytest.approx(sum(vals))


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_quantile_within_stated_error(q):
    vals = [v for v in _values() if 1e-5 < v < 1e5]
    h = Histogram(catalog.ITL)
    for v in vals:
        h.observe(("m",), v)
    exact = sorted(vals)[max(0, -(-int(q * len(vals) * 1000) // 1000) - 1)]
    est = h.quantile(h.get(("m",)), q)
    assert abs(est - exact) / exact <= GRID_RATIO ** 0.5 - 1 + 1e-9


def test_every_bucket_bound_is_a_grid_point():
    for spec in catalog.CATALOG:
        if spec.kind == "histogram":
            h = Histogram(spec)
            for b in spec.buckets:
                assert h.grid[bisect_left(h.grid, b)] == b


def test_buckets_are_overridable_and_validated():
    h = Histogram(catalog.TTFT, [0.5, 0.1])
    assert h.bounds == (0.1, 0.5)
    with pytest.raises(ValueError):
        Histogram(catalog.TTFT, [float("nan")])


def test_design_bucket_requirements():
    assert 2.0 in catalog.LATENCY_BUCKETS
    assert catalog.LATENCY_BUCKETS[0] <= 0.001 and catalog.LATENCY_BUCKETS[-1] >= 60
    assert catalog.TOKEN_LATENCY_BUCKETS[0] <= 0.001 and catalog.TOKEN_LATENCY_BUCKETS[-1] >= 2.5


def test_ring_forgets_old_slots_and_reports_covered_time():
    ring = Ring(60, 1.0, lambda: [0])
    ring.slot(100.0)[0] += 5
    ring.slot(130.5)[0] += 1
    slots, covered = ring.recent(130.5)
    assert sum(s[0] for s in slots) == 6 and covered == pytest.approx(59.5)
    slots, _ = ring.recent(161.0)
    assert sum(s[0] for s in slots) == 1  # the slot of t=100 is out of the window
    ring.slot(100.0 + 61)[0] += 2  # same ring index as t=100: reset, not added
    assert sum(s[0] for s in ring.recent(161.0)[0]) == 3
