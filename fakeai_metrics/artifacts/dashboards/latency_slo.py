"""The *Latency SLOs & goodput* dashboard (only with latency SLOs): one row per SLO with its
budget left, goodput against throughput, the bad ratio per window and the burn rates."""

from __future__ import annotations

from typing import Sequence

from ... import catalog as c
from ...latency_slo import LatencySLO
from ...slo import ALERT_WINDOWS, error_budget
from ..rule_spec import exact_text
from .burn import burn_steps, factors_text, objective_percent, pairs_text
from .panels import Board, Query, rate_unit_of, stat, timeseries
from .promql import PromQL


def dashboard(p: PromQL, slos: Sequence[LatencySLO], tags: list[str]) -> Board:
    """One row per latency SLO: budget left, goodput against throughput, the bad ratio per
    window against the objective, burn rates against the alert factors."""
    board = Board(f"{p.ns}-latency-slo", f"{p.ns} / Latency SLOs & goodput",
                  "One row per latency SLO of the spec the rules were generated from "
                  "(`fakeai-metrics rules --slos FILE`): goodput (good requests per second: "
                  "succeeded within every bound of the SLO that applies) against throughput, "
                  "the bad ratio per window against the objective, burn rates and the error "
                  "budget left.", tags)
    for slo in slos:
        budget = error_budget(slo.objective)
        budget_text = exact_text(budget)
        objective_pct = objective_percent(slo.objective)
        scope = " and ".join(f"{k} {getattr(slo, k)}" for k in ("model", "endpoint")
                             if getattr(slo, k) is not None) or "every request"
        name = slo.name
        remaining = p.record(c.slo_budget_remaining_record(p.ns), slo=name)

        def bad(window: str, slo_name: str = name) -> str:
            return p.record(c.slo_bad_ratio_record(window, p.ns), slo=slo_name)

        board.row(f"{name}: {objective_pct}% over {slo.period} good ({slo.bounds_text()}; "
                  f"{scope})")
        board.add(stat(f"{name}: error budget remaining",
                       f"Share of the {slo.period} error budget ({budget_text}) left: 100 % "
                       f"untouched, 0 spent, negative overspent "
                       f"(`{c.slo_budget_remaining_record(p.ns)}`). Counts only the time "
                       f"Prometheus has data.", "percentunit", Query(remaining), w=8,
                       thresholds=((None, "red"), (0, "orange"), (0.5, "green")), decimals=1))
        board.add(stat(f"{name}: bad ratio ({slo.period})",
                       f"Bad / matched requests over the SLO period "
                       f"(`{c.slo_bad_ratio_record(slo.period, p.ns)}`); red above the "
                       f"budget {budget_text}.", "percentunit", Query(bad(slo.period)), w=8,
                       thresholds=((None, "green"), (float(budget), "red")), decimals=3))
        board.add(stat(f"{name}: goodput",
                       f"Good requests per second now (`{p.name(c.SLO_GOOD_REQUESTS)}`).",
                       rate_unit_of(c.SLO_GOOD_REQUESTS),
                       Query(p.sum_rate(c.SLO_GOOD_REQUESTS, slo=name)), w=8))
        board.add(timeseries(
            f"{name}: goodput vs throughput",
            f"Good requests per second (goodput, `{p.name(c.SLO_GOOD_REQUESTS)}`) against all "
            f"the requests the SLO matched (dashed, `{p.name(c.SLO_REQUESTS)}`); the gap is "
            f"the bad ones: failed, or not within {slo.bounds_text()}.",
            rate_unit_of(c.SLO_REQUESTS),
            [Query(p.sum_rate(c.SLO_GOOD_REQUESTS, slo=name), "goodput"),
             Query(p.sum_rate(c.SLO_REQUESTS, slo=name), "throughput")],
            dashed_refs=("B",), min_val=0))
        board.add(timeseries(
            f"{name}: bad ratio per window vs objective",
            f"1 - good / matched over each window (recording rules "
            f"`{c.slo_bad_ratio_record('<window>', p.ns)}`); the dashed line is the error "
            f"budget {budget_text} (objective {objective_pct}%).", "percentunit",
            [Query(bad(w), w) for w in ALERT_WINDOWS],
            thresholds=((None, "green"), (float(budget), "red")), min_val=0,
            legend_calcs=("lastNotNull", "max")))
        board.add(timeseries(
            f"{name}: burn rate per window",
            f"Bad ratio over each window / the error budget ({budget_text}). Dashed lines: the "
            f"alert factors {factors_text()}. {c.ALERT_LATENCY_BURN} "
            f"fires on pairs: {pairs_text()}.", "none",
            [Query(f"{bad(w)} / {budget_text}", w) for w in ALERT_WINDOWS],
            thresholds=burn_steps(), min_val=0, legend_calcs=("lastNotNull", "max")))
        board.add(timeseries(
            f"{name}: error budget remaining over time",
            f"Share of the {slo.period} error budget left over time "
            f"(`{c.slo_budget_remaining_record(p.ns)}`); below 0 the SLO is missed.",
            "percentunit", [Query(remaining, "{{job}}")],
            thresholds=((None, "red"), (0, "transparent"))))
    return board

