"""Several worker processes, one /metrics: prometheus_client's multiprocess mode sums them exactly."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, values
from prometheus_client import generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from fakeai_metrics.multiprocess import merge as multiprocess_merge
from fakeai_metrics.multiprocess.merge import MergingCollector
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


@pytest.mark.slow
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
    assert generate_latest(reg) == generate_latest(reference_registry(multiproc_dir))

    # a worker that exits is marked dead: its open stream leaves the live sum, counts stay
    mark_process_dead(procs[0].pid, str(multiproc_dir))
    reg = scrape_registry()
    assert metric_value(reg, "fakeai_streams_active") == WORKERS - 1
    assert metric_value(reg, "fakeai_requests_total") == WORKERS * REQUESTS


def reference_registry(path) -> CollectorRegistry:
    """prometheus_client's own collector over the same files: the specification of the merge."""
    reg = CollectorRegistry()
    MultiProcessCollector(reg, path=str(path))
    return reg


GAUGE_MODES = ("all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum",
               "mostrecent", "livemostrecent")


@pytest.fixture
def fake_pids(multiproc_dir, monkeypatch):
    """Set ``pid[0]`` to write prometheus_client's files as that process."""
    pid = [101]
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: pid[0]))
    return pid


@pytest.fixture
def mixed_files(multiproc_dir, fake_pids):
    """Three fake pids write every metric type and gauge mode into the multiprocess directory,
    with the odd corners a merge can get wrong: an ``le`` label on a counter (numeric or not), a
    user label named ``pid``, one gauge name in two modes, series first seen out of sorted order,
    bucket bounds 0.0 and -0.0, and help texts that differ between series."""
    counter = Counter("jobs", "Jobs.", ["kind"], registry=None)
    not_a_bucket = Counter("odd", "A counter with an le label.", ["le"], registry=None)
    hist = Histogram("lat_seconds", "Latency.", ["model"], buckets=(0.1, 0.5, 2.5),
                     registry=None)
    zero = Histogram("zero", "Bound 0.0.", buckets=(0.0, 1.0), registry=None)
    minus_zero = Histogram("minus_zero", "Bound -0.0.", buckets=(-0.0, 1.0), registry=None)
    summary = Summary("size_bytes", "Sizes.", ["route"], registry=None)
    gauges = {mode: Gauge(f"g_{mode}", f"Gauge {mode}.", ["k"], multiprocess_mode=mode,
                          registry=None) for mode in GAUGE_MODES}
    user_pid = Gauge("queue_depth", "A user label named pid.", ["pid"],
                     multiprocess_mode="livesum", registry=None)
    for n, p in enumerate((101, 102, 103)):
        fake_pids[0] = p
        counter.labels("a").inc(n + 1)
        counter.labels(f"only-{p}").inc(0.25)
        not_a_bucket.labels("1.0").inc(n)
        not_a_bucket.labels("fast").inc()
        for x in (0.05, 0.3 * (n + 1), 3.0):
            hist.labels("m1").observe(x)
        hist.labels(f"m{200 - p}").observe(0.2)  # m99, m98, m97: not in sorted order
        zero.observe(-1.0)
        minus_zero.observe(0.5)
        summary.labels("/v1").observe(10.0 * n)
        for mode, g in gauges.items():
            g.labels("x").set(n - 1.5)
            g.labels(f"y{p % 2}").set(7.0 * n)
        user_pid.labels(f"user-{p % 2}").set(n + 1)
        Counter("helped", f"Help as deployed by {p}.", ["kind"], registry=None).labels(
            f"k{p}").inc()  # the first key's help is the family's
    # one name in two modes, made last so that only pid 103's two files hold it: the mode of
    # whichever file is read last decides (a pid change writes every value into the new files)
    for a, b in (("sum", "max"), ("all", "liveall")):
        for i, mode in enumerate((a, b)):
            Gauge(f"two_modes_{a}", "One name, two modes.", registry=None,
                  multiprocess_mode=mode).set(5 - 2 * i)
    return multiproc_dir


