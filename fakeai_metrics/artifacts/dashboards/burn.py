"""How the SLO dashboards draw an error budget and the burn-rate alert pairs: threshold steps at
the alert factors, the pairs in prose, and the budget as exact text (never a float's repr)."""

from __future__ import annotations

from decimal import Decimal

from ...slo import BURN_ALERT_PAIRS
from ..rule_spec import exact_text
from .panels import Step


def alert_factors() -> list[Decimal]:
    """The burn-alert factors, lowest first (1, 3, 6, 14.4)."""
    return sorted({Decimal(w.factor) for w in BURN_ALERT_PAIRS})


def burn_steps() -> tuple[Step, ...]:
    """Threshold steps that colour a burn rate by the alert factors it is above."""
    colours = ["yellow", "orange", "red", "dark-red"]
    return ((None, "green"), *((float(f), colours[min(i, len(colours) - 1)])
                               for i, f in enumerate(alert_factors())))


def pairs_text() -> str:
    """The alert pairs in prose: ``14.4x over 1h and 5m (page); ...``."""
    return "; ".join(f"{w.factor}x over {w.long} and {w.short} ({w.severity})"
                     for w in BURN_ALERT_PAIRS)


def factors_text() -> str:
    return ", ".join(str(f) for f in alert_factors())


def objective_percent(objective: float) -> str:
    """An objective as an exact percentage without the sign: 0.999 -> '99.9'."""
    return exact_text(Decimal(repr(objective)) * 100)
