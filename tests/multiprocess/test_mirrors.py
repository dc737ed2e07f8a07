"""Mirrored instruments write prometheus_client's file records directly: the records must be those
a bare prometheus_client child writes, across threads and forks (see multiprocess/mirrors.py).

These tests fail when a prometheus_client upgrade changes the internals the mirrors rely on."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import textwrap
import threading

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, values
from prometheus_client.mmap_dict import MmapedDict

from fakeai_metrics import Telemetry, catalog as c
from fakeai_metrics.multiprocess import mirrors, scrape_registry
from fakeai_metrics.testing import metric_value

EP = "/v1/chat/completions"


@pytest.fixture
def mmap_values(tmp_path, monkeypatch):
    """prometheus_client's multiprocess values with its default process identifier (os.getpid),
    writing into ``tmp_path``."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())
    return tmp_path


def file_values(path, kind: str, prefix: str) -> dict[tuple, float]:
    """This process's ``kind`` file: (metric, sample, labels) -> value, for metrics named
    ``prefix``..., with the prefix taken off."""
    out = {}
    for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(
            str(path / f"{kind}_{os.getpid()}.db")):
        metric, sample, labels, _help = json.loads(key)
        if metric.startswith(prefix):
            assert timestamp == 0.0
            out[(metric[len(prefix):], sample[len(prefix):], tuple(sorted(labels.items())))] = value
    return out


def edge_values(bounds: tuple[float, ...]) -> list[float]:
    """Every bound, the floats just either side of it, zero of both signs, negatives, values
    below and above all bounds, and random ones between."""
    rng = random.Random(15)
    out = [0.0, -0.0, -1.0, 1e-12, 1e12, bounds[-1] * 3]
    for b in bounds:
        out += [b, math.nextafter(b, -math.inf), math.nextafter(b, math.inf)]
    return out + [rng.uniform(0, bounds[-1] * 1.2) for _ in range(200)]


def test_histogram_records_are_a_bare_childs(mmap_values):
    records = 0
    for spec in (c.ITL, c.REQUEST_DURATION, c.TPS):
        records += len(spec.buckets) + 2  # the bounds', +Inf's and the sum's
        ours = mirrors.MirroredHistogram(spec, "ours")
        bare = prometheus_client.Histogram(f"bare_{spec.name}", spec.help, spec.labels,
                                           registry=None, buckets=spec.buckets)
        key = tuple(f"v{i}" for i in range(len(spec.labels)))
        writer = ours.mirror_of(key)
        assert isinstance(writer, mirrors._HistogramRecords), "fast path not found"
        for i, x in enumerate(edge_values(spec.buckets)):
            if i % 2:
                ours.observe(key, x)
            else:
                writer.observe(x)  # what the streaming hot path holds
            bare.labels(*key).observe(x)
        want = file_values(mmap_values, "histogram", "bare_")
        assert len(want) == records and file_values(mmap_values, "histogram", "ours_") == want
        # prometheus_client's own child carries on from what the mirror wrote
        ours._mirror.metric.labels(*key).observe(0.0)
        bare.labels(*key).observe(0.0)
        assert file_values(mmap_values, "histogram", "ours_") == \
            file_values(mmap_values, "histogram", "bare_")


def test_counter_records_are_a_bare_childs(mmap_values):
    ours = mirrors.MirroredCounter(c.COST, "ours")
    bare = prometheus_client.Counter(f"bare_{c.COST.name}", c.COST.help, c.COST.labels,
                                     registry=None)
    rng = random.Random(4)
    for i in range(900):
        # series 6 and up only between 300 and 600: the file outgrows its first 64 KiB and is
        # remapped while the first six keep being written
        key = (f"k{i % 3}", f"m{i % 2}") if not 300 <= i < 600 else (f"k{i}", "m")
        amount = rng.choice([0, 1, 0.1, 1e-9, rng.uniform(0, 5)])
        ours.inc(key, amount)
        bare.labels(*key).inc(amount)
    assert isinstance(ours._mirror(("k0", "m0")), mirrors._CounterRecord), "fast path not found"
    assert os.path.getsize(mmap_values / f"counter_{os.getpid()}.db") > 1 << 16
    want = file_values(mmap_values, "counter", "bare_")
    assert len(want) == 306 and file_values(mmap_values, "counter", "ours_") == want
    assert ours.get(("k1", "m0")) == want[(c.COST.name.removesuffix("_total"),
                                           c.COST.name, (("api_key", "k1"), ("model", "m0")))]


@pytest.mark.parametrize("value_class", [values.MultiProcessValue(lambda: 101),
                                         values.MutexValue])
