"""The SLO rules: recorded error ratios and multiwindow, multi-burn-rate alerts, for the
availability SLO (failed / finished requests, per job or job and model) and for latency SLOs
(bad / matched requests, per job and slo), plus the alert that fires when no exporter is scraped.

Ratios are summed over every instance of a job, so a fleet is one SLO; the period's ratio comes
from the recorded 5m rates (weighted by traffic like a rate over the raw counters, at a fraction
of the samples a 30-day range over them would load).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

from .. import catalog as c
from ..durations import format_duration, parse_period
from ..latency_slo import LatencySLO
from ..slo import ALERT_WINDOWS, BurnAlertPair, error_budget
from .rule_spec import RuleSpec, exact_text, percent_text, share_text

#: How long the SLO metrics must be missing before ``FakeAIMetricsAbsent`` fires: long enough to
#: ride out a rolling restart or a Prometheus restart, short enough to notice the same hour.
ABSENT_FOR = "15m"


def slo_recording(s: RuleSpec) -> list[dict[str, Any]]:
    """The availability SLO's error ratio per alert window and over the period, and the
    budget left."""
    requests = s.metric(c.REQUESTS)
    errors = f'{requests}{{{c.OUTCOME_LABEL}="{c.ERROR}"}}'

    def ratio(window: str) -> str:
        return (f"(\n"
                f"  sum {s.by_clause} (rate({errors}[{window}]))\n"
                f"  or\n"
                f"  0 * sum {s.by_clause} (rate({requests}[{window}]))\n"
                f")\n"
                f"/\n"
                f"sum {s.by_clause} (rate({requests}[{window}]))")

    rules: list[dict[str, Any]] = [
        {"record": c.error_ratio_record(w, s.ns), "expr": ratio(w)} for w in ALERT_WINDOWS]
    requests_5m, errors_5m = c.sli_rate_records(s.ns)
    rules += [
        {"record": requests_5m, "expr": f"sum {s.by_clause} (rate({requests}[5m]))"},
        {"record": errors_5m,
         "expr": (f"sum {s.by_clause} (rate({errors}[5m]))\n"
                  f"or\n"
                  f"0 * sum {s.by_clause} (rate({requests}[5m]))")},
        # The period's ratio from the recorded 5m rates: weighted by traffic like a rate over the
        # raw counters, at a fraction of the samples a 30-day range over them would load.
        {"record": c.error_ratio_record(s.period, s.ns),
         "expr": (f"sum_over_time({errors_5m}[{s.period}])\n"
                  f"/\n"
                  f"sum_over_time({requests_5m}[{s.period}])")},
        {"record": c.budget_remaining_record(s.ns),
         "expr": f"1 - {c.error_ratio_record(s.period, s.ns)} / {exact_text(s.budget)}"},
    ]
    return rules


@dataclass(frozen=True)
class BurnTerms:
    """What a burn alert of one pair prints for an SLO's budget: its threshold (exact), how
    fast it burns, and the description's closing sentence (threshold, budget, spend)."""

    expr_threshold: str
    threshold_pct: str
    speed: str
    closing: str

    @classmethod
    def of(cls, w: BurnAlertPair, objective: float, budget: Decimal, period: str,
           period_seconds: int) -> "BurnTerms":
        spent_share = share_text(Decimal(w.factor) * parse_period(w.long) / period_seconds)
        lasts = format_duration(int(Decimal(period_seconds) / Decimal(w.factor)))
        return cls(
            f"({w.factor} * {exact_text(budget)})", percent_text(Decimal(w.factor) * budget),
            "fast" if w.severity == c.PAGE else "steadily",
            f"(threshold: {w.factor}x the {percent_text(budget)} error budget of the "
            f"{percent_text(Decimal(repr(objective)))} objective over {period}). A burn of "
            f"{w.factor}x spends {spent_share} of the budget every {w.long} and all of it "
            f"in {lasts}.")

    def expr(self, long_series: str, short_series: str) -> str:
        return (f"{long_series} > {self.expr_threshold}\nand\n"
                f"{short_series} > {self.expr_threshold}")


def burn_alert(s: RuleSpec, w: BurnAlertPair) -> dict[str, Any]:
    """The availability SLO's burn alert for one pair of windows."""
    t = BurnTerms.of(w, s.objective, s.budget, s.period, s.period_seconds)
    return {
        "alert": c.ALERT_BURN,
        "expr": t.expr(c.error_ratio_record(w.long, s.ns), c.error_ratio_record(w.short, s.ns)),
        "labels": {"severity": w.severity, "long_window": w.long, "short_window": w.short},
        "annotations": {
            "summary": f"{s.subject} is burning its error budget {t.speed} "
                       f"(over {w.factor}x for {w.long} and {w.short})",
            "description": (
                f"{{{{ $value | humanizePercentage }}}} of requests to {s.subject} failed over "
                f"the last {w.long} and more than {t.threshold_pct} over the last {w.short} "
                f"{t.closing}"),
            "runbook_url": s.runbook_url(c.ALERT_BURN),
        },
    }