def test_merge_matches_prometheus_client_for_every_type_and_mode(mixed_files, monkeypatch):
    """Our collector's scrape is byte for byte prometheus_client's, warm or cold, before and
    after a worker is marked dead, without handing any of it to prometheus_client's merge."""
    def not_here(*args, **kwargs):
        raise AssertionError("fell back to MultiProcessCollector.merge")
    monkeypatch.setattr(MergingCollector, "merge", staticmethod(not_here))
    ours = CollectorRegistry()
    merging = MergingCollector(ours)
    reference = reference_registry(mixed_files)
    text = generate_latest(reference)
    assert b'jobs_total{kind="a"} 6.0' in text and b'g_livesum{k="x"} -1.5' in text
    assert generate_latest(ours) == text
    memo = merging._keys
    assert generate_latest(ours) == text and merging._keys is memo  # warm: keys from the memo
    monkeypatch.setattr(multiprocess_merge, "MAX_KEYS", 3)
    assert generate_latest(ours) == text and merging._keys is not memo  # overfull: restarted

    mark_process_dead(102, str(mixed_files))
    text = generate_latest(reference)
    assert b'g_livesum{k="x"} -1.0' in text  # -1.5 + 0.5: pids 101 and 103 remain
    assert generate_latest(ours) == text


def test_concurrent_scrapes_with_a_restarting_memo_agree(mixed_files, monkeypatch):
    """Scrapes from several threads (prometheus_client's HTTP server runs one per request) while
    the memo restarts on every scrape all read the same text."""
    monkeypatch.setattr(multiprocess_merge, "MAX_KEYS", 1)
    ours = CollectorRegistry()
    MergingCollector(ours)
    text = generate_latest(reference_registry(mixed_files))
    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(lambda _: generate_latest(ours), range(200)))
    assert texts == [text] * 200


def _help_drift(pid: list[int], path) -> None:
    """One series under two help texts: summed per key first, 1e16 + 1 - 1e16 would be 1.0."""
    for p, x in ((101, 1e16), (102, 1.0), (103, -1e16)):
        pid[0] = p
        Summary("drift", f"Help of deploy {p % 2}.", registry=None).observe(x)


def _two_types(pid: list[int], path) -> None:
    """One name in a counter file and a gauge file (an old deploy's files)."""
    for p in (101, 102):
        pid[0] = p
        Counter("twin", "A counter.", registry=None).inc(p)
        Gauge("twin", "A gauge of the same name.", registry=None,
              multiprocess_mode="livesum").set(1)


def _write(path, file: str, metric: str, sample: str, labels: dict[str, str],
           value: float) -> None:
    store = MmapedDict(str(path / file))
    store.write_value(mmap_key(metric, sample, list(labels), list(labels.values()), "Help."),
                      value, 0.0)
    store.close()


def _minus_zero_in_a_file(pid: list[int], path) -> None:
    """-0.0 written straight into counter files: summed from 0.0 it prints 0.0."""
    for p in (101, 102):
        _write(path, f"counter_{p}.db", "neg", "neg_total", {}, -0.0)


def _le_spelled_two_ways(pid: list[int], path) -> None:
    """One bucket under le="1" and le="1.0": handed to prometheus_client, which sums them."""
    for p, le, x in ((101, "1", 1.0), (102, "1.0", 2.0), (103, "1", 4.0)):
        _write(path, f"histogram_{p}.db", "h", "h_bucket", {"le": le}, x)


@pytest.mark.parametrize("write", [_help_drift, _two_types, _le_spelled_two_ways,
                                   _minus_zero_in_a_file])
def test_directories_from_odd_deploys_match_too(multiproc_dir, fake_pids, write):
    """Drift, two types and two spellings are handed to prometheus_client's merge; the result
    must be its own."""
    write(fake_pids, multiproc_dir)
    text = generate_latest(reference_registry(multiproc_dir))
    ours = CollectorRegistry()
    MergingCollector(ours)
    assert generate_latest(ours) == text


def test_vanished_files_are_handled_as_prometheus_client_does(mixed_files, monkeypatch):
    """A live gauge file deleted between the glob and the read is skipped; any other raises."""
    real_glob = glob.glob
    ours = CollectorRegistry()
    MergingCollector(ours)
    reference = reference_registry(mixed_files)
    for gone, raises in (("gauge_livesum_999.db", False), ("counter_999.db", True)):
        monkeypatch.setattr(glob, "glob", lambda pattern: real_glob(pattern) + [
            os.path.join(str(mixed_files), gone)])
        if raises:
            for registry in (reference, ours):
                with pytest.raises(FileNotFoundError):
                    generate_latest(registry)
        else:
            assert generate_latest(ours) == generate_latest(reference)
