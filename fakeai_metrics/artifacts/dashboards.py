"""Grafana dashboards generated from the metric catalog and the alert rules.

``generate()`` builds three dashboards with Grafana's official builder library
(``grafana-foundation-sdk``, pinned in the ``dashboards`` extra) and returns them as plain dicts;
``write()`` puts them in a directory as JSON; ``main()`` is the ``fakeai-metrics dashboards``
command. The files in ``grafana/dashboards/`` are this module's output with the defaults, and a
test fails when they drift.

- *Overview*: traffic, error ratio, TTFT / ITL / TPOT / request-duration quantiles and means,
  output tokens per second, the per-stream speed distribution, active streams.
- *Cost & budgets*: spend rate per API key and model, cumulative spend, budget used against the
  limit with each key's alert threshold drawn, keys over their threshold, projected month spend.
- *SLO & errors*: burn rate per window against the alert factors, error budget remaining, errors
  by type and status, firing alerts.

Every metric and label name comes from ``catalog`` (via ``MetricSpec.full_name()``), every
alert name and SLO constant from ``rules``, and every recorded series a panel reads is checked
against what ``rules.generate()`` records with the same options. Quantiles are computed by
Prometheus from the exported buckets (``histogram_quantile`` over ``sum by (le)``), means as the
rate of ``_sum`` over the rate of ``_count``; every ``rate()`` reads ``$__rate_interval``.
Each dashboard has the variables ``datasource`` (any Prometheus), ``job`` and ``model``
(multi-select, with All).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

from .. import catalog as c
from . import rules
from ..cost_tracker import CostTracker
from ..durations import format_duration, parse_period
from ..latency_slo import LatencySLO, SLOSource, resolve
from ..slo import WINDOWS, exact_error_budget

try:  # the builder library is an extra: only generating the dashboards needs it
    from grafana_foundation_sdk.builders import bargauge as sdk_bargauge
    from grafana_foundation_sdk.builders import common as sdk_common
    from grafana_foundation_sdk.builders import dashboard as sdk_dashboard
    from grafana_foundation_sdk.builders import heatmap as sdk_heatmap
    from grafana_foundation_sdk.builders import prometheus as sdk_prometheus
    from grafana_foundation_sdk.builders import stat as sdk_stat
    from grafana_foundation_sdk.builders import table as sdk_table
    from grafana_foundation_sdk.builders import timeseries as sdk_timeseries
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models import common as m_common
    from grafana_foundation_sdk.models import dashboard as m_dashboard
    from grafana_foundation_sdk.models import heatmap as m_heatmap
    from grafana_foundation_sdk.models import prometheus as m_prometheus
    _SDK_IMPORT_ERROR: Exception | None = None
except (ImportError, AttributeError) as exc:  # pragma: no cover - exercised without the extra
    _SDK_IMPORT_ERROR = exc

#: The exact builder version the committed dashboards were generated with (its epoch included).
SDK_REQUIREMENT = "grafana-foundation-sdk==1769699379!11.6.0"

DEFAULT_OUT = "grafana/dashboards"

#: Grafana's own variables the queries use; tests substitute real values for them.
RATE_INTERVAL = "$__rate_interval"
RANGE = "$__range"
#: The dashboards' template variables.
DATASOURCE_VAR = "datasource"
JOB_VAR = "job"
MODEL_VAR = "model"
#: What ``$model`` becomes when All is selected: every model, including ones that appear later.
MODEL_ALL_VALUE = ".*"

QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99)
#: ``fakeai_tokens_total{type}`` value of generated tokens.
TOKEN_TYPE_COMPLETION = "completion"
#: CostTracker.set_budget's default alert threshold, drawn on the budget gauge.
DEFAULT_BUDGET_ALERT_THRESHOLD: float = (
    inspect.signature(CostTracker.set_budget).parameters["alert_threshold"].default)
#: Every bundled alert starts with this; the alert panels select ``alertname=~"<prefix>.*"``.
ALERT_PREFIX = os.path.commonprefix(list(rules.ALERTS))

#: Seconds from now to the end of the current UTC calendar month (budget periods are UTC).
_SECONDS_LEFT_IN_MONTH = (
    "scalar(days_in_month() * 86400 - (day_of_month() - 1) * 86400 - time() % 86400)")

#: Grafana unit ids for the catalog's units (values and per-second rates of them).
_UNIT = {"seconds": "s", "USD": "currencyUSD", "ratio": "percentunit", "tokens/s": "suffix: tok/s",
         "streams": "short", "requests": "short", "errors": "short", "tokens": "short"}
_RATE_UNIT = {"requests": "reqps", "errors": "reqps", "tokens": "suffix: tok/s",
              "streams": "suffix: streams/s"}

# Layout: Grafana's grid is 24 columns wide.
_FULL, _HALF = 24, 12
_STAT_H, _GRAPH_H, _TABLE_H = 4, 8, 8


# --- PromQL from the catalog ------------------------------------------------------------------

@dataclass(frozen=True)
class _PromQL:
    """Query text for one namespace: selectors, rates, quantiles, means, error ratios."""

    ns: str
    objective: float = rules.DEFAULT_OBJECTIVE
    period: str = rules.DEFAULT_PERIOD
    #: Names the rules generator records with these options; ``record()`` reads only these.
    recorded: frozenset[str] = frozenset()

    def name(self, spec: c.MetricSpec, suffix: str = "") -> str:
        if suffix and spec.kind != "histogram":
            raise ValueError(f"{spec.name} is a {spec.kind}: it has no {suffix} series")
        return spec.full_name(self.ns) + suffix

    @staticmethod
    def _check_labels(spec: c.MetricSpec, labels: Sequence[str]) -> None:
        known = set(spec.labels) | {"job", "instance"} | ({"le"} if spec.kind == "histogram"
                                                           else set())
        unknown = [label for label in labels if label not in known]
        if unknown:
            raise ValueError(f"{spec.name} has no label {', '.join(unknown)} "
                             f"(catalog labels: {', '.join(spec.labels)})")

    def sel(self, spec: c.MetricSpec, suffix: str = "", **equal: str) -> str:
        """``name{job="$job", model=~"$model", k="v"}``; ``model`` only where the metric has it."""
        self._check_labels(spec, list(equal))
        matchers = [f'job="${JOB_VAR}"']
        if "model" in spec.labels:
            matchers.append(f'model=~"${MODEL_VAR}"')
        matchers += [f'{k}="{v}"' for k, v in equal.items()]
        return f"{self.name(spec, suffix)}{{{', '.join(matchers)}}}"

    def by(self, spec: c.MetricSpec, *labels: str) -> str:
        self._check_labels(spec, labels)
        return f"by ({', '.join(labels)})"

    def sum(self, spec: c.MetricSpec, *by: str) -> str:
        """``sum by (labels)``, or ``sum`` without labels."""
        return f"sum {self.by(spec, *by)}" if by else "sum"

    def rate(self, spec: c.MetricSpec, suffix: str = "", **equal: str) -> str:
        return f"rate({self.sel(spec, suffix, **equal)}[{RATE_INTERVAL}])"

    def sum_rate(self, spec: c.MetricSpec, *by: str, suffix: str = "", **equal: str) -> str:
        return f"{self.sum(spec, *by)} ({self.rate(spec, suffix, **equal)})"

    def quantile(self, q: float, spec: c.MetricSpec, *by: str) -> str:
        return f"histogram_quantile({q}, {self.sum_rate(spec, 'le', *by, suffix='_bucket')})"

    def mean(self, spec: c.MetricSpec, *by: str) -> str:
        return (f"{self.sum_rate(spec, *by, suffix='_sum')} / "
                f"{self.sum_rate(spec, *by, suffix='_count')}")

    def error_ratio(self, *by: str) -> str:
        """Failed / all finished requests; 0 (not empty) where nothing failed."""
        errors = self.sum_rate(c.REQUESTS, *by, outcome=rules.ERROR_OUTCOME)
        everything = self.sum_rate(c.REQUESTS, *by)
        return f"({errors} or 0 * {everything}) / {everything}"

    def record(self, name: str, **equal: str) -> str:
        """A recording rule's series for the selected job (and ``equal`` labels); the rule must
        be one ``rules`` makes."""
        if name not in self.recorded:
            raise ValueError(f"the rules generator records no {name!r}")
        matchers = [f'job="${JOB_VAR}"'] + [f'{k}="{v}"' for k, v in equal.items()]
        return f"{name}{{{', '.join(matchers)}}}"


def _unit(spec: c.MetricSpec) -> str:
    return _UNIT[spec.unit]


def _rate_unit(spec: c.MetricSpec) -> str:
    return _RATE_UNIT[spec.unit]


# --- panels ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Query:
    """One panel target: PromQL, legend, and how Grafana runs it."""

    expr: str
    legend: str = ""
    instant: bool = False
    format: str = "time_series"  # or "table", "heatmap"


@dataclass
class _Board:
    """A dashboard being assembled: rows of panel builders, ids given in order."""

    uid: str
    title: str
    description: str
    tags: list[str]
    rows: list[tuple[str, list[Any]]] = field(default_factory=list)

    def row(self, title: str) -> None:
        self.rows.append((title, []))

    def add(self, panel: Any) -> None:
        self.rows[-1][1].append(panel)


def _ds() -> "m_dashboard.DataSourceRef":
    return m_dashboard.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VAR}}}")


def _targets(panel: Any, queries: Sequence[_Query]) -> Any:
    for ref, q in zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", queries):
        target = (sdk_prometheus.Dataquery().expr(q.expr).ref_id(ref).datasource(_ds())
                  .format(m_prometheus.PromQueryFormat(q.format)))
        target = target.instant() if q.instant else target.range()
        if q.legend:
            target = target.legend_format(q.legend)
        panel = panel.with_target(target)
    return panel


def _common(panel: Any, title: str, description: str, unit: str, queries: Sequence[_Query],
            w: int, h: int) -> Any:
    if len(queries) > 26:
        raise ValueError(f"panel {title!r}: at most 26 queries")
    panel = (panel.title(title).description(description).unit(unit).datasource(_ds())
             .span(w).height(h))
    return _targets(panel, queries)


def _thresholds(*steps: tuple[float | None, str]) -> Any:
    return (sdk_dashboard.ThresholdsConfig().mode(m_dashboard.ThresholdsMode.ABSOLUTE)
            .steps([m_dashboard.Threshold(value=v, color=color) for v, color in steps]))


def _dashed(*refs: str) -> list[tuple[str, list[Any]]]:
    """Overrides drawing the series of these queries as dashed lines without fill."""
    props = [m_dashboard.DynamicConfigValue(id_val="custom.lineStyle",
                                            value={"fill": "dash", "dash": [10, 10]}),
             m_dashboard.DynamicConfigValue(id_val="custom.fillOpacity", value=0)]
    return [(ref, props) for ref in refs]


def _timeseries(title: str, description: str, unit: str, queries: Sequence[_Query], *,
                w: int = _HALF, h: int = _GRAPH_H, thresholds: Sequence[tuple[float | None, str]]
                = (), log_scale: bool = False, dashed_refs: Sequence[str] = (),
                min_val: float | None = None, legend_calcs: Sequence[str] = ()) -> Any:
    panel = _common(sdk_timeseries.Panel(), title, description, unit, queries, w, h)
    panel = panel.fill_opacity(10).line_width(1).show_points(m_common.VisibilityMode.NEVER)
    panel = panel.tooltip(sdk_common.VizTooltipOptions().mode(m_common.TooltipDisplayMode.MULTI)
                          .sort(m_common.SortOrder.DESCENDING))
    legend = (sdk_common.VizLegendOptions().show_legend(True)
              .placement(m_common.LegendPlacement.BOTTOM))
    if legend_calcs:
        legend = legend.display_mode(m_common.LegendDisplayMode.TABLE).calcs(list(legend_calcs))
    else:
        legend = legend.display_mode(m_common.LegendDisplayMode.LIST).calcs([])
    panel = panel.legend(legend)
    if min_val is not None:
        panel = panel.min(min_val)
    if thresholds:
        panel = panel.thresholds(_thresholds(*thresholds)).thresholds_style(
            sdk_common.GraphThresholdsStyleConfig().mode(m_common.GraphThresholdsStyleMode.DASHED))
    if log_scale:
        panel = panel.scale_distribution(sdk_common.ScaleDistributionConfig()
                                         .type(m_common.ScaleDistribution.LOG).log(10))
    for ref, props in _dashed(*dashed_refs):
        panel = panel.override_by_query(ref, props)
    return panel


def _stat(title: str, description: str, unit: str, query: _Query, *, w: int = 4,
          thresholds: Sequence[tuple[float | None, str]] = ((None, "green"),),
          decimals: float | None = None) -> Any:
    panel = _common(sdk_stat.Panel(), title, description, unit, [query], w, _STAT_H)
    panel = (panel.graph_mode(m_common.BigValueGraphMode.AREA if not query.instant
                              else m_common.BigValueGraphMode.NONE)
             .color_mode(m_common.BigValueColorMode.VALUE)
             .reduce_options(sdk_common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .thresholds(_thresholds(*thresholds)))
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def _bargauge(title: str, description: str, unit: str, queries: Sequence[_Query], *,
              w: int = _HALF, h: int = _GRAPH_H, min_val: float = 0, max_val: float | None = None,
              thresholds: Sequence[tuple[float | None, str]] = ((None, "green"),)) -> Any:
    panel = _common(sdk_bargauge.Panel(), title, description, unit, queries, w, h)
    panel = (panel.display_mode(m_common.BarGaugeDisplayMode.GRADIENT)
             .orientation(m_common.VizOrientation.HORIZONTAL)
             .reduce_options(sdk_common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .min(min_val).thresholds(_thresholds(*thresholds)).show_unfilled(True))
    if max_val is not None:
        panel = panel.max(max_val)
    return panel


def _table(title: str, description: str, unit: str, queries: Sequence[_Query], *,
           w: int = _HALF, h: int = _TABLE_H, columns: dict[str, tuple[str, str]] | None = None,
           hide: Sequence[str] = ("Time", "__name__"), sort_by: str | None = None) -> Any:
    """An instant-query table; ``columns`` renames fields (old -> (new name, unit))."""
    panel = _common(sdk_table.Panel(), title, description, unit, queries, w, h)
    columns = columns or {}
    if len(queries) > 1:
        panel = panel.with_transformation(m_dashboard.DataTransformerConfig(id_val="merge",
                                                                            options={}))
    panel = panel.with_transformation(m_dashboard.DataTransformerConfig(
        id_val="organize",
        options={"excludeByName": {name: True for name in hide},
                 "renameByName": {old: new for old, (new, _) in columns.items()}}))
    for new, col_unit in columns.values():
        panel = panel.override_by_name(new, [m_dashboard.DynamicConfigValue(id_val="unit",
                                                                            value=col_unit)])
    if sort_by:
        panel = panel.sort_by([sdk_common.TableSortByFieldState().display_name(sort_by)
                               .desc(True)])
    return panel.cell_height(m_common.TableCellHeight.SM)


def _heatmap(title: str, description: str, unit: str, query: _Query, *, w: int = _HALF,
             h: int = _GRAPH_H) -> Any:
    panel = _common(sdk_heatmap.Panel(), title, description, unit, [query], w, h)
    return (panel.calculate(False)
            .rows_frame(sdk_heatmap.RowsHeatmapOptions().layout(m_common.HeatmapCellLayout.LE))
            .y_axis(sdk_heatmap.YAxisConfig().unit(unit))
            .color(sdk_heatmap.HeatmapColorOptions().mode(m_heatmap.HeatmapColorMode.SCHEME)
                   .scheme("Oranges").scale(m_heatmap.HeatmapColorScale.EXPONENTIAL)
                   .exponent(0.5).steps(64))
            .cell_values(sdk_heatmap.CellValues().unit("short"))
            .show_legend().mode(m_common.TooltipDisplayMode.SINGLE).show_y_histogram())


# --- the dashboards ------------------------------------------------------------------------------

def _latency_panel(p: _PromQL, spec: c.MetricSpec, title: str, what: str, *by: str) -> Any:
    queries = [_Query(p.quantile(q, spec, *by), f"p{q * 100:g}") for q in QUANTILES]
    queries.append(_Query(p.mean(spec, *by), "mean"))
    pcts = "/".join(f"p{q * 100:g}" for q in QUANTILES)
    return _timeseries(
        title,
        f"{what} {pcts} and mean over the selected models, from the `{p.name(spec)}` "
        f"histogram: `histogram_quantile` of the summed bucket rates (an aggregate over every "
        f"instance, never an average of percentiles); mean = rate of `_sum` / rate of `_count`.",
        _unit(spec), queries, w=_HALF, legend_calcs=("mean", "lastNotNull", "max"), min_val=0)


def _overview(p: _PromQL, tags: list[str]) -> _Board:
    board = _Board(f"{p.ns}-overview", f"{p.ns} / Overview",
                   "LLM serving at a glance: traffic, errors, streaming latency (TTFT, ITL, TPOT), "
                   "throughput and open streams, from the fakeai-metrics exporter.", tags)
    tokens_out = p.sum_rate(c.TOKENS, type=TOKEN_TYPE_COMPLETION)
    board.row("Summary")
    board.add(_stat("Requests/s", "Finished requests per second, all endpoints and the selected "
                    f"models (`{p.name(c.REQUESTS)}`).", _rate_unit(c.REQUESTS),
                    _Query(p.sum_rate(c.REQUESTS))))
    board.add(_stat("Error ratio", "Failed / all finished requests over the rate interval. The "
                    f"SLO's error budget is {_budget(p)}: above it the budget burns faster than "
                    "it refills.", "percentunit", _Query(p.error_ratio()),
                    thresholds=((None, "green"), (float(_budget_dec(p)), "red")), decimals=2))
    board.add(_stat("TTFT p90", "90th percentile of time to first token over the selected models.",
                    _unit(c.TTFT), _Query(p.quantile(0.9, c.TTFT))))
    board.add(_stat("ITL p90", "90th percentile of the gap between consecutive tokens.",
                    _unit(c.ITL), _Query(p.quantile(0.9, c.ITL))))
    board.add(_stat("Output tokens/s", "Generated (completion) tokens per second, billed by the "
                    f"cost tracker (`{p.name(c.TOKENS)}{{type=\"{TOKEN_TYPE_COMPLETION}\"}}`).",
                    _rate_unit(c.TOKENS), _Query(tokens_out)))
    board.add(_stat("Active streams", "Streams started and not yet completed or failed, now.",
                    _unit(c.STREAMS_ACTIVE), _Query(f"sum ({p.sel(c.STREAMS_ACTIVE)})")))

    board.row("Traffic")
    board.add(_timeseries(
        "Request rate by endpoint and model",
        f"Finished requests per second (`{p.name(c.REQUESTS)}`), successes and failures, by "
        "endpoint and model.", _rate_unit(c.REQUESTS),
        [_Query(p.sum_rate(c.REQUESTS, "endpoint", "model"), "{{endpoint}} {{model}}")],
        min_val=0))
    board.add(_timeseries(
        "Error ratio by endpoint and model",
        f"Failed / all finished requests by endpoint and model; 0 where nothing failed. The "
        f"dashed line is the SLO's error budget ({_budget(p)}).", "percentunit",
        [_Query(p.error_ratio("endpoint", "model"), "{{endpoint}} {{model}}")],
        thresholds=((None, "green"), (float(_budget_dec(p)), "red")), min_val=0))

    board.row("Latency")
    board.add(_latency_panel(p, c.TTFT, "Time to first token", "Time to first token"))
    board.add(_latency_panel(p, c.ITL, "Inter-token latency", "Gap between consecutive tokens"))
    board.add(_latency_panel(p, c.TPOT, "Time per output token",
                             "Per-stream (last - first token) / (tokens - 1)"))
    board.add(_latency_panel(p, c.REQUEST_DURATION, "Request duration",
                             "Whole-request latency (streamed and plain)"))
    board.add(_timeseries(
        "p90 latency by model",
        "90th percentile of TTFT, ITL and TPOT per model, on a log axis: compare models at a "
        "glance.", "s",
        [_Query(p.quantile(0.9, spec, "model"), f"{label} {{{{model}}}}")
         for spec, label in ((c.TTFT, "TTFT"), (c.ITL, "ITL"), (c.TPOT, "TPOT"))],
        w=_FULL, log_scale=True))

    board.row("Throughput")
    board.add(_timeseries(
        "Output tokens/s by model",
        "Generated tokens per second by model, as billed (completion tokens).",
        _rate_unit(c.TOKENS),
        [_Query(p.sum_rate(c.TOKENS, "model", type=TOKEN_TYPE_COMPLETION), "{{model}}")],
        min_val=0))
    board.add(_heatmap(
        "Per-stream output speed (TPS distribution)",
        f"How fast completed streams delivered tokens: tokens / (completion - start) per "
        f"stream, bucketed by `{p.name(c.TPS)}`; colour = streams per second in the bucket.",
        _unit(c.TPS),
        _Query(p.sum_rate(c.TPS, "le", suffix="_bucket"), "{{le}}", format="heatmap")))
    board.add(_timeseries(
        "Active streams by model",
        f"Open streams by model (`{p.name(c.STREAMS_ACTIVE)}`): started and not yet completed "
        "or failed.", _unit(c.STREAMS_ACTIVE),
        [_Query(f"{p.sum(c.STREAMS_ACTIVE, 'model')} ({p.sel(c.STREAMS_ACTIVE)})",
                "{{model}}")], min_val=0))
    board.add(_timeseries(
        "Finished streams by outcome",
        f"Streams finished per second (`{p.name(c.STREAMS)}`), completed or failed, by model.",
        _rate_unit(c.STREAMS),
        [_Query(p.sum_rate(c.STREAMS, "model", "outcome"), "{{model}} {{outcome}}")], min_val=0))
    return board


def _budget_dec(p: _PromQL) -> Decimal:
    return rules.error_budget(p.objective)


def _budget(p: _PromQL) -> str:
    return f"{_budget_dec(p).normalize() * 100:f}%"


def _cost(p: _PromQL, tags: list[str]) -> _Board:
    board = _Board(f"{p.ns}-cost", f"{p.ns} / Cost & budgets",
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
    usd = _unit(c.COST)

    board.row("Spend")
    board.add(_stat("Spend per hour", "Current spend rate in USD per hour, all keys and the "
                    "selected models.", usd, _Query(p.sum_rate(c.COST) + per_hour), w=6))
    board.add(_stat("Spend in range", "USD spent during the dashboard's time range (increase of "
                    f"`{p.name(c.COST)}`).", usd,
                    _Query(f"sum (increase({p.sel(c.COST)}[{RANGE}]))", instant=True), w=6))
    board.add(_stat("Keys over alert threshold", "Budgeted keys whose spend has reached their "
                    "alert threshold (what FakeAIBudgetAlertThreshold fires on).", "short",
                    _Query(f"count ({over}) or vector(0)"), w=6,
                    thresholds=((None, "green"), (1, "orange"))))
    board.add(_stat("Keys over budget", "Budgeted keys whose spend has reached their limit "
                    "(what FakeAIBudgetExceeded fires on).", "short",
                    _Query(f"count ({spent} >= {limit}) or vector(0)"), w=6,
                    thresholds=((None, "green"), (1, "red"))))
    board.add(_timeseries(
        "Spend rate per API key",
        f"USD per hour by API key (hashed id or alias), over the selected models "
        f"(`{p.name(c.COST)}`).", usd,
        [_Query(p.sum_rate(c.COST, key) + per_hour, f"{{{{{key}}}}}")], min_val=0,
        legend_calcs=("mean", "lastNotNull")))
    board.add(_timeseries(
        "Spend rate per model", f"USD per hour by model (`{p.name(c.COST)}`).", usd,
        [_Query(p.sum_rate(c.COST, "model") + per_hour, "{{model}}")], min_val=0,
        legend_calcs=("mean", "lastNotNull")))
    board.add(_timeseries(
        "Cumulative spend per API key",
        f"USD spent per key since each exporter started (`{p.name(c.COST)}`; a restart starts "
        "it again). Includes spend recorded before the selected time range.", usd,
        [_Query(f"{p.sum(c.COST, key)} ({p.sel(c.COST)})", f"{{{{{key}}}}}")], w=_FULL,
        min_val=0))

    board.row("Budgets")
    board.add(_timeseries(
        "Budget used vs limit",
        f"Spent / limit of each budgeted key in the current period (solid), with the key's "
        f"alert threshold (dashed; `{p.name(c.BUDGET_THRESHOLD)}`). The red dashed line is the "
        f"limit (100 %). Keys without a budget have no series.", "percentunit",
        [_Query(used, f"{{{{{key}}}}} used"),
         _Query(threshold, f"{{{{{key}}}}} alert threshold")],
        thresholds=((None, "transparent"), (1, "red")), dashed_refs=("B",), min_val=0))
    board.add(_bargauge(
        "Budget used now",
        f"Spent / limit per budgeted key. Yellow from the default alert threshold "
        f"({DEFAULT_BUDGET_ALERT_THRESHOLD:.0%}), red at the limit; a key's own threshold is "
        f"in the table and the graph.", "percentunit",
        [_Query(used, f"{{{{{key}}}}}", instant=True)], max_val=1,
        thresholds=((None, "green"), (DEFAULT_BUDGET_ALERT_THRESHOLD, "yellow"), (1, "red"))))
    board.add(_table(
        "Keys over their alert threshold",
        "Budgeted keys whose spent / limit is at or above their alert threshold, as "
        "FakeAIBudgetAlertThreshold sees them, with spend and limit in USD.", "percentunit",
        [_Query(over, instant=True, format="table"),
         _Query(f"{spent} and {match} ({over})", instant=True, format="table"),
         _Query(f"{limit} and {match} ({over})", instant=True, format="table"),
         _Query(f"{threshold} and {match} ({over})", instant=True, format="table")],
        columns={"Value #A": ("Used", "percentunit"), "Value #B": ("Spent", usd),
                 "Value #C": ("Limit", usd), "Value #D": ("Alert threshold", "percentunit")},
        sort_by="Used"))
    board.add(_timeseries(
        "Projected spend at the end of the month",
        f"Spent this period + the last hour's spend rate (recording rule "
        f"`{rules.spend_rate_record('1h', p.ns)}`) x the seconds left in the UTC calendar month, "
        f"per budgeted key (solid), against its limit (dashed). Assumes monthly budgets; keys "
        f"without a budget have no series.", usd,
        [_Query(f"{spent} + sum by ({key}) "
                f"({p.record(rules.spend_rate_record('1h', p.ns))}) * {_SECONDS_LEFT_IN_MONTH}",
                f"{{{{{key}}}}} projected"),
         _Query(limit, f"{{{{{key}}}}} limit")],
        dashed_refs=("B",), min_val=0))
    return board


def _burn_steps() -> tuple[list[Decimal], list[tuple[float | None, str]]]:
    """The alert factors (1, 3, 6, 14.4) and threshold steps that colour a burn rate by them."""
    factors = sorted({Decimal(w.factor) for w in rules.BURN_WINDOWS})
    burn_steps: list[tuple[float | None, str]] = [(None, "green")]
    colours = ["yellow", "orange", "red", "dark-red"]
    burn_steps += [(float(f), colours[min(i, len(colours) - 1)]) for i, f in enumerate(factors)]
    return factors, burn_steps


def _pairs() -> str:
    return "; ".join(f"{w.factor}x over {w.long} and {w.short} ({w.severity})"
                     for w in rules.BURN_WINDOWS)


def _slo(p: _PromQL, tags: list[str]) -> _Board:
    budget = _budget_dec(p)
    budget_text = format(budget.normalize(), "f")
    factors, burn_steps = _burn_steps()
    pairs = _pairs()
    objective_pct = f"{Decimal(repr(p.objective)) * 100:f}".rstrip("0").rstrip(".")
    board = _Board(f"{p.ns}-slo", f"{p.ns} / SLO & errors",
                   f"Availability SLO ({objective_pct}% of requests succeed over "
                   f"{p.period}): burn rate per window against the alert factors, "
                   f"error budget left, errors by type, and the bundled alerts. Reads the "
                   f"recording rules in grafana/alerts/.", tags)
    alerts = f'ALERTS{{alertname=~"{ALERT_PREFIX}.*", alertstate="firing"}}'
    remaining = p.record(rules.budget_remaining_record(p.ns))
    # rules.py has no accessor for these two; p.record() checks that it records them.
    sli_requests, sli_errors = f"{p.ns}:sli_requests:rate5m", f"{p.ns}:sli_errors:rate5m"

    fast = rules.BURN_WINDOWS[0]  # the fastest page: 14.4x over 1h and 5m
    board.row("Error budget")
    board.add(_stat("Error budget remaining",
                    f"Share of the {p.period} error budget ({budget_text}) left: 100 % "
                    f"untouched, 0 spent, negative overspent "
                    f"(`{rules.budget_remaining_record(p.ns)}`). Counts only the time "
                    f"Prometheus has data.", "percentunit",
                    _Query(remaining), w=5,
                    thresholds=((None, "red"), (0, "orange"), (0.5, "green")), decimals=1))
    board.add(_stat(f"Error ratio ({p.period})",
                    f"Failed / all requests over the SLO period "
                    f"(`{rules.error_ratio_record(p.period, p.ns)}`); red above the "
                    f"budget {budget_text}.", "percentunit",
                    _Query(p.record(rules.error_ratio_record(p.period, p.ns))), w=5,
                    thresholds=((None, "green"), (float(budget), "red")), decimals=3))
    board.add(_stat(f"Burn rate ({fast.long})",
                    f"Error ratio over the last {fast.long} / error budget: 1 spends the budget "
                    f"exactly over the period; above {fast.factor} (with the {fast.short} window "
                    f"too) {rules.ALERT_BURN} pages.", "none",
                    _Query(f"{p.record(rules.error_ratio_record(fast.long, p.ns))} / "
                         f"{budget_text}"),
                    w=5, thresholds=tuple(burn_steps), decimals=1))
    board.add(_stat("Exporter objective",
                    f"The objective each exporter uses for its in-process burn rate "
                    f"(`{p.name(c.SLO_OBJECTIVE)}`, lowest over the job). These dashboards and "
                    f"the rules use {objective_pct}%; the two should agree.", "percentunit",
                    _Query(f"min ({p.sel(c.SLO_OBJECTIVE)})"), w=4, decimals=2))
    board.add(_stat("Alerts firing now", f"Bundled alerts ({', '.join(rules.ALERTS)}) firing now.",
                    "short", _Query(f"count ({alerts}) or vector(0)"), w=5,
                    thresholds=((None, "green"), (1, "red"))))

    board.row("Burn rate")
    board.add(_timeseries(
        "Burn rate per window",
        f"Error ratio over each window / the error budget ({budget_text}), from the recording "
        f"rules `{rules.error_ratio_record('<window>', p.ns)}`. Dashed lines: the alert factors "
        f"{', '.join(str(f) for f in factors)}. {rules.ALERT_BURN} fires on pairs: {pairs}.",
        "none",
        [_Query(f"{p.record(rules.error_ratio_record(w, p.ns))} / {budget_text}", w)
         for w in WINDOWS],
        thresholds=tuple(burn_steps), min_val=0, legend_calcs=("lastNotNull", "max")))
    board.add(_timeseries(
        "Error budget remaining over time",
        f"Share of the {p.period} error budget left over time "
        f"(`{rules.budget_remaining_record(p.ns)}`); below 0 the SLO is missed.",
        "percentunit", [_Query(remaining, "{{job}}")],
        thresholds=((None, "red"), (0, "transparent"))))
    board.add(_timeseries(
        "Burn rate reported by each exporter",
        f"The exporter's own in-process burn rate per window (`{p.name(c.SLO_BURN_RATE)}`), one "
        f"line per instance: a check on the recorded rules, and the only burn rate available "
        f"without them.", "none",
        [_Query(f"{p.sel(c.SLO_BURN_RATE)}", "{{instance}} {{window}}")],
        thresholds=tuple(burn_steps), min_val=0))
    board.add(_timeseries(
        "SLI events (5m rate)",
        f"Requests and failed requests per second over 5 minutes, as recorded for the SLO "
        f"(`{sli_requests}`, `{sli_errors}`).", "reqps",
        [_Query(p.record(sli_requests), "requests"), _Query(p.record(sli_errors), "errors")],
        min_val=0))

    board.row("Errors")
    board.add(_timeseries(
        "Errors by type and status",
        f"Failed requests per second by error type and HTTP status (`{p.name(c.ERRORS)}`).",
        _rate_unit(c.ERRORS),
        [_Query(p.sum_rate(c.ERRORS, "error_type", "status_code"),
                "{{error_type}} {{status_code}}")], min_val=0))
    board.add(_table(
        "Top errors in the time range",
        "The 10 most frequent (endpoint, error type, status) over the dashboard's time range.",
        "short",
        [_Query(f"topk(10, {p.sum(c.ERRORS, 'endpoint', 'error_type', 'status_code')} "
                f"(increase({p.sel(c.ERRORS)}[{RANGE}])))", instant=True, format="table")],
        columns={"Value": ("Errors", "short")}, sort_by="Errors"))
    board.add(_timeseries(
        "Error ratio by model",
        f"Failed / all finished requests per model; the dashed line is the error budget "
        f"({budget_text}).", "percentunit",
        [_Query(p.error_ratio("model"), "{{model}}")], w=_FULL,
        thresholds=((None, "green"), (float(budget), "red")), min_val=0))

    board.row("Alerts")
    board.add(_table(
        "Firing alerts",
        f"Bundled alerts firing now (`{alerts}`), with their severity and labels; runbooks in "
        f"docs/runbook.md.", "none", [_Query(alerts, instant=True, format="table")],
        w=_FULL, hide=("Time", "__name__", "Value", "alertstate")))
    return board


def _latency(p: _PromQL, slos: Sequence[LatencySLO], tags: list[str]) -> _Board:
    """One row per latency SLO: budget left, goodput against throughput, the bad ratio per
    window against the objective, burn rates against the alert factors."""
    factors, burn_steps = _burn_steps()
    board = _Board(f"{p.ns}-latency-slo", f"{p.ns} / Latency SLOs & goodput",
                   "One row per latency SLO of the spec the rules were generated from "
                   "(`fakeai-metrics rules --slos FILE`): goodput (good requests per second: "
                   "succeeded within every bound of the SLO that applies) against throughput, "
                   "the bad ratio per window against the objective, burn rates and the error "
                   "budget left.", tags)
    for slo in slos:
        budget = exact_error_budget(slo.objective)
        budget_text = format(budget.normalize(), "f")
        objective_pct = format((Decimal(repr(slo.objective)) * 100).normalize(), "f")
        scope = " and ".join(f"{k} {getattr(slo, k)}" for k in ("model", "endpoint")
                             if getattr(slo, k) is not None) or "every request"
        name = slo.name
        remaining = p.record(rules.slo_budget_remaining_record(p.ns), slo=name)

        def bad(window: str, slo_name: str = name) -> str:
            return p.record(rules.slo_bad_ratio_record(window, p.ns), slo=slo_name)

        board.row(f"{name}: {objective_pct}% over {slo.period} good ({slo.bounds_text()}; "
                  f"{scope})")
        board.add(_stat(f"{name}: error budget remaining",
                        f"Share of the {slo.period} error budget ({budget_text}) left: 100 % "
                        f"untouched, 0 spent, negative overspent "
                        f"(`{rules.slo_budget_remaining_record(p.ns)}`). Counts only the time "
                        f"Prometheus has data.", "percentunit", _Query(remaining), w=8,
                        thresholds=((None, "red"), (0, "orange"), (0.5, "green")), decimals=1))
        board.add(_stat(f"{name}: bad ratio ({slo.period})",
                        f"Bad / matched requests over the SLO period "
                        f"(`{rules.slo_bad_ratio_record(slo.period, p.ns)}`); red above the "
                        f"budget {budget_text}.", "percentunit", _Query(bad(slo.period)), w=8,
                        thresholds=((None, "green"), (float(budget), "red")), decimals=3))
        board.add(_stat(f"{name}: goodput",
                        f"Good requests per second now (`{p.name(c.SLO_GOOD_REQUESTS)}`).",
                        _rate_unit(c.SLO_GOOD_REQUESTS),
                        _Query(p.sum_rate(c.SLO_GOOD_REQUESTS, slo=name)), w=8))
        board.add(_timeseries(
            f"{name}: goodput vs throughput",
            f"Good requests per second (goodput, `{p.name(c.SLO_GOOD_REQUESTS)}`) against all "
            f"the requests the SLO matched (dashed, `{p.name(c.SLO_REQUESTS)}`); the gap is "
            f"the bad ones: failed, or not within {slo.bounds_text()}.",
            _rate_unit(c.SLO_REQUESTS),
            [_Query(p.sum_rate(c.SLO_GOOD_REQUESTS, slo=name), "goodput"),
             _Query(p.sum_rate(c.SLO_REQUESTS, slo=name), "throughput")],
            dashed_refs=("B",), min_val=0))
        board.add(_timeseries(
            f"{name}: bad ratio per window vs objective",
            f"1 - good / matched over each window (recording rules "
            f"`{rules.slo_bad_ratio_record('<window>', p.ns)}`); the dashed line is the error "
            f"budget {budget_text} (objective {objective_pct}%).", "percentunit",
            [_Query(bad(w), w) for w in WINDOWS],
            thresholds=((None, "green"), (float(budget), "red")), min_val=0,
            legend_calcs=("lastNotNull", "max")))
        board.add(_timeseries(
            f"{name}: burn rate per window",
            f"Bad ratio over each window / the error budget ({budget_text}). Dashed lines: the "
            f"alert factors {', '.join(str(f) for f in factors)}. {rules.ALERT_LATENCY_BURN} "
            f"fires on pairs: {_pairs()}.", "none",
            [_Query(f"{bad(w)} / {budget_text}", w) for w in WINDOWS],
            thresholds=tuple(burn_steps), min_val=0, legend_calcs=("lastNotNull", "max")))
        board.add(_timeseries(
            f"{name}: error budget remaining over time",
            f"Share of the {slo.period} error budget left over time "
            f"(`{rules.slo_budget_remaining_record(p.ns)}`); below 0 the SLO is missed.",
            "percentunit", [_Query(remaining, "{{job}}")],
            thresholds=((None, "red"), (0, "transparent"))))
    return board


# --- building and writing ----------------------------------------------------------------------

def _variables(p: _PromQL) -> list[Any]:
    requests = p.name(c.REQUESTS)
    return [
        sdk_dashboard.DatasourceVariable(DATASOURCE_VAR).label("Data source").type("prometheus")
        .description("The Prometheus that scrapes the exporter and evaluates the bundled rules."),
        sdk_dashboard.QueryVariable(JOB_VAR).label("Job").datasource(_ds())
        .query(f"label_values({requests}, job)")
        .refresh(m_dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(m_dashboard.VariableSort.ALPHABETICAL_ASC)
        .description("Prometheus job of the exporter; the SLO rules aggregate per job."),
        sdk_dashboard.QueryVariable(MODEL_VAR).label("Model").datasource(_ds())
        .query(f'label_values({requests}{{job="${JOB_VAR}"}}, model)')
        .refresh(m_dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(m_dashboard.VariableSort.ALPHABETICAL_ASC)
        .multi(True).include_all(True).all_value(MODEL_ALL_VALUE)
        .current(m_dashboard.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .description("Models to include; All matches every model, also new ones."),
    ]


def _build(board: _Board, p: _PromQL) -> dict[str, Any]:
    builder = (sdk_dashboard.Dashboard(board.title).uid(board.uid).description(board.description)
               .tags(board.tags).time("now-1h", "now").refresh("30s").timezone("browser")
               .tooltip(m_dashboard.DashboardCursorSync.CROSSHAIR).editable()
               .link(sdk_dashboard.DashboardLink("fakeai dashboards")
                     .type(m_dashboard.DashboardLinkType.DASHBOARDS).tags([p.ns])
                     .as_dropdown(True).include_vars(True).keep_time(True))
               .variables(_variables(p)))
    next_id = 1
    for title, panels in board.rows:
        builder = builder.with_row(sdk_dashboard.Row(title).id(next_id))
        next_id += 1
        for panel in panels:
            builder = builder.with_panel(panel.id(next_id))
            next_id += 1
    built = json.loads(JSONEncoder(sort_keys=True).encode(builder.build()))
    # One pass through the SDK's typed model adds the defaults Grafana's schema gives (a table
    # column's alignment and so on), so the committed JSON is a fixed point of that model.
    dashboard: dict[str, Any] = json.loads(
        JSONEncoder(sort_keys=True).encode(m_dashboard.Dashboard.from_json(built)))
    return dashboard


def recorded_rules(namespace: str = c.DEFAULT_NAMESPACE, *,
                   objective: float = rules.DEFAULT_OBJECTIVE,
                   period: str = rules.DEFAULT_PERIOD,
                   slos: SLOSource | None = None) -> frozenset[str]:
    """Every series name the rules generator records with these options."""
    text = "".join(rules.generate(objective, period, False, namespace, slos=slos).values())
    return frozenset(re.findall(r"^\s*- record: (\S+)$", text, flags=re.MULTILINE))


def generate(namespace: str = c.DEFAULT_NAMESPACE, *, objective: float = rules.DEFAULT_OBJECTIVE,
             period: str = rules.DEFAULT_PERIOD,
             slos: SLOSource | None = None) -> dict[str, dict[str, Any]]:
    """The dashboards: file name -> dashboard JSON (as a dict). Pure and deterministic.

    ``namespace`` is the exporter's metric prefix; ``objective`` and ``period`` are the SLO the
    rules were generated with (the SLO panels read its recorded series and divide by its error
    budget); ``slos`` (``LatencySLO``s or a spec file) adds the latency-SLO dashboard. Raises
    RuntimeError when the builder library is missing and ValueError for options the rules
    generator refuses.
    """
    if _SDK_IMPORT_ERROR is not None:
        raise RuntimeError(
            f"generating the dashboards needs Grafana's builder library: pip install "
            f"'{SDK_REQUIREMENT}' (or 'fakeai-metrics[dashboards]'; Python >= 3.11) "
            f"[{_SDK_IMPORT_ERROR}]")
    register_default_plugins()
    period = format_duration(parse_period(period))
    latency = resolve(slos)
    p = _PromQL(namespace, objective, period,
                recorded_rules(namespace, objective=objective, period=period, slos=latency))
    tags = [namespace, "llm", "generated"]
    boards = {f"{namespace}-overview.json": _overview(p, tags),
              f"{namespace}-cost.json": _cost(p, tags),
              f"{namespace}-slo.json": _slo(p, tags)}
    if latency:
        boards[f"{namespace}-latency-slo.json"] = _latency(p, latency, tags)
    return {name: _build(board, p) for name, board in boards.items()}


@dataclass(frozen=True)
class PanelQuery:
    """One query of a generated dashboard, as Grafana would run it (before interpolation)."""

    dashboard: str  # uid
    panel: str  # title
    panel_type: str
    ref_id: str
    expr: str
    instant: bool


def panel_queries(dashboard: dict[str, Any]) -> list[PanelQuery]:
    """Every target of every (non-row) panel of a dashboard dict, in order."""
    out = []
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            out.append(PanelQuery(dashboard["uid"], panel["title"], panel["type"],
                                  target["refId"], target["expr"], bool(target.get("instant"))))
    return out


_VARIABLE_RE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def interpolate(text: str, values: dict[str, str]) -> str:
    """Replace ``$name`` and ``${name}`` as Grafana does; KeyError for a name not in ``values``."""
    return _VARIABLE_RE.sub(lambda m: values[m.group(1) or m.group(2)], text)


def render(dashboard: dict[str, Any]) -> str:
    """The committed text of one dashboard: sorted keys, two-space indent, final newline."""
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(out_dir: str | Path = DEFAULT_OUT, *, namespace: str = c.DEFAULT_NAMESPACE,
          objective: float = rules.DEFAULT_OBJECTIVE, period: str = rules.DEFAULT_PERIOD,
          slos: SLOSource | None = None) -> list[Path]:
    """Write the generated dashboards into ``out_dir`` (created if missing); their paths."""
    dashboards = generate(namespace, objective=objective, period=period, slos=slos)
    return rules.write_files(out_dir, {name: render(d) for name, d in dashboards.items()})


def main(argv: Sequence[str] | None = None) -> int:
    """``fakeai-metrics dashboards``: write the dashboard JSON files; 2 on a bad option."""
    parser = argparse.ArgumentParser(
        prog="fakeai-metrics dashboards",
        description="Generate the Grafana dashboards (Overview, Cost & budgets, SLO & errors) "
                    "from the metric catalog and the alert rules.")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"directory to write the dashboards to (default {DEFAULT_OUT})")
    parser.add_argument("--namespace", default=c.DEFAULT_NAMESPACE,
                        help="metric prefix of the exporter (default fakeai)")
    parser.add_argument("--objective", type=float, default=rules.DEFAULT_OBJECTIVE,
                        help="SLO objective the rules were generated with (default 0.999)")
    parser.add_argument("--period", default=rules.DEFAULT_PERIOD,
                        help="SLO period the rules were generated with (default 30d)")
    parser.add_argument("--slos", metavar="FILE",
                        help="latency SLO spec (YAML) the rules were generated with: also "
                             "write the latency-SLO dashboard")
    args = parser.parse_args(argv)
    return rules.report(parser.prog, lambda: write(args.out, namespace=args.namespace,
                                                    objective=args.objective,
                                                    period=args.period, slos=args.slos))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
