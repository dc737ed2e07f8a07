"""The Grafana dashboards: generated from the catalog, committed as generated, valid for the
Grafana foundation SDK's typed model, and every query well-formed PromQL that follows the house
rules (quantiles over summed buckets, `$__rate_interval` in every rate()). Whether the queries
return data is tests/artifacts/test_dashboards_live.py's job, against a real Prometheus."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import require_module

from fakeai_metrics import catalog
from fakeai_metrics.slo import ALERT_WINDOWS, BURN_ALERT_PAIRS, error_budget
from fakeai_metrics.artifacts import dashboards, rules

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
PROVISIONING = ROOT / "grafana" / "provisioning"
#: Where the README's `docker run` mounts grafana/dashboards/ inside the Grafana container.
CONTAINER_DASHBOARDS = "/var/lib/grafana/dashboards/fakeai"

STABLE_UIDS = {"fakeai-overview.json": "fakeai-overview", "fakeai-cost.json": "fakeai-cost",
               "fakeai-slo.json": "fakeai-slo", "fakeai-latency-slo.json": "fakeai-latency-slo"}
#: The latency SLOs the bundled rules and dashboards are generated from.
EXAMPLE_SLOS = ROOT / "fakeai_metrics" / "examples" / "latency-slos.yml"
#: Stand-ins for Grafana's variables: distinctive durations (seconds), so the parsed AST tells
#: which range a rate() used.
RATE_INTERVAL, RANGE = 1111, 2222
SAMPLE_VALUES = {"job": "fakeai", "model": ".*", "datasource": "prom",
                 "__rate_interval": f"{RATE_INTERVAL}s", "__range": f"{RANGE}s"}


def _sdk():
    return require_module("grafana_foundation_sdk", dashboards.SDK_REQUIREMENT)


def _promql():
    return require_module("promql_parser", "promql-parser==0.12.0")


def committed() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(DASHBOARD_DIR.glob("*.json"))}


def _panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _all_queries() -> list[dashboards.PanelQuery]:
    return [q for d in committed().values() for q in dashboards.panel_queries(d)]


# --- generated and committed --------------------------------------------------------------------

def test_committed_dashboards_are_the_generator_output():
    _sdk()
    generated = dashboards.generate(slos=EXAMPLE_SLOS)
    assert set(committed()) == set(generated), (
        "grafana/dashboards/ holds other files than the generator makes")
    for name, dashboard in generated.items():
        assert (DASHBOARD_DIR / name).read_text(encoding="utf-8") == dashboards.render(dashboard), (
            f"grafana/dashboards/{name} differs from the generator: run `fakeai-metrics "
            f"dashboards --slos fakeai_metrics/examples/latency-slos.yml` and commit the result")


def test_generate_is_deterministic_and_follows_the_namespace():
    _sdk()
    assert dashboards.generate() == dashboards.generate()
    acme = dashboards.generate("acme", slos=EXAMPLE_SLOS)
    assert set(acme) == {name.replace("fakeai", "acme") for name in STABLE_UIDS}
    for dashboard in acme.values():
        assert dashboard["uid"].startswith("acme-")
        for q in dashboards.panel_queries(dashboard):
            assert "fakeai_" not in q.expr and "fakeai:" not in q.expr, q
    exprs = " ".join(q.expr for d in acme.values() for q in dashboards.panel_queries(d))
    assert catalog.TTFT.full_name("acme") in exprs and "acme:sli_error:ratio_rate5m" in exprs


def test_slo_options_reach_the_slo_panels():
    _sdk()
    slo = dashboards.generate(objective=0.995, period="28d")["fakeai-slo.json"]
    exprs = [q.expr for q in dashboards.panel_queries(slo)]
    assert any(e.endswith(" / 0.005") for e in exprs)
    assert any(catalog.error_ratio_record("28d") in e for e in exprs)
    with pytest.raises(ValueError):
        dashboards.generate(objective=1.5)


def test_main_writes_the_committed_files(tmp_path, capsys):
    _sdk()
    assert dashboards.main(["--out", str(tmp_path), "--slos", str(EXAMPLE_SLOS)]) == 0
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        p.name: p.read_text() for p in DASHBOARD_DIR.glob("*.json")}
    assert dashboards.main(["--out", str(tmp_path / "x"), "--objective", "2"]) == 2
    assert "objective" in capsys.readouterr().err


def test_dashboards_are_fixed_points_of_the_sdk_model():
    """Decoding with the SDK's typed model and encoding again changes nothing: every key is one
    the Grafana schema (as the SDK generates it) knows, with a value of the right shape."""
    _sdk()
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()
    for name, dashboard in committed().items():
        again = json.loads(JSONEncoder(sort_keys=True).encode(Dashboard.from_json(dashboard)))
        assert again == dashboard, f"{name} does not survive the SDK's model"


# --- structure ------------------------------------------------------------------------------------

def test_uids_are_stable_and_ids_unique():
    boards = committed()
    assert {name: d["uid"] for name, d in boards.items()} == STABLE_UIDS
    for name, d in boards.items():
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", d["uid"]), d["uid"]
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids), name
        titles = [p["title"] for p in _panels(d)]
        assert len(titles) == len(set(titles)), f"{name}: duplicate panel titles"
        assert "id" not in d, "a provisioned dashboard must not carry an instance id"
    assert len({d["title"] for d in boards.values()}) == len(boards)


def test_every_panel_has_title_description_unit_and_the_datasource_variable():
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    for name, d in committed().items():
        for p in _panels(d):
            where = f"{name} / {p.get('title')}"
            assert p.get("title") and p.get("description"), where
            assert p["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
            assert p["datasource"] == datasource, where
            assert p["targets"], f"{where}: no query"
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs)), where
            for t in p["targets"]:
                assert t["datasource"] == datasource and t["expr"].strip(), where
            if p["type"] == "heatmap":
                assert p["options"]["yAxis"]["unit"] == p["fieldConfig"]["defaults"]["unit"]
                assert [t["format"] for t in p["targets"]] == ["heatmap"]


def test_panels_fit_the_grid_without_overlapping():
    for name, d in committed().items():
        cells: dict[tuple[int, int], str] = {}
        for p in d["panels"]:
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, (name, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, f"{name}: {p['title']} overlaps {cells[x, y]}"
                    cells[x, y] = p["title"]


def test_variables_datasource_job_and_model():
    for name, d in committed().items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert list(variables) == ["datasource", "job", "model"], name
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        job, model = variables["job"], variables["model"]
        requests = catalog.REQUESTS.full_name()
        assert job["type"] == "query" and job["query"] == f"label_values({requests}, job)"
        assert model["type"] == "query" and model["multi"] and model["includeAll"]
        assert model["query"] == f'label_values({requests}{{job="$job"}}, model)'
        assert model["allValue"] == dashboards.MODEL_ALL_VALUE
        for v in (job, model):
            assert v["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        # Every variable a query uses exists (or is Grafana's own).
        known = set(variables) | {"__rate_interval", "__range"}
        for q in dashboards.panel_queries(d):
            used = {a or b for a, b in re.findall(r"\$\{(\w+)\}|\$(\w+)", q.expr)}
            assert used <= known, (q.panel, used - known)


# --- the queries ----------------------------------------------------------------------------------

def _parse(expr: str):
    return _promql().parse(dashboards.interpolate(expr, SAMPLE_VALUES))


def _nodes(node):
    """Every node of a parsed expression."""
    found = []

    def visit(n):
        found.append(n)

    _promql().walk(node, visit)
    return found


def test_every_expr_parses():
    pp = _promql()
    failures = []
    for q in _all_queries():
        try:
            _parse(q.expr)
        except ValueError as e:
            failures.append(f"{q.dashboard} / {q.panel} / {q.ref_id}: {e}: {q.expr}")
    assert not failures, "\n".join(failures)
    with pytest.raises(ValueError):  # the parser does reject bad PromQL
        pp.parse("sum by (le (rate(x[5m]))")


def test_every_rate_reads_rate_interval_and_ranges_are_grafanas():
    pp = _promql()
    for q in _all_queries():
        # No hard-coded window: every range is Grafana's.
        assert set(re.findall(r"\[([^\]]*)\]", q.expr)) <= {"$__rate_interval", "$__range"}, q
        for node in _nodes(_parse(q.expr)):
            if isinstance(node, pp.Call) and node.func.name in ("rate", "irate"):
                assert node.args[0].range.total_seconds() == RATE_INTERVAL, q
            if isinstance(node, pp.Call) and node.func.name == "increase":
                assert node.args[0].range.total_seconds() == RANGE, q


def test_quantiles_are_computed_from_summed_buckets_and_means_from_sum_and_count():
    pp = _promql()
    quantile_panels, mean_panels = set(), set()
    for q in _all_queries():
        for node in _nodes(_parse(q.expr)):
            if isinstance(node, pp.Call) and node.func.name == "histogram_quantile":
                agg = node.args[1]
                assert isinstance(agg, pp.AggregateExpr) and str(agg.op) == "sum", q
                assert agg.modifier.type == pp.AggModifierType.By and "le" in agg.modifier.labels
                rate = agg.expr
                assert isinstance(rate, pp.Call) and rate.func.name == "rate", q
                assert rate.args[0].vector_selector.name.endswith("_bucket"), q
                quantile_panels.add(q.panel)
            # A histogram's _sum is only ever divided by the same aggregation of its _count.
            if isinstance(node, pp.VectorSelector) and node.name.endswith("_sum"):
                means = [n for n in _nodes(_parse(q.expr)) if isinstance(n, pp.BinaryExpr)
                         and str(n.op) == "/" and str(n.lhs).count(node.name) == 1]
                assert means and all(
                    str(m.rhs) == str(m.lhs).replace(node.name, node.name[:-4] + "_count")
                    for m in means), q
                mean_panels.add(q.panel)
    for title in ("Time to first token", "Inter-token latency", "Time per output token"):
        assert title in quantile_panels and title in mean_panels
    overview = committed()["fakeai-overview.json"]
    ttft = next(p for p in overview["panels"] if p["title"] == "Time to first token")
    assert [t["legendFormat"] for t in ttft["targets"]] == ["p50", "p90", "p99", "mean"]


def test_every_metric_comes_from_the_catalog_or_the_rules():
    pp = _promql()
    names = set()
    for spec in catalog.CATALOG:
        names.add(spec.full_name())
        if spec.kind == "histogram":
            names |= {spec.full_name() + s for s in ("_bucket", "_sum", "_count")}
    names |= rules.recorded(slos=EXAMPLE_SLOS) | {"ALERTS"}
    used = set()
    for q in _all_queries():
        for node in _nodes(_parse(q.expr)):
            if isinstance(node, pp.VectorSelector):
                assert node.name in names, f"{q.panel}: {node.name} is not a catalog metric or rule"
                used.add(node.name)
    # The load-bearing metrics (DESIGN section 5) all have a panel.
    for spec in (catalog.TTFT, catalog.ITL, catalog.TPOT, catalog.TPS, catalog.REQUEST_DURATION,
                 catalog.REQUESTS, catalog.TOKENS, catalog.ERRORS, catalog.COST,
                 catalog.BUDGET_LIMIT, catalog.BUDGET_SPENT, catalog.BUDGET_THRESHOLD,
                 catalog.SLO_OBJECTIVE, catalog.SLO_BURN_RATE, catalog.STREAMS_ACTIVE):
        assert any(n.startswith(spec.full_name()) for n in used), spec.full_name()


def test_burn_rate_panel_draws_every_alert_factor_and_window():
    slo = committed()["fakeai-slo.json"]
    panel = next(p for p in slo["panels"] if p["title"] == "Burn rate per window")
    steps = [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert sorted(v for v in steps if v is not None) == sorted(
        {float(w.factor) for w in BURN_ALERT_PAIRS}) == [1.0, 3.0, 6.0, 14.4]
    assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] != "off"
    assert [t["legendFormat"] for t in panel["targets"]] == list(ALERT_WINDOWS)
    budget = format(error_budget(rules.DEFAULT_OBJECTIVE).normalize(), "f")
    for t, window in zip(panel["targets"], ALERT_WINDOWS):
        assert t["expr"] == f'{catalog.error_ratio_record(window)}{{job="$job"}} / {budget}'


def test_alert_panels_select_every_bundled_alert():
    slo = committed()["fakeai-slo.json"]
    exprs = [t["expr"] for p in _panels(slo) for t in p["targets"] if "ALERTS" in t["expr"]]
    assert exprs
    for expr in exprs:
        pattern = re.search(r'alertname=~"([^"]+)"', expr).group(1)
        assert pattern == "FakeAI.*"
        assert all(re.fullmatch(pattern, alert) for alert in catalog.ALERTS)


def test_budget_panels_draw_the_threshold_and_the_limit():
    cost = committed()["fakeai-cost.json"]
    panel = next(p for p in cost["panels"] if p["title"] == "Budget used vs limit")
    exprs = [t["expr"] for t in panel["targets"]]
    assert catalog.BUDGET_THRESHOLD.full_name() in exprs[1]
    assert [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]][-1] == 1
    table = next(p for p in cost["panels"] if p["title"] == "Keys over their alert threshold")
    assert table["type"] == "table" and all(t["instant"] for t in table["targets"])


# --- provisioning ---------------------------------------------------------------------------------

def test_provisioning_points_grafana_at_prometheus_and_the_dashboards():
    yaml = require_module("yaml", "pyyaml")
    ds_files = sorted((PROVISIONING / "datasources").glob("*.yml"))
    db_files = sorted((PROVISIONING / "dashboards").glob("*.yml"))
    assert ds_files and db_files
    datasources = [d for f in ds_files for d in yaml.safe_load(f.read_text())["datasources"]]
    assert [d["type"] for d in datasources] == ["prometheus"]
    assert datasources[0]["isDefault"] is True and datasources[0]["url"].startswith("http")
    providers = [p for f in db_files for p in yaml.safe_load(f.read_text())["providers"]]
    assert len(providers) == 1 and providers[0]["type"] == "file"
    assert providers[0]["options"]["path"] == CONTAINER_DASHBOARDS
    for f in ds_files + db_files:
        assert yaml.safe_load(f.read_text())["apiVersion"] == 1
