"""The *Cost & budgets* dashboard: spend rate per API key and model, cumulative spend, budget used
against the limit with each key's alert threshold drawn, keys over their threshold, and the
projected spend at the end of the month."""

from __future__ import annotations

import inspect

from ... import catalog as c
from ...cost_tracker import CostTracker
from .panels import FULL, Board, Query, bargauge, stat, table, timeseries, unit_of
from .promql import RANGE, PromQL

#: CostTracker.set_budget's default alert threshold, drawn on the budget gauge.
DEFAULT_BUDGET_ALERT_THRESHOLD: float = (
    inspect.signature(CostTracker.set_budget).parameters["alert_threshold"].default)
#: Seconds from now to the end of the current UTC calendar month (budget periods are UTC).
_SECONDS_LEFT_IN_MONTH = (
    "scalar(days_in_month() * 86400 - (day_of_month() - 1) * 86400 - time() % 86400)")


def dashboard(p: PromQL, tags: list[str]) -> Board:
    board = Board(f"{p.ns}-cost", f"{p.ns} / Cost & budgets",
                  "Spend by API key and model, budgets against their limits and alert "
                  "thresholds, and where each budget is heading this month.", tags)
    key = c.COST.labels[0]  # api_key
    per_hour = " * 3600"
    # max over instances, as the budget rules do: with the Redis store every instance reports
    # the fleet's spend; with in-process stores the fullest instance is the one that refuses
    spent, limit, threshold = (f"max by ({key}) ({p.sel(m)})"
                               for m in (c.BUDGET_SPENT, c.BUDGET_LIMIT, c.BUDGET_THRESHOLD))
    used = f"{spent} / {limit}"
    over = f"{used} >= {threshold}"
    match = f"on ({key})"
    usd = unit_of(c.COST)

    board.row("Spend")
    board.add(stat("Spend per hour", "Current spend rate in USD per hour, all keys and the "
                   "selected models.", usd, Query(p.sum_rate(c.COST) + per_hour), w=6))
    board.add(stat("Spend in range", "USD spent during the dashboard's time range (increase of "
                   f"`{p.name(c.COST)}`).", usd,
                   Query(f"sum (increase({p.sel(c.COST)}[{RANGE}]))", instant=True), w=6))
    board.add(stat("Keys over alert threshold", "Budgeted keys whose spend has reached their "
                   f"alert threshold (what {c.ALERT_BUDGET_THRESHOLD} fires on).", "short",
                   Query(f"count ({over}) or vector(0)"), w=6,
                   thresholds=((None, "green"), (1, "orange"))))
    board.add(stat("Keys over budget", "Budgeted keys whose spend has reached their limit "
                   f"(what {c.ALERT_BUDGET_EXCEEDED} fires on).", "short",
                   Query(f"count ({spent} >= {limit}) or vector(0)"), w=6,
                   thresholds=((None, "green"), (1, "red"))))
    board.add(timeseries(
        "Spend rate per API key",
        f"USD per hour by API key (hashed id or alias), over the selected models "
        f"(`{p.name(c.COST)}`).", usd,
        [Query(p.sum_rate(c.COST, key) + per_hour, f"{{{{{key}}}}}")], min_val=0,
        legend_calcs=("mean", "lastNotNull")))
    board.add(timeseries(
        "Spend rate per model", f"USD per hour by model (`{p.name(c.COST)}`).", usd,
        [Query(p.sum_rate(c.COST, "model") + per_hour, "{{model}}")], min_val=0,
        legend_calcs=("mean", "lastNotNull")))
    board.add(timeseries(
        "Cumulative spend per API key",
        f"USD spent per key since each exporter started (`{p.name(c.COST)}`; a restart starts "
        "it again). Includes spend recorded before the selected time range.", usd,
        [Query(f"{p.sum(c.COST, key)} ({p.sel(c.COST)})", f"{{{{{key}}}}}")], w=FULL,
        min_val=0))

    board.row("Budgets")
    board.add(timeseries(
        "Budget used vs limit",
        f"Spent / limit of each budgeted key in the current period (solid), with the key's "
        f"alert threshold (dashed; `{p.name(c.BUDGET_THRESHOLD)}`). The red dashed line is the "
        f"limit (100 %). Keys without a budget have no series.", "percentunit",
        [Query(used, f"{{{{{key}}}}} used"),
         Query(threshold, f"{{{{{key}}}}} alert threshold")],
        thresholds=((None, "transparent"), (1, "red")), dashed_refs=("B",), min_val=0))
    board.add(bargauge(
        "Budget used now",
        f"Spent / limit per budgeted key. Yellow from the default alert threshold "
        f"({DEFAULT_BUDGET_ALERT_THRESHOLD:.0%}), red at the limit; a key's own threshold is "
        f"in the table and the graph.", "percentunit",
        [Query(used, f"{{{{{key}}}}}", instant=True)], max_val=1,
        thresholds=((None, "green"), (DEFAULT_BUDGET_ALERT_THRESHOLD, "yellow"), (1, "red"))))
    board.add(table(
        "Keys over their alert threshold",
        "Budgeted keys whose spent / limit is at or above their alert threshold, as "
        f"{c.ALERT_BUDGET_THRESHOLD} sees them, with spend and limit in USD.", "percentunit",
        [Query(over, instant=True, format="table"),
         Query(f"{spent} and {match} ({over})", instant=True, format="table"),
         Query(f"{limit} and {match} ({over})", instant=True, format="table"),
         Query(f"{threshold} and {match} ({over})", instant=True, format="table")],
        columns={"Value #A": ("Used", "percentunit"), "Value #B": ("Spent", usd),
                 "Value #C": ("Limit", usd), "Value #D": ("Alert threshold", "percentunit")},
        sort_by="Used"))
    board.add(timeseries(
        "Projected spend at the end of the month",
        f"Spent this period + the last hour's spend rate (recording rule "
        f"`{c.spend_rate_record('1h', p.ns)}`) x the seconds left in the UTC calendar month, "
        f"per budgeted key (solid), against its limit (dashed). Assumes monthly budgets; keys "
        f"without a budget have no series.", usd,
        [Query(f"{spent} + sum by ({key}) "
               f"({p.record(c.spend_rate_record('1h', p.ns))}) * {_SECONDS_LEFT_IN_MONTH}",
               f"{{{{{key}}}}} projected"),
         Query(limit, f"{{{{{key}}}}} limit")],
        dashed_refs=("B",), min_val=0))
    return board
