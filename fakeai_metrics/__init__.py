"""fakeai-metrics: LLM-serving metrics (TTFT, ITL, TPOT, tokens/s, cost, budgets, SLO burn)
exported to Prometheus, with FakeAI's tracker API."""

from importlib.metadata import version

from .catalog import CATALOG, MetricSpec
from .cost_tracker import BudgetLimitType, BudgetPeriod, CostOptimizationSuggestion, CostTracker
from .metrics import MetricsTracker
from .error_metrics_tracker import ErrorMetricsTracker, ErrorPattern, ErrorRecord
from .goodput_tracker import GoodputStatus
from .keys import KeyIds, hash_key
from .latency_slo import LatencySLO, load_slos
from .limits import LabelLimits
from .model_metrics import ModelMetricsTracker
from .pricing import Price, PriceTable, load_price_file
from .slo import SLOStatus
from .streaming_metrics_tracker import StreamingAggregateMetrics, StreamingMetricsTracker
from .telemetry import Telemetry
from .validation import InvalidMetricInput

__all__ = [
    "BudgetLimitType", "BudgetPeriod", "CATALOG", "CostOptimizationSuggestion", "CostTracker",
    "ErrorMetricsTracker", "ErrorPattern", "ErrorRecord", "GoodputStatus", "InvalidMetricInput",
    "KeyIds", "LabelLimits", "LatencySLO", "MetricSpec", "MetricsTracker", "ModelMetricsTracker",
    "Price", "PriceTable", "SLOStatus", "StreamingAggregateMetrics", "StreamingMetricsTracker",
    "Telemetry", "hash_key", "load_price_file", "load_slos",
]
__version__ = version("fakeai-metrics")
