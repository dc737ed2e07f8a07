"""What the rule files are generated for: the options checked once (objective, period, grouping,
namespace, runbook), and numbers printed exactly (0.999 gives a budget of 0.001, never a float's
repr)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

from .. import catalog as c
from ..durations import format_duration, parse_period
from ..slo import error_budget, longest_window_seconds

_NAMESPACE_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def check_objective(objective: float) -> float:
    """``objective`` as a float strictly between 0 and 1; ValueError otherwise."""
    if isinstance(objective, bool) or not isinstance(objective, (int, float)):
        raise ValueError(f"objective must be a number in (0, 1), got {objective!r}")
    objective = float(objective)
    if not math.isfinite(objective) or not 0.0 < objective < 1.0:
        raise ValueError(
            f"objective must be strictly between 0 and 1 (for example 0.999 for 99.9 %), "
            f"got {objective!r}")
    return objective


def exact_text(d: Decimal) -> str:
    """A decimal as PromQL reads it, without exponent or trailing zeros: 0.0010 -> '0.001'."""
    return format(d.normalize(), "f")


def percent_text(d: Decimal) -> str:
    """An exact percentage: Decimal('0.0144') -> '1.44%'."""
    return exact_text(d * 100) + "%"


def share_text(d: Decimal) -> str:
    """A rounded percentage for prose: 3 significant digits."""
    return f"{float(d * 100):.3g}%"


@dataclass(frozen=True)
class RuleSpec:
    """The validated options of one generation: objective and its exact budget, canonical
    period, grouping labels, namespace and runbook."""

    objective: float
    budget: Decimal
    period: str  # canonical
    period_seconds: int
    by: tuple[str, ...]
    ns: str
    runbook: str

    def metric(self, spec: c.MetricSpec) -> str:
        return spec.full_name(self.ns)

    @property
    def by_clause(self) -> str:
        return f"by ({', '.join(self.by)})"

    @property
    def subject(self) -> str:
        """How an alert names what it is about, in templates."""
        text = "{{ $labels.job }}"
        if "model" in self.by:
            text += " (model {{ $labels.model }})"
        return text

    def runbook_url(self, alert: str) -> str:
        return f"{self.runbook}#{alert.lower()}"


def rule_spec(objective: float, period: str, by_model: bool, namespace: str,
              runbook_url: str) -> RuleSpec:
    """The options checked once, at the edge; ValueError names the one refused."""
    objective = check_objective(objective)
    budget = error_budget(objective)
    seconds = parse_period(period)
    if seconds <= longest_window_seconds():
        raise ValueError(
            f"period {period!r} must be longer than the longest alert window "
            f"({format_duration(longest_window_seconds())}): the 1x burn alert reads 3 days")
    if not isinstance(namespace, str) or not _NAMESPACE_RE.fullmatch(namespace):
        raise ValueError(f"namespace must be a metric-name prefix such as 'fakeai', got "
                         f"{namespace!r}")
    if not isinstance(runbook_url, str) or not runbook_url or any(ch.isspace()
                                                                  for ch in runbook_url):
        raise ValueError(f"runbook_url must be a non-empty URL without spaces, got "
                         f"{runbook_url!r}")
    by = ("job", "model") if by_model else ("job",)
    return RuleSpec(objective, budget, format_duration(seconds), seconds, by, namespace,
                    runbook_url.rstrip("#"))
