"""The dashboards against a real Prometheus scraping ``fakeai-metrics demo``.

No Grafana server runs here, so this is the check that the dashboards work: every panel's
queries, with Grafana's variables replaced by values Prometheus itself reports, must return data,
and every bundled rule must evaluate cleanly. The same stack shows that a real Prometheus scrapes
the demo (``up == 1``, ``fakeai_requests_total`` present).

Bounded: the stack starts in a few seconds, the first rate windows ($__rate_interval = 15s
here, at 1 s scrapes) fill within ~20 s, and the slowest panel (keys over their budget's alert
threshold: the demo's "carol" crosses 80 % about 10 s in) is polled with a deadline.
"""

from __future__ import annotations

import json
import re
import time

import livestack
import pytest
from fakeai_metrics import catalog
from fakeai_metrics.artifacts import dashboards, rules

pytestmark = pytest.mark.slow

#: The latency SLOs the bundled rules and latency dashboard are generated from; the demo judges
#: its requests against them.
EXAMPLE_SLOS = livestack.ROOT / "fakeai_metrics" / "examples" / "latency-slos.yml"

stack = livestack.fixture(scope="module", demo_args=("--slos", str(EXAMPLE_SLOS)))

#: What Grafana would put for its own variables at 1 s scrapes: $__rate_interval is at least four
#: scrape intervals (Grafana: max($__interval + scrape interval, 4 x scrape interval)).
GRAFANA_VALUES = {"__rate_interval": "15s", "__range": "5m"}
#: How long after the demo starts every panel must have data.
PANELS_DEADLINE_S = 80.0
RANGE_WINDOW_S = 30.0


def _variable_values(stack: livestack.LiveStack, dashboard: dict, name: str,
                     chosen: dict[str, str]) -> list[str]:
    """Run the dashboard's query variable ``name`` (``label_values(<selector>, <label>)``)
    through the label-values API, as Grafana does, with the values ``chosen`` so far."""
    var = next(v for v in dashboard["templating"]["list"] if v["name"] == name)
    assert var["type"] == "query", var
    m = re.fullmatch(r"label_values\((.+), (\w+)\)", var["query"])
    assert m, f"{dashboard['uid']}: variable {name} is not label_values(...): {var['query']}"
    return stack.label_values(m.group(2), dashboards.interpolate(m.group(1), chosen))


def _grafana_regex(value: str) -> str:
    """A value of a multi-value variable as Grafana's Prometheus data source writes it inside
    ``=~"..."``: regex metacharacters escaped with a backslash that is itself escaped for the
    PromQL string."""
    return re.sub(r"([\\$^*{}\[\]'+?.()|])", r"\\\\\1", value)


def test_prometheus_scrapes_the_demo(stack):
    up = stack.wait_until(lambda: stack.query(f'up{{job="{stack.job}"}} == 1'), timeout=30,
                          what=f"up{{job={stack.job!r}}} == 1")
    assert len(up) == 1 and up[0]["metric"]["instance"] == stack.demo_url.split("//")[1]
    targets = [t for t in stack.targets() if t["labels"]["job"] == stack.job]
    assert [t["health"] for t in targets] == ["up"], targets

    requests = catalog.REQUESTS.full_name()
    series = stack.wait_until(lambda: stack.query(requests), timeout=30,
                              what=f"{requests} in Prometheus")
    for s in series:
        assert set(catalog.REQUESTS.labels) <= set(s["metric"]), s["metric"]
        assert s["metric"]["job"] == stack.job
    assert {s["metric"]["outcome"] for s in series} <= {catalog.SUCCESS, catalog.ERROR}
    assert sum(float(s["value"][1]) for s in series) > 0


def test_every_bundled_rule_is_loaded_and_healthy(stack):
    files = livestack.RULE_FILES
    expected = sum(len(re.findall(r"^\s*- (?:record|alert): ", f.read_text(), re.MULTILINE))
                   for f in files)

    def all_evaluated():
        loaded = stack.rules()
        done = len(loaded) == expected and all(r["health"] != "unknown" for r in loaded)
        return loaded if done else None

    loaded = stack.wait_until(all_evaluated, timeout=30, what="every rule evaluated once")
    assert {r["file"] for r in loaded} == {str(f) for f in files}
    unhealthy = [(r["name"], r["health"], r.get("lastError")) for r in loaded
                 if r["health"] != "ok" or r.get("lastError")]
    assert not unhealthy, f"rules not healthy: {unhealthy}"
    names = {r["name"] for r in loaded}
    assert set(catalog.ALERTS) | {catalog.ALERT_LATENCY_BURN} <= names
    assert rules.recorded(slos=EXAMPLE_SLOS) <= names


