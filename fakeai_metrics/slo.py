"""SLO arithmetic: error budget, burn rate and violation, exact at the boundary.

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

from .durations import parse_period

#: Windows of the recorded error ratios: every window the multiwindow burn-rate alerts read.
WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def longest_window_seconds() -> int:
    """The longest alert window (3d): an SLO period must be longer for its 1x alert to mean much."""
    return max(parse_period(w) for w in WINDOWS)


def exact_error_budget(objective: float) -> Decimal:
    """1 - objective in decimal, exactly as written: 0.999 -> Decimal('0.001')."""
    return Decimal(1) - Decimal(repr(objective))


def error_budget(objective: float) -> float:
    """1 - objective as the nearest float to the exact value (0.001, not 0.0010000000000000009)."""
    return float(exact_error_budget(objective))


def burn_rate(errors: float, total: float, objective: float) -> float:
    return (errors / total) / error_budget(objective) if total else 0.0


def allowed_errors(total: int, objective: float) -> int:
    """Whole errors the budget allows among ``total`` requests: floor(total x (1 - objective)),
    exactly (1001 at 99.9 % allow 1; 10 at 90 % allow 1, where float arithmetic gives 0)."""
    return math.floor(total * Fraction(exact_error_budget(objective)))


def violated(errors: int, total: int, objective: float) -> bool:
    return bool(total) and Fraction(errors, total) > Fraction(exact_error_budget(objective))


@dataclass
class SLOStatus:
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
