"""fakeai-metrics: LLM-serving metrics (TTFT, ITL, TPOT, tokens/s, cost, budgets, SLO burn)
exported to Prometheus, with FakeAI's tracker API."""

from .catalog import CATALOG, MetricSpec
from .cost import BudgetLimitType, BudgetPeriod, CostTracker
from .endpoints import MetricsTracker
from .errors import ErrorMetricsTracker
from .goodput import GoodputStatus
from .keys import KeyIds, hash_key
from .latency_slo import LatencySLO, load_slos
from .limits import LabelLimits
from .models import ModelMetricsTracker
from .pricing import Price, PriceTable
from .slo import SLOStatus
from .streaming import StreamingMetricsTracker
from .telemetry import Telemetry
from .validation import InvalidMetricInput

__all__ = [
    "BudgetLimitType", "BudgetPeriod", "CATALOG", "CostTracker", "ErrorMetricsTracker",
    "GoodputStatus", "InvalidMetricInput", "KeyIds", "LabelLimits", "LatencySLO", "MetricSpec",
    "MetricsTracker", "ModelMetricsTracker", "Price", "PriceTable", "SLOStatus",
    "StreamingMetricsTracker", "Telemetry", "hash_key", "load_slos",
]
__version__ = "0.1.0"
