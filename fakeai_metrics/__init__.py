"""fakeai-metrics: LLM-serving metrics (TTFT, ITL, TPOT, tokens/s, cost, budgets, SLO burn)
exported to Prometheus, with FakeAI's tracker API."""

from .catalog import CATALOG, MetricSpec
from .cost import BudgetLimitType, BudgetPeriod, CostTracker
from .endpoints import MetricsTracker
from .errors import ErrorMetricsTracker
from .keys import KeyIds, hash_key
from .limits import LabelLimits
from .models import ModelMetricsTracker
from .pricing import Price, PriceTable
from .slo import SLOStatus
from .streaming import StreamingMetricsTracker
from .telemetry import Telemetry
from .validation import InvalidMetricInput

__all__ = [
    "BudgetLimitType", "BudgetPeriod", "CATALOG", "CostTracker", "ErrorMetricsTracker",
    "InvalidMetricInput", "KeyIds", "LabelLimits", "MetricSpec", "MetricsTracker",
    "ModelMetricsTracker", "Price", "PriceTable", "SLOStatus", "StreamingMetricsTracker",
    "Telemetry", "hash_key",
]
__version__ = "0.1.0"
