"""Panels and dashboards on Grafana's builder library: the panel kinds the dashboards use, with
the house style (thresholds, legends, tooltips, units, a 24-column grid), and the step from an
assembled ``Board`` to the dashboard JSON.

The builder library (``grafana-foundation-sdk``, pinned in the ``dashboards`` extra) is the
ecosystem's typed model of Grafana's schema; only generating the dashboards needs it, so it is
imported here, and ``require_sdk()`` says how to install it when it is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from ... import catalog as c
from .promql import JOB_VAR, MODEL_VAR, PromQL

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

#: The data source variable (any Prometheus).
DATASOURCE_VAR = "datasource"
#: What ``$model`` becomes when All is selected: every model, including ones that appear later.
MODEL_ALL_VALUE = ".*"

#: Grafana unit ids for the catalog's units (values and per-second rates of them).
_UNIT = {"seconds": "s", "USD": "currencyUSD", "ratio": "percentunit", "tokens/s": "suffix: tok/s",
         "streams": "short", "requests": "short", "errors": "short", "tokens": "short"}
_RATE_UNIT = {"requests": "reqps", "errors": "reqps", "tokens": "suffix: tok/s",
              "streams": "suffix: streams/s"}

# Layout: Grafana's grid is 24 columns wide.
FULL, HALF = 24, 12
_STAT_H, _GRAPH_H, _TABLE_H = 4, 8, 8
#: A threshold: from this value (None: from the bottom) on, this colour.
Step = tuple[float | None, str]


def require_sdk() -> None:
    """Raise RuntimeError saying how to install the builder library when it is missing."""
    if _SDK_IMPORT_ERROR is not None:
        raise RuntimeError(
            f"generating the dashboards needs Grafana's builder library: pip install "
            f"'{SDK_REQUIREMENT}' (or 'fakeai-metrics[dashboards]'; Python >= 3.11) "
            f"[{_SDK_IMPORT_ERROR}]")
    register_default_plugins()


def unit_of(spec: c.MetricSpec) -> str:
    """The Grafana unit of a metric's values."""
    return _UNIT[spec.unit]


def rate_unit_of(spec: c.MetricSpec) -> str:
    """The Grafana unit of a metric's per-second rate."""
    return _RATE_UNIT[spec.unit]


# --- panels ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    """One panel target: PromQL, legend, and how Grafana runs it."""

    expr: str
    legend: str = ""
    instant: bool = False
    format: str = "time_series"  # or "table", "heatmap"


@dataclass
class Board:
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


def _targets(panel: Any, queries: Sequence[Query]) -> Any:
    for ref, q in zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", queries):
        target = (sdk_prometheus.Dataquery().expr(q.expr).ref_id(ref).datasource(_ds())
                  .format(m_prometheus.PromQueryFormat(q.format)))
        target = target.instant() if q.instant else target.range()
        if q.legend:
            target = target.legend_format(q.legend)
        panel = panel.with_target(target)
    return panel


def _common(panel: Any, title: str, description: str, unit: str, queries: Sequence[Query],
            w: int, h: int) -> Any:
    if len(queries) > 26:
        raise ValueError(f"panel {title!r}: at most 26 queries")
    panel = (panel.title(title).description(description).unit(unit).datasource(_ds())
             .span(w).height(h))
    return _targets(panel, queries)


def _thresholds(*steps: Step) -> Any:
    return (sdk_dashboard.ThresholdsConfig().mode(m_dashboard.ThresholdsMode.ABSOLUTE)
            .steps([m_dashboard.Threshold(value=v, color=color) for v, color in steps]))


def _dashed(*refs: str) -> list[tuple[str, list[Any]]]:
    """Overrides drawing the series of these queries as dashed lines without fill."""
    props = [m_dashboard.DynamicConfigValue(id_val="custom.lineStyle",
                                            value={"fill": "dash", "dash": [10, 10]}),
             m_dashboard.DynamicConfigValue(id_val="custom.fillOpacity", value=0)]
    return [(ref, props) for ref in refs]


def timeseries(title: str, description: str, unit: str, queries: Sequence[Query], *,
               w: int = HALF, h: int = _GRAPH_H, thresholds: Sequence[Step]
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


def stat(title: str, description: str, unit: str, query: Query, *, w: int = 4,
         thresholds: Sequence[Step] = ((None, "green"),),
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


def bargauge(title: str, description: str, unit: str, queries: Sequence[Query], *,
             w: int = HALF, h: int = _GRAPH_H, min_val: float = 0, max_val: float | None = None,
             thresholds: Sequence[Step] = ((None, "green"),)) -> Any:
    panel = _common(sdk_bargauge.Panel(), title, description, unit, queries, w, h)
    panel = (panel.display_mode(m_common.BarGaugeDisplayMode.GRADIENT)
             .orientation(m_common.VizOrientation.HORIZONTAL)
             .reduce_options(sdk_common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .min(min_val).thresholds(_thresholds(*thresholds)).show_unfilled(True))
    if max_val is not None:
        panel = panel.max(max_val)
    return panel


def table(title: str, description: str, unit: str, queries: Sequence[Query], *,
          w: int = HALF, h: int = _TABLE_H, columns: dict[str, tuple[str, str]] | None = None,
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


def heatmap(title: str, description: str, unit: str, query: Query, *, w: int = HALF,
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


# --- the dashboard ---------------------------------------------------------------------------

def _variables(p: PromQL) -> list[Any]:
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


def build(board: Board, p: PromQL) -> dict[str, Any]:
    """The dashboard JSON of an assembled board, with the variables and panel ids."""
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

