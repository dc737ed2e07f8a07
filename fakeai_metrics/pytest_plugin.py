"""pytest plugin (entry point ``pytest11``): isolated registries, trackers and a manual clock.

Every fixture is fresh per test. The trackers share ``metrics_registry`` and run on
``metrics_clock``, a ``ManualClock``: advance it to make time pass, no sleeps.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from .cost import CostTracker
from .endpoints import MetricsTracker
from .errors import ErrorMetricsTracker
from .models import ModelMetricsTracker
from .streaming import StreamingMetricsTracker
from .telemetry import Telemetry
from .testing import ManualClock


@pytest.fixture
def metrics_registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=True)


@pytest.fixture
def metrics_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def telemetry(metrics_registry: CollectorRegistry, metrics_clock: ManualClock) -> Telemetry:
    return Telemetry(registry=metrics_registry, clock=metrics_clock, wall_clock=metrics_clock)


@pytest.fixture
def metrics_tracker(metrics_registry, metrics_clock) -> MetricsTracker:
    return MetricsTracker(registry=metrics_registry, clock=metrics_clock)


@pytest.fixture
def cost_tracker(metrics_registry, metrics_clock) -> CostTracker:
    return CostTracker(registry=metrics_registry, clock=metrics_clock)


@pytest.fixture
def model_tracker(metrics_registry, metrics_clock) -> ModelMetricsTracker:
    return ModelMetricsTracker(registry=metrics_registry, clock=metrics_clock)


@pytest.fixture
def error_tracker(metrics_registry, metrics_clock) -> ErrorMetricsTracker:
    return ErrorMetricsTracker(max_recent_errors=500, error_budget_slo=0.999,
                               window_seconds=300, pattern_threshold=3,
                               registry=metrics_registry, clock=metrics_clock)


@pytest.fixture
def streaming_tracker(metrics_registry, metrics_clock) -> StreamingMetricsTracker:
    return StreamingMetricsTracker(max_active_streams=10000, max_completed_streams=1000,
                                   aggregation_window_seconds=300,
                                   registry=metrics_registry, clock=metrics_clock)
