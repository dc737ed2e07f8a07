"""Several worker processes, one /metrics: prometheus_client's multiprocess mode sums them exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from prometheus_client.multiprocess import mark_process_dead

from fakeai_metrics.server import scrape_registry
from fakeai_metrics.testing import metric_value

WORKERS, REQUESTS = 4, 300
EP = "/v1/chat/completions"

WORKER = textwrap.dedent(f"""
    import sys
    from prometheus_client import CollectorRegistry
    from fakeai_metrics import Telemetry

    t = Telemetry(registry=CollectorRegistry())
    assert t.cost.multiprocess, "PROMETHEUS_MULTIPROC_DIR not seen"
    t.cost.set_budget("sk-shared-secret", 1000.0, alert_threshold=0.5)
    for i in range({REQUESTS}):
        if i % 10 == 0:
            t.record_failure(endpoint="{EP}", model="gpt-4o", status_code=500,
                             error_type="InternalServerError", latency_s=0.01)
        elif i % 3 == 0:
            t.start_stream(f"s{{i}}", endpoint="{EP}", model="gpt-4o", prompt_tokens=7,
                           api_key="sk-shared-secret")
            for _ in range(4):
                t.stream_token(f"s{{i}}")
            t.finish_stream(f"s{{i}}")
        else:
            t.record_request(endpoint="{EP}", model="gpt-4o", latency_s=0.2, prompt_tokens=10,
                             completion_tokens=5, api_key="sk-shared-secret")
    t.start_stream("left-open", endpoint="{EP}", model="gpt-4o")
    print(t.cost.get_total_cost())
""")


@pytest.fixture
def multiproc_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    return tmp_path


def test_four_workers_sum_exactly(multiproc_dir):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(WORKERS)]
    costs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=60)
            assert p.returncode == 0
            costs.append(float(out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    reg = scrape_registry()
    errors = len(range(0, REQUESTS, 10))
    streams = sum(1 for i in range(REQUESTS) if i % 10 and i % 3 == 0)
    assert metric_value(reg, "fakeai_requests_total") == WORKERS * REQUESTS
    assert metric_value(reg, "fakeai_requests_total", {"outcome": "error"}) == WORKERS * errors
    assert metric_value(reg, "fakeai_inter_token_latency_seconds_count") == WORKERS * streams * 3
    assert metric_value(reg, "fakeai_request_duration_seconds_count") == WORKERS * REQUESTS
    # failures took 0.01 s and streams next to nothing: below 0.15 s; the rest took 0.2 s
    assert metric_value(reg, "fakeai_request_duration_seconds_bucket",
                        {"le": "0.15"}) == WORKERS * (errors + streams)
    assert metric_value(reg, "fakeai_cost_usd_total") == pytest.approx(sum(costs))
    # gauges: spend is summed over workers, the limit is one value, open streams add up
    assert metric_value(reg, "fakeai_budget_spent_usd") == pytest.approx(sum(costs))
    assert metric_value(reg, "fakeai_budget_limit_usd") == 1000.0
    assert metric_value(reg, "fakeai_budget_alert_threshold_ratio") == 0.5
    assert metric_value(reg, "fakeai_streams_active") == WORKERS
    with pytest.raises(AssertionError):  # per-process state: the rules compute it fleet-wide
        metric_value(reg, "fakeai_slo_burn_rate")

    # a worker that exits is marked dead: its open stream leaves the live sum, counts stay
    mark_process_dead(procs[0].pid, str(multiproc_dir))
    reg = scrape_registry()
    assert metric_value(reg, "fakeai_streams_active") == WORKERS - 1
    assert metric_value(reg, "fakeai_requests_total") == WORKERS * REQUESTS
