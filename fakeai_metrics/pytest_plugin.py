"""pytest plugin (entry point ``pytest11``): isolated registries, trackers and a manual clock.

Every fixture is fresh per test. The trackers are ``telemetry``'s, on ``metrics_registry``, and
run on ``metrics_clock``, a ``ManualClock``: advance it to make time pass, no sleeps. (Their
settings are the seed's fixtures': 500 recent errors, a 99.9 % SLO over 300 s, patterns from 3;
10,000 open streams at most.)
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from .budgets import InProcessBudgetStore
from .cost_tracker import CostTracker
from .metrics import MetricsTracker
from .error_metrics_tracker import ErrorMetricsTracker
from .model_metrics import ModelMetricsTracker
from .streaming_metrics_tracker import StreamingMetricsTracker
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
    # budgets in the test's own memory, even with $FAKEAI_METRICS_REDIS_URL set: tests stay apart
    return Telemetry(registry=metrics_registry, clock=metrics_clock, wall_clock=metrics_clock,
                     budget_store=InProcessBudgetStore())


# The tracker fixtures are the ``telemetry`` fixture's own trackers, so a test may ask for any
# mix of them (and ``telemetry``) without two owners of a metric on one registry.

@pytest.fixture
def metrics_tracker(telemetry: Telemetry) -> MetricsTracker:
    return telemetry.metrics


@pytest.fixture
def cost_tracker(telemetry: Telemetry) -> CostTracker:
    return telemetry.cost


@pytest.fixture
def model_tracker(telemetry: Telemetry) -> ModelMetricsTracker:
    return telemetry.models


@pytest.fixture
def error_tracker(telemetry: Telemetry) -> ErrorMetricsTracker:
    return telemetry.errors


@pytest.fixture
def streaming_tracker(telemetry: Telemetry) -> StreamingMetricsTracker:
    return telemetry.streaming