def test_other_value_classes_are_written_through_the_child(tmp_path, monkeypatch,
                                                           value_class):
    """A process identifier other than os.getpid may change without a fork, and MutexValue has
    no file: both keep prometheus_client's own writes."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", value_class)
    hist = mirrors.MirroredHistogram(c.ITL, "ours")
    counter = mirrors.MirroredCounter(c.COST, "ours")
    counter.inc(("k", "m"), 2.5)
    assert isinstance(hist.mirror_of(("m",)), prometheus_client.Histogram)
    assert isinstance(counter._mirror(("k", "m")), prometheus_client.Counter)
    assert counter._mirror(("k", "m"))._value.get() == 2.5


def test_threads_through_one_hub_lose_no_write(mmap_values):
    """The mirrors skip prometheus_client's lock: each tracker's lock must be enough."""
    t = Telemetry(registry=CollectorRegistry())
    assert t.streaming.multiprocess
    threads, n = 4, 300

    def work(w: int) -> None:
        for i in range(n):
            t.record_request(endpoint=EP, model=f"m{i % 2}", latency_s=0.001 * i,
                             prompt_tokens=3, completion_tokens=2, api_key=f"sk-{i % 3}")
            sid = f"{w}-{i}"
            t.start_stream(sid, endpoint=EP, model=f"m{i % 2}", api_key="sk-0")
            for _ in range(5):
                t.stream_token(sid)
            t.finish_stream(sid)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    reg = scrape_registry()
    assert metric_value(reg, "fakeai_requests_total") == 2 * threads * n
    assert metric_value(reg, "fakeai_inter_token_latency_seconds_count") == 4 * threads * n
    assert metric_value(reg, "fakeai_tokens_total", {"type": "prompt"}) == 3 * threads * n
    assert metric_value(reg, "fakeai_request_duration_seconds_count") == 2 * threads * n


@pytest.mark.parametrize("identifier", [os.getpid, lambda: 101])
def test_two_hubs_in_one_process_add_up(tmp_path, monkeypatch, identifier):
    """Two hubs in one worker (or a tracker beside a hub) write the same file records: both
    counts are kept, whether the mirrors write the records or prometheus_client's children do."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(identifier))
    hubs = Telemetry(registry=CollectorRegistry()), Telemetry(registry=CollectorRegistry())
    for t, n in zip(hubs + hubs[:1], (10, 20, 40)):
        for i in range(n):
            t.record_request(endpoint=EP, model="m", latency_s=0.1, prompt_tokens=2,
                             api_key="sk-two")
        t.start_stream(f"s{n}", endpoint=EP, model="m")
        for _ in range(3):
            t.stream_token(f"s{n}")
    reg = scrape_registry()
    assert metric_value(reg, "fakeai_requests_total") == 70
    assert metric_value(reg, "fakeai_tokens_total", {"type": "prompt"}) == 140
    assert metric_value(reg, "fakeai_request_duration_seconds_count") == 70
    assert metric_value(reg, "fakeai_inter_token_latency_seconds_count") == 3 * 2
    assert metric_value(reg, "fakeai_streams_active") == 3


FORKING_WORKER = textwrap.dedent(f"""
    import os
    from prometheus_client import CollectorRegistry
    from fakeai_metrics import Telemetry

    t = Telemetry(registry=CollectorRegistry())
    assert t.streaming.multiprocess, "PROMETHEUS_MULTIPROC_DIR not seen"

    def requests(n):
        for _ in range(n):
            t.record_request(endpoint="{EP}", model="gpt-4o", latency_s=0.2, prompt_tokens=10,
                             completion_tokens=5, api_key="sk-fork")

    def tokens(n):
        for _ in range(n):
            t.stream_token("open")

    requests(5)
    t.start_stream("open", endpoint="{EP}", model="gpt-4o", prompt_tokens=1)
    tokens(3)  # a first token and two gaps: the stream now holds its ITL series' writer
    child = os.fork()
    if child == 0:
        requests(7)
        tokens(4)
        t.finish_stream("open")
        os._exit(0)
    assert os.waitpid(child, 0)[1] == 0
    requests(11)
    tokens(1)
    t.finish_stream("open")
    print(child)
""")


@pytest.mark.slow  # a worker process that forks
def test_a_forked_worker_writes_its_own_files(tmp_path, monkeypatch):
    """After a fork each process writes its own file from zero, open streams included: the
    scrape holds every write of both exactly once."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    out = subprocess.run([sys.executable, "-c", FORKING_WORKER], env=dict(os.environ),
                         check=True, capture_output=True, text=True, timeout=60)
    child = int(out.stdout)
    reg = scrape_registry()
    assert metric_value(reg, "fakeai_requests_total") == 5 + 7 + 11 + 2  # two finished streams
    assert metric_value(reg, "fakeai_inter_token_latency_seconds_count") == 2 + 4 + 1
    assert metric_value(reg, "fakeai_inter_token_latency_seconds_bucket",
                        {"le": "+Inf"}) == 7
    def own(kind: str, sample: str) -> list[tuple[dict, float]]:
        """The samples called ``sample`` in the child's own ``kind`` file."""
        return [(json.loads(k)[2], v) for k, v, _, _ in MmapedDict.read_all_values_from_file(
            str(tmp_path / f"{kind}_{child}.db")) if json.loads(k)[1] == sample]

    # from zero in the child's files: its 4 gaps and 7 + 1 requests, nothing of the parent's
    assert sum(v for _, v in own("histogram", "fakeai_inter_token_latency_seconds_bucket")) == 4
    assert {labels["outcome"]: v for labels, v in own("counter", "fakeai_requests_total")} == \
        {"success": 7 + 1}
