"""The API-key budget rules: spent / limit recorded per job and key, the recorded spend rates, and
the alerts at a key's alert threshold and at its limit.

One figure per job and key however many instances report it (``max``): with a shared (Redis)
store every instance exports the fleet's spend, so a sum would multiply it; with in-process
stores each instance enforces its own budget, so the fullest one is the one to alert on.
"""

from __future__ import annotations

from typing import Any

from .. import catalog as c
from .rule_spec import RuleSpec


def budget_rules(s: RuleSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The recording rules and the alerts."""
    spent, limit = s.metric(c.BUDGET_SPENT), s.metric(c.BUDGET_LIMIT)
    threshold, cost = s.metric(c.BUDGET_THRESHOLD), s.metric(c.COST)
    key_label = c.BUDGET_SPENT.labels[0]
    if not (c.BUDGET_LIMIT.labels == c.BUDGET_THRESHOLD.labels == c.BUDGET_SPENT.labels
            and key_label in c.COST.labels):
        raise RuntimeError("catalog: the budget gauges and the cost counter must share a key label")

    by = f"max by (job, {key_label})"
    spent, limit, threshold = (f"{by} ({m})" for m in (spent, limit, threshold))

    # Each description first names the alert's own job and key, then reads the other gauges.
    series = (f'{{{{ $series := printf "{{job=%q,{key_label}=%q}}" $labels.job '
              f"$labels.{key_label} -}}}} ")

    def value_of(metric: str, fmt: str = 'printf "%.2f"') -> str:
        return (f'{{{{ with query (print "max({metric}" $series ")") }}}}'
                f"{{{{ . | first | value | {fmt} }}}}{{{{ end }}}}")

    key = f"{{{{ $labels.{key_label} }}}}"
    used = "{{ $value | humanizePercentage }}"
    spent_text = (f"API key {key} has spent {used} of its budget for the current period "
                  f"({value_of(s.metric(c.BUDGET_SPENT))} USD of "
                  f"{value_of(s.metric(c.BUDGET_LIMIT))} USD)")
    recording = [
        {"record": c.budget_used_record(s.ns), "expr": f"{spent} / {limit}"},
        *({"record": c.spend_rate_record(w, s.ns),
           "expr": f"sum by (job, {key_label}) (rate({cost}[{w}]))"} for w in c.SPEND_RATE_WINDOWS),
    ]
    alerts = [
        {"alert": c.ALERT_BUDGET_THRESHOLD,
         "expr": f"{spent} / {limit} >= {threshold}",
         "labels": {"severity": c.WARNING},
         "annotations": {
             "summary": f"API key {key} has used {used} of its budget",
             "description": (f"{series}{spent_text}, at or above its alert threshold of "
                             f"{value_of(s.metric(c.BUDGET_THRESHOLD), 'humanizePercentage')}."),
             "runbook_url": s.runbook_url(c.ALERT_BUDGET_THRESHOLD),
         }},
        {"alert": c.ALERT_BUDGET_EXCEEDED,
         "expr": f"{spent} / {limit}\nand\n{spent} >= {limit}",
         "labels": {"severity": c.CRITICAL},
         "annotations": {
             "summary": f"API key {key} has exceeded its budget ({used} used)",
             "description": (f"{series}{spent_text}. With a hard budget CostTracker.allows() "
                             f"is now False for the key; a soft one only reports."),
             "runbook_url": s.runbook_url(c.ALERT_BUDGET_EXCEEDED),
         }},
    ]
    return recording, alerts