def absent_alert(s: RuleSpec) -> dict[str, Any]:
    """Fires when no exporter is scraped, so that the burn alerts' silence means something."""
    objective = s.metric(c.SLO_OBJECTIVE)
    return {
        "alert": c.ALERT_ABSENT,
        "expr": f"absent({objective})",
        "for": ABSENT_FOR,
        "labels": {"severity": c.TICKET},
        "annotations": {
            "summary": "No fakeai-metrics exporter is being scraped",
            "description": (
                f"Prometheus has had no {objective} series for {ABSENT_FOR}: no exporter of "
                f"fakeai-metrics is scraped, so {c.ALERT_BURN} cannot fire and "
                f"{c.error_ratio_record(ALERT_WINDOWS[0], s.ns)} has no data."),
            "runbook_url": s.runbook_url(c.ALERT_ABSENT),
        },
    }


def latency_recording(s: RuleSpec, slos: Sequence[LatencySLO]) -> list[dict[str, Any]]:
    """Bad ratios per window for every SLO at once, then each SLO's period ratio and budget.

    The ratio is 1 - good / total computed as (total - good) / total: with whole rates the
    division is then correctly rounded, so a ratio exactly at a threshold is not read above it.
    """
    requests, good = s.metric(c.SLO_REQUESTS), s.metric(c.SLO_GOOD_REQUESTS)
    by = "by (job, slo)"

    def bad_ratio(window: str) -> str:
        return (f"(\n"
                f"  sum {by} (rate({requests}[{window}]))\n"
                f"  -\n"
                f"  sum {by} (rate({good}[{window}]))\n"
                f")\n"
                f"/\n"
                f"sum {by} (rate({requests}[{window}]))")

    requests_5m, good_5m = c.slo_rate_records(s.ns)
    rules: list[dict[str, Any]] = [
        {"record": c.slo_bad_ratio_record(w, s.ns), "expr": bad_ratio(w)} for w in ALERT_WINDOWS]
    rules += [{"record": requests_5m, "expr": f"sum {by} (rate({requests}[5m]))"},
              {"record": good_5m, "expr": f"sum {by} (rate({good}[5m]))"}]
    for slo in slos:
        sel = f'{{slo="{slo.name}"}}'
        period = c.slo_bad_ratio_record(slo.period, s.ns)
        # Each SLO's own rules carry its slo label, so two of them never look alike to promtool.
        labels = {"slo": slo.name}
        rules += [
            # The period's ratio from the recorded 5m rates, as for the availability SLO.
            {"record": period,
             "expr": (f"(\n"
                      f"  sum_over_time({requests_5m}{sel}[{slo.period}])\n"
                      f"  -\n"
                      f"  sum_over_time({good_5m}{sel}[{slo.period}])\n"
                      f")\n"
                      f"/\n"
                      f"sum_over_time({requests_5m}{sel}[{slo.period}])"),
             "labels": labels},
            {"record": c.slo_budget_remaining_record(s.ns),
             "expr": f"1 - {period}{sel} / {exact_text(error_budget(slo.objective))}",
             "labels": labels},
        ]
    return rules


def latency_alert(s: RuleSpec, slo: LatencySLO, w: BurnAlertPair) -> dict[str, Any]:
    """A latency SLO's burn alert for one pair of windows."""
    t = BurnTerms.of(w, slo.objective, error_budget(slo.objective), slo.period,
                     slo.period_seconds)
    sel = f'{{slo="{slo.name}"}}'
    return {
        "alert": c.ALERT_LATENCY_BURN,
        "expr": t.expr(f"{c.slo_bad_ratio_record(w.long, s.ns)}{sel}",
                       f"{c.slo_bad_ratio_record(w.short, s.ns)}{sel}"),
        "labels": {"slo": slo.name, "severity": w.severity, "long_window": w.long,
                   "short_window": w.short},
        "annotations": {
            "summary": f"Latency SLO {{{{ $labels.slo }}}} of {{{{ $labels.job }}}} is burning "
                       f"its error budget {t.speed} (over {w.factor}x for {w.long} and {w.short})",
            "description": (
                f"{{{{ $value | humanizePercentage }}}} of the requests latency SLO "
                f"{{{{ $labels.slo }}}} matches on {{{{ $labels.job }}}} were bad (failed, or "
                f"not within {slo.bounds_text()}) over the last {w.long}, and more than "
                f"{t.threshold_pct} over the last {w.short} {t.closing}"),
            "runbook_url": s.runbook_url(c.ALERT_LATENCY_BURN),
        },
    }
