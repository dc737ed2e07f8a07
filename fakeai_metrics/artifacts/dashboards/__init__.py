"""Grafana dashboards generated from the metric catalog and the alert rules.

``generate()`` builds the dashboards with Grafana's builder library and returns them as plain
dicts; ``write()`` puts them in a directory as JSON; ``main()`` is the ``fakeai-metrics
dashboards`` command. The files in ``grafana/dashboards/`` are this package's output with the
defaults, and a test fails when they drift. One module per dashboard (``overview``, ``cost``,
``slo_errors``, ``latency_slo``) on a query model (``promql``) and a panel model (``panels``);
each dashboard has the variables ``datasource`` (any Prometheus), ``job`` and ``model``
(multi-select, with All).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

from ... import catalog as c
from ...durations import format_duration, parse_period
from ...latency_slo import SLOSource, resolve
from .. import rules
from . import cost, latency_slo, overview, slo_errors
from .panels import MODEL_ALL_VALUE, SDK_REQUIREMENT, build, require_sdk
from .promql import PromQL
from .reading import PanelQuery, interpolate, panel_queries

__all__ = ["DEFAULT_OUT", "MODEL_ALL_VALUE", "SDK_REQUIREMENT", "PanelQuery", "generate",
           "interpolate", "main", "panel_queries", "render", "write"]

DEFAULT_OUT = "grafana/dashboards"


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
    require_sdk()
    period = format_duration(parse_period(period))
    latency = resolve(slos)
    p = PromQL(namespace, objective, period,
               rules.recorded(objective, period, namespace, slos=latency))
    tags = [namespace, "llm", "generated"]
    boards = {f"{namespace}-overview.json": overview.dashboard(p, tags),
              f"{namespace}-cost.json": cost.dashboard(p, tags),
              f"{namespace}-slo.json": slo_errors.dashboard(p, tags)}
    if latency:
        boards[f"{namespace}-latency-slo.json"] = latency_slo.dashboard(p, latency, tags)
    return {name: build(board, p) for name, board in boards.items()}


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