def test_every_panel_query_returns_data(stack):
    # The committed files, as Grafana loads them (test_dashboards.py keeps them = the generator).
    boards = {p.name: json.loads(p.read_text(encoding="utf-8"))
              for p in sorted((livestack.ROOT / "grafana" / "dashboards").glob("*.json"))}
    assert len(boards) == 4, sorted(boards)
    # The job variable first (Grafana resolves variables in order), then the models for it.
    overview = boards["fakeai-overview.json"]
    jobs = _variable_values(stack, overview, "job", {})
    assert stack.job in jobs, jobs
    chosen = {"job": stack.job}
    models = stack.wait_until(
        lambda: _variable_values(stack, overview, "model", chosen),
        timeout=20, what="model values")
    assert len(models) >= 2, models

    queries = [q for d in boards.values() for q in dashboards.panel_queries(d)]
    # Pass 1: model = All (what the dashboards open with); pass 2: one real model.
    passes = [("All", {**GRAFANA_VALUES, **chosen, "model": dashboards.MODEL_ALL_VALUE},
               queries),
              (models[0], {**GRAFANA_VALUES, **chosen, "model": _grafana_regex(models[0])},
               [q for q in queries if "$model" in q.expr or "${model}" in q.expr])]
    report = []
    for label, values, todo in passes:
        pending = {(q.dashboard, q.panel, q.ref_id): q for q in todo}
        deadline = stack.started + PANELS_DEADLINE_S
        while pending:
            stack.assert_running()
            now = time.time()
            for key, q in list(pending.items()):
                expr = dashboards.interpolate(q.expr, values)
                result = (stack.query(expr) if q.instant else
                          stack.query_range(expr, now - RANGE_WINDOW_S, now, 1.0))
                if livestack.has_data(result):
                    del pending[key]
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        missing = [f"{d} / {p} / {ref}: {dashboards.interpolate(pending[(d, p, ref)].expr, values)}"
                   for d, p, ref in pending]
        assert not missing, (f"model={label}: {len(missing)} of {len(todo)} queries returned no "
                             f"data after {PANELS_DEADLINE_S:g}s:\n  " + "\n  ".join(missing)
                             + "\n" + stack.logs())
        report.append(f"model={label}: {len(todo)}/{len(todo)} queries returned data")
    panels = {(q.dashboard, q.panel) for q in queries}
    print(f"\n{len(panels)} panels, {len(queries)} queries; " + "; ".join(report))


def test_goodput_is_below_throughput_where_the_example_slos_miss(stack):
    """The goodput panel's two queries, as the dashboard runs them: the example spec's TTFT
    bounds are missed now and then by the demo's models, so goodput is positive and below
    throughput for every SLO."""
    board = json.loads((livestack.ROOT / "grafana" / "dashboards" / "fakeai-latency-slo.json")
                       .read_text(encoding="utf-8"))
    values = {**GRAFANA_VALUES, "__rate_interval": "1m", "job": stack.job,
              "model": dashboards.MODEL_ALL_VALUE}
    figures = []
    for panel in board["panels"]:
        if not panel["title"].endswith(": goodput vs throughput"):
            continue
        goodput_q, throughput_q = (dashboards.interpolate(t["expr"], values)
                                   for t in panel["targets"])

        def both() -> tuple[float, float] | None:
            """The two figures once a miss is in the rate window (early on there may be none)."""
            g, t = stack.query(goodput_q), stack.query(throughput_q)
            if not (g and t):
                return None
            goodput, throughput = float(g[0]["value"][1]), float(t[0]["value"][1])
            return (goodput, throughput) if goodput < throughput else None

        goodput, throughput = stack.wait_until(both, timeout=PANELS_DEADLINE_S,
                                               what=f"{panel['title']}: goodput below throughput")
        assert 0 < goodput < throughput, (panel["title"], goodput, throughput)
        figures.append(f"{panel['title']}: goodput {goodput:.2f}/s of {throughput:.2f}/s "
                       f"({goodput / throughput:.1%} good)")
    assert len(figures) == 2, figures
    print("\n" + "\n".join(figures))
