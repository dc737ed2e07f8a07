"""The latency-SLO dashboard: one row per SLO of the spec with goodput vs throughput, the bad
ratio per window against the objective, burn rates and the budget left. (Structure, parsing and
the house rules for every committed dashboard are test_dashboards.py's; data from a real
Prometheus is test_dashboards_live.py's.)"""

from __future__ import annotations

import pytest
from conftest import require_module

from fakeai_metrics import LatencySLO, slo
from fakeai_metrics.artifacts import dashboards

SLOS = [LatencySLO("chat", 0.9995, model="gpt-4o", ttft_seconds=0.5),
        LatencySLO("batch", 0.99, period="28d", duration_seconds=30)]
NAME = "fakeai-latency-slo.json"


@pytest.fixture(scope="module")
def board() -> dict:
    require_module("grafana_foundation_sdk", dashboards.SDK_REQUIREMENT)
    return dashboards.generate(slos=SLOS)[NAME]


def _panel(board: dict, title: str) -> dict:
    return next(p for p in board["panels"] if p["title"] == title)


def test_only_generated_with_slos():
    require_module("grafana_foundation_sdk", dashboards.SDK_REQUIREMENT)
    assert NAME not in dashboards.generate()
    plain = dashboards.generate()
    assert {k: v for k, v in dashboards.generate(slos=SLOS).items() if k != NAME} == plain


def test_one_row_per_slo_naming_its_objective_and_bounds(board):
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["chat: 99.95% over 30d good (TTFT <= 0.5 s; model gpt-4o)",
                    "batch: 99% over 28d good (duration <= 30 s; every request)"]


def test_goodput_against_throughput(board):
    panel = _panel(board, "chat: goodput vs throughput")
    assert [t["expr"] for t in panel["targets"]] == [
        'sum (rate(fakeai_slo_good_requests_total{job="$job", slo="chat"}[$__rate_interval]))',
        'sum (rate(fakeai_slo_requests_total{job="$job", slo="chat"}[$__rate_interval]))']
    assert panel["fieldConfig"]["defaults"]["unit"] == "reqps"


def test_bad_ratio_per_window_against_the_objective(board):
    panel = _panel(board, "chat: bad ratio per window vs objective")
    assert [t["legendFormat"] for t in panel["targets"]] == list(slo.ALERT_WINDOWS)
    assert panel["targets"][0]["expr"] == 'fakeai:slo_bad:ratio_rate5m{job="$job", slo="chat"}'
    steps = [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, 0.0005]
    batch = _panel(board, "batch: bad ratio per window vs objective")
    assert [s["value"] for s in batch["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [
        None, 0.01]


def test_burn_rates_against_the_alert_factors(board):
    panel = _panel(board, "batch: burn rate per window")
    assert panel["targets"][2]["expr"] == 'fakeai:slo_bad:ratio_rate1h{job="$job", slo="batch"} / 0.01'
    steps = [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, 1.0, 3.0, 6.0, 14.4]


def test_error_budget_remaining_reads_each_slos_period(board):
    stat = _panel(board, "batch: error budget remaining")
    assert stat["targets"][0]["expr"] == (
        'fakeai:slo_error_budget_remaining:ratio{job="$job", slo="batch"}')
    ratio = _panel(board, "batch: bad ratio (28d)")
    assert ratio["targets"][0]["expr"] == 'fakeai:slo_bad:ratio_rate28d{job="$job", slo="batch"}'
    assert _panel(board, "chat: error budget remaining over time")["targets"][0]["expr"] == (
        'fakeai:slo_error_budget_remaining:ratio{job="$job", slo="chat"}')
