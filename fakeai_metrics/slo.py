"""SLO arithmetic: error budget, burn rate and violation, exact at the boundary; and the
multiwindow burn-rate alert pairs the rules and dashboards are built on.

Burn rate = observed error ratio / (1 - objective); 1.0 spends the budget exactly over the SLO
period. A success ratio exactly at the objective is not a violation: the comparison is done on
fractions, so 999 successes out of 1000 at 99.9 % is not read as 0.99899999. The error budget is
a whole number of errors, as in FakeAI, and with no budget left the percentage is 0, not 100.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from . import catalog as c
from .durations import parse_period


@dataclass(frozen=True)
class BurnAlertPair:
    """One multiwindow burn-rate condition: burn above ``factor`` over both ``long`` and
    ``short`` windows (the short one confirms the long one is still burning)."""

    severity: str
    factor: str  # printed as written: "14.4", never a float's repr
    long: str
    short: str


#: The SRE workbook's pairs for a 30-day SLO (2 % of the budget in 1h, 5 % in 6h, 10 % in 1d and
#: in 3d). The factors are kept for other periods: a burn rate is relative to the budget rate.
BURN_ALERT_PAIRS: tuple[BurnAlertPair, ...] = (
    BurnAlertPair(c.PAGE, "14.4", "1h", "5m"),
    BurnAlertPair(c.PAGE, "6", "6h", "30m"),
    BurnAlertPair(c.TICKET, "3", "1d", "2h"),
    BurnAlertPair(c.TICKET, "1", "3d", "6h"),
)

#: Every window a burn alert reads, shortest first: the windows of the recorded error ratios.
ALERT_WINDOWS: tuple[str, ...] = tuple(
    sorted({w for pair in BURN_ALERT_PAIRS for w in (pair.long, pair.short)}, key=parse_period))


def longest_window_seconds() -> int:
    """The longest alert window (3d): an SLO period must be longer for its 1x alert to mean much."""
    return parse_period(ALERT_WINDOWS[-1])


def error_budget(objective: float) -> Decimal:
    """1 - objective in decimal, exactly as written: 0.999 -> Decimal('0.001')."""
    return Decimal(1) - Decimal(repr(objective))


def burn_rate(errors: float, total: float, objective: float) -> float:
    return (errors / total) / float(error_budget(objective)) if total else 0.0


def allowed_errors(total: int, objective: float) -> int:
    """Whole errors the budget allows among ``total`` requests: floor(total x (1 - objective)),
    exactly (1001 at 99.9 % allow 1; 10 at 90 % allow 1, where float arithmetic gives 0)."""
    return math.floor(total * Fraction(error_budget(objective)))


def violated(errors: int, total: int, objective: float) -> bool:
    return bool(total) and Fraction(errors, total) > Fraction(error_budget(objective))


@dataclass
class SLOStatus:
    """FakeAI's SLO status: success ratio against the objective over the tracker's window, with the
    error budget left and whether it is violated."""

    target_success_rate: float
    window_seconds: float
    total_requests: int
    successful_requests: int
    failed_requests: int
    current_success_rate: float
    current_error_rate: float
    error_budget_total: int
    error_budget_consumed: int
    error_budget_remaining: int
    error_budget_percentage: float
    slo_violated: bool
    burn_rate: float
    endpoint_error_rates: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_counts(cls, objective: float, window_seconds: float, total: int, errors: int,
                    endpoint_error_rates: dict[str, float]) -> "SLOStatus":
        allowed = allowed_errors(total, objective)
        remaining = max(0, allowed - errors)
        return cls(
            target_success_rate=objective, window_seconds=window_seconds,
            total_requests=total, successful_requests=total - errors, failed_requests=errors,
            current_success_rate=(total - errors) / total if total else 1.0,
            current_error_rate=errors / total if total else 0.0,
            error_budget_total=allowed, error_budget_consumed=errors,
            error_budget_remaining=remaining,
            error_budget_percentage=(remaining / allowed * 100 if allowed
                                     else 0.0 if errors else 100.0),
            slo_violated=violated(errors, total, objective),
            burn_rate=burn_rate(errors, total, objective),
            endpoint_error_rates=endpoint_error_rates,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
