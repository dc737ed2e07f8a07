"""The *SLO & errors* dashboard: the availability SLO's burn rate per window against the alert
factors, the error budget left, errors by type and status, and the bundled alerts firing."""

from __future__ import annotations

from ... import catalog as c
from ...slo import ALERT_WINDOWS, BURN_ALERT_PAIRS
from ..rule_spec import exact_text
from .burn import burn_steps, factors_text, objective_percent, pairs_text
from .panels import FULL, Board, Query, rate_unit_of, stat, table, timeseries
from .promql import RANGE, PromQL


def dashboard(p: PromQL, tags: list[str]) -> Board:
    budget = p.budget
    budget_text = exact_text(budget)
    pairs = pairs_text()
    objective_pct = objective_percent(p.objective)
    board = Board(f"{p.ns}-slo", f"{p.ns} / SLO & errors",
                  f"Availability SLO ({objective_pct}% of requests succeed over "
                  f"{p.period}): burn rate per window against the alert factors, "
                  f"error budget left, errors by type, and the bundled alerts. Reads the "
                  f"recording rules in grafana/alerts/.", tags)
    alerts = f'ALERTS{{alertname=~"{c.ALERT_PREFIX}.*", alertstate="firing"}}'
    remaining = p.record(c.budget_remaining_record(p.ns))
    sli_requests, sli_errors = c.sli_rate_records(p.ns)

    fast = BURN_ALERT_PAIRS[0]  # the fastest page: 14.4x over 1h and 5m
    board.row("Error budget")
    board.add(stat("Error budget remaining",
                   f"Share of the {p.period} error budget ({budget_text}) left: 100 % "
                   f"untouched, 0 spent, negative overspent "
                   f"(`{c.budget_remaining_record(p.ns)}`). Counts only the time "
                   f"Prometheus has data.", "percentunit",
                   Query(remaining), w=5,
                   thresholds=((None, "red"), (0, "orange"), (0.5, "green")), decimals=1))
    board.add(stat(f"Error ratio ({p.period})",
                   f"Failed / all requests over the SLO period "
                   f"(`{c.error_ratio_record(p.period, p.ns)}`); red above the "
                   f"budget {budget_text}.", "percentunit",
                   Query(p.record(c.error_ratio_record(p.period, p.ns))), w=5,
                   thresholds=((None, "green"), (float(budget), "red")), decimals=3))
    board.add(stat(f"Burn rate ({fast.long})",
                   f"Error ratio over the last {fast.long} / error budget: 1 spends the budget "
                   f"exactly over the period; above {fast.factor} (with the {fast.short} window "
                   f"too) {c.ALERT_BURN} pages.", "none",
                   Query(f"{p.record(c.error_ratio_record(fast.long, p.ns))} / "
                         f"{budget_text}"),
                   w=5, thresholds=burn_steps(), decimals=1))
    board.add(stat("Exporter objective",
                   f"The objective each exporter uses for its in-process burn rate "
                   f"(`{p.name(c.SLO_OBJECTIVE)}`, lowest over the job). These dashboards and "
                   f"the rules use {objective_pct}%; the two should agree.", "percentunit",
                   Query(f"min ({p.sel(c.SLO_OBJECTIVE)})"), w=4, decimals=2))
    board.add(stat("Alerts firing now", f"Bundled alerts ({', '.join(c.ALERTS)}) firing now.",
                   "short", Query(f"count ({alerts}) or vector(0)"), w=5,
                   thresholds=((None, "green"), (1, "red"))))

    board.row("Burn rate")
    board.add(timeseries(
        "Burn rate per window",
        f"Error ratio over each window / the error budget ({budget_text}), from the recording "
        f"rules `{c.error_ratio_record('<window>', p.ns)}`. Dashed lines: the alert factors "
        f"{factors_text()}. {c.ALERT_BURN} fires on pairs: {pairs}.",
        "none",
        [Query(f"{p.record(c.error_ratio_record(w, p.ns))} / {budget_text}", w)
         for w in ALERT_WINDOWS],
        thresholds=burn_steps(), min_val=0, legend_calcs=("lastNotNull", "max")))
    board.add(timeseries(
        "Error budget remaining over time",
        f"Share of the {p.period} error budget left over time "
        f"(`{c.budget_remaining_record(p.ns)}`); below 0 the SLO is missed.",
        "percentunit", [Query(remaining, "{{job}}")],
        thresholds=((None, "red"), (0, "transparent"))))
    board.add(timeseries(
        "Burn rate reported by each exporter",
        f"The exporter's own in-process burn rate per window (`{p.name(c.SLO_BURN_RATE)}`), one "
        f"line per instance: a check on the recorded rules, and the only burn rate available "
        f"without them.", "none",
        [Query(f"{p.sel(c.SLO_BURN_RATE)}", "{{instance}} {{window}}")],
        thresholds=burn_steps(), min_val=0))
    board.add(timeseries(
        "SLI events (5m rate)",
        f"Requests and failed requests per second over 5 minutes, as recorded for the SLO "
        f"(`{sli_requests}`, `{sli_errors}`).", "reqps",
        [Query(p.record(sli_requests), "requests"), Query(p.record(sli_errors), "errors")],
        min_val=0))

    board.row("Errors")
    board.add(timeseries(
        "Errors by type and status",
        f"Failed requests per second by error type and HTTP status (`{p.name(c.ERRORS)}`).",
        rate_unit_of(c.ERRORS),
        [Query(p.sum_rate(c.ERRORS, "error_type", "status_code"),
               "{{error_type}} {{status_code}}")], min_val=0))
    board.add(table(
        "Top errors in the time range",
        "The 10 most frequent (endpoint, error type, status) over the dashboard's time range.",
        "short",
        [Query(f"topk(10, {p.sum(c.ERRORS, 'endpoint', 'error_type', 'status_code')} "
               f"(increase({p.sel(c.ERRORS)}[{RANGE}])))", instant=True, format="table")],
        columns={"Value": ("Errors", "short")}, sort_by="Errors"))
    board.add(timeseries(
        "Error ratio by model",
        f"Failed / all finished requests per model; the dashed line is the error budget "
        f"({budget_text}).", "percentunit",
        [Query(p.error_ratio("model"), "{{model}}")], w=FULL,
        thresholds=((None, "green"), (float(budget), "red")), min_val=0))

    board.row("Alerts")
    board.add(table(
        "Firing alerts",
        f"Bundled alerts firing now (`{alerts}`), with their severity and labels; runbooks in "
        f"docs/runbook.md.", "none", [Query(alerts, instant=True, format="table")],
        w=FULL, hide=("Time", "__name__", "Value", "alertstate")))
    return board

