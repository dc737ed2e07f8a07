"""Latency SLOs: the spec file, counting per finished request, the in-process status, OTel."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest

from fakeai_metrics import InvalidMetricInput, LatencySLO, Telemetry, load_slos
from fakeai_metrics.testing import ManualClock, metric_value

EP = "/v1/chat/completions"
EXAMPLE = Path(__file__).resolve().parents[2] / "fakeai_metrics" / "examples" / "latency-slos.yml"

SPEC = """
slos:
  - name: chat-interactive          # [a-z0-9_-]+, unique
    objective: 0.99                 # 0 < objective < 1
    period: 30d                     # optional, default 30d
    match: {model: gpt-4o, endpoint: /v1/chat/completions}
    good_when:
      ttft_seconds: 0.5
      tpot_seconds: 0.05
      duration_seconds: 10
  - name: any_request
    objective: 0.9
    good_when: {duration_seconds: 2}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slos.yml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the spec ---------------------------------------------------------------------------------

def test_the_issue_example_loads(tmp_path):
    chat, anything = load_slos(_write(tmp_path, SPEC))
    assert chat == LatencySLO("chat-interactive", 0.99, "30d", "gpt-4o", EP, 0.5, 0.05, 10.0)
    assert anything == LatencySLO("any_request", 0.9, duration_seconds=2)
    assert anything.period == "30d" and anything.model is anything.endpoint is None
    assert chat.period_seconds == 30 * 86400


def test_period_is_canonical_and_the_shipped_example_is_valid(tmp_path):
    assert LatencySLO("a", 0.9, "720h", ttft_seconds=1).period == "30d"
    names = [s.name for s in load_slos(EXAMPLE)]
    assert names == ["chat-interactive", "mini-snappy"]


BAD = [
    ("slos: []\nextra: 1\n", "the one key 'slos'"),
    ("- name: a\n", "the one key 'slos'"),
    ("slos: {name: a}\n", "slos must be a list"),
    ("slos: [3]\n", "slos[0] must be a mapping"),
    ("slos:\n  - {name: a, objective: 0.9, good_when: {ttft_seconds: 1}, owner: me}\n",
     "slos[0]: unknown key 'owner'"),
    ("slos:\n  - {name: a, objective: 0.9, good_when: {ttft_seconds: 1, itl_seconds: 1}}\n",
     "slos[0].good_when: unknown key 'itl_seconds'"),
    ("slos:\n  - {name: a, objective: 0.9, match: {route: /x}, good_when: {ttft_seconds: 1}}\n",
     "slos[0].match: unknown key 'route'"),
    ("slos:\n  - {name: a, objective: 0.9, match: [gpt-4o], good_when: {ttft_seconds: 1}}\n",
     "slos[0].match must be a mapping"),
    ("slos:\n  - {name: a, objective: 1, good_when: {ttft_seconds: 1}}\n", "slos[0].objective"),
    ("slos:\n  - {name: a, objective: 0, good_when: {ttft_seconds: 1}}\n", "slos[0].objective"),
    ("slos:\n  - {name: a, objective: 1.5, good_when: {ttft_seconds: 1}}\n", "slos[0].objective"),
    ("slos:\n  - {name: a, objective: '0.99', good_when: {ttft_seconds: 1}}\n",
     "slos[0].objective"),
    ("slos:\n  - {name: a, objective: .nan, good_when: {ttft_seconds: 1}}\n",
     "slos[0].objective"),
    ("slos:\n  - {name: a, objective: 0.9, good_when: {ttft_seconds: -0.5}}\n",
     "slos[0].good_when.ttft_seconds"),
    ("slos:\n  - {name: a, objective: 0.9, good_when: {tpot_seconds: 0}}\n",
     "slos[0].good_when.tpot_seconds"),
    ("slos:\n  - {name: a, objective: 0.9, good_when: {duration_seconds: .inf}}\n",
     "slos[0].good_when.duration_seconds"),
    ("slos:\n  - {name: a, objective: 0.9, good_when: {duration_seconds: true}}\n",
     "slos[0].good_when.duration_seconds"),
    ("slos:\n  - {name: a, objective: 0.9, good_when: {}}\n", "slos[0].good_when needs"),
    ("slos:\n  - {name: a, objective: 0.9}\n", "slos[0].good_when needs"),
    ("slos:\n  - {name: Chat, objective: 0.9, good_when: {ttft_seconds: 1}}\n", "slos[0].name"),
    ("slos:\n  - {name: 'a b', objective: 0.9, good_when: {ttft_seconds: 1}}\n", "slos[0].name"),
    ("slos:\n  - {name: '', objective: 0.9, good_when: {ttft_seconds: 1}}\n", "slos[0].name"),
    ("slos:\n  - {name: no, objective: 0.9, good_when: {ttft_seconds: 1}}\n", "slos[0].name"),
    ("slos:\n  - {objective: 0.9, good_when: {ttft_seconds: 1}}\n", "slos[0]: missing name"),
    ("slos:\n  - {name: a, good_when: {ttft_seconds: 1}}\n", "slos[0]: missing objective"),
    ("slos:\n  - {name: a, objective: 0.9, period: 30x, good_when: {ttft_seconds: 1}}\n",
     "slos[0].period"),
    ("slos:\n  - {name: a, objective: 0.9, period: 3d, good_when: {ttft_seconds: 1}}\n",
     "slos[0].period '3d' must be longer than the longest alert window"),
    ("slos:\n  - {name: a, objective: 0.9, match: {model: ''}, good_when: {ttft_seconds: 1}}\n",
     "slos[0].match.model"),
    ("slos:\n  - {name: a, objective: 0.9, good_when: {ttft_seconds: 1}}\n"
     "  - {name: a, objective: 0.8, good_when: {ttft_seconds: 2}}\n",
     "slos[1].name 'a' is used twice"),
    ("slos: [\n", "not valid YAML"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[m for _, m in BAD])
def test_a_bad_spec_names_the_field(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(InvalidMetricInput) as excinfo:
        load_slos(path)
    assert message in str(excinfo.value)
    assert str(path) in str(excinfo.value)


def test_a_bad_spec_leaves_the_registry_untouched(tmp_path):
    registry = CollectorRegistry()
    bad = _write(tmp_path, "slos:\n  - {name: a, objective: 2, good_when: {ttft_seconds: 1}}\n")
    with pytest.raises(InvalidMetricInput, match="objective"):
        Telemetry(registry=registry, slos=bad)
    with pytest.raises(InvalidMetricInput, match="used twice"):
        Telemetry(registry=registry, slos=[LatencySLO("a", 0.9, ttft_seconds=1)] * 2)
    with pytest.raises(InvalidMetricInput, match="slo_window_seconds"):
        Telemetry(registry=registry, slo_window_seconds=0)
    assert generate_latest(registry) == b""
    Telemetry(registry=registry, slos=_write(tmp_path, SPEC))  # the corrected retry works


def test_latency_slo_validates_when_built_in_python():
    with pytest.raises(InvalidMetricInput, match="good_when.ttft_seconds"):
        LatencySLO("a", 0.9, ttft_seconds=-1)
    with pytest.raises(InvalidMetricInput, match="objective"):
        LatencySLO("a", True, ttft_seconds=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidMetricInput, match="must be a LatencySLO"):
        Telemetry(registry=CollectorRegistry(), slos=[{"name": "a"}])  # type: ignore[list-item]


# --- counting ---------------------------------------------------------------------------------

@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def _hub(clock: ManualClock, *slos: LatencySLO, **kwargs) -> Telemetry:
    return Telemetry(registry=CollectorRegistry(), clock=clock, wall_clock=clock, slos=slos,
                     **kwargs)


def _counts(t: Telemetry, name: str) -> tuple[float, float]:
    r = t.registry
    return (metric_value(r, "fakeai_slo_requests_total", {"slo": name}),
            metric_value(r, "fakeai_slo_good_requests_total", {"slo": name}))


def _stream(t: Telemetry, clock: ManualClock, sid: str, ttft: float, gaps: list[float],
            model: str = "gpt-4o", fail: bool = False, endpoint: str = EP) -> None:
    t.start_stream(sid, endpoint=endpoint, model=model)
    clock.advance(ttft)
    t.stream_token(sid)
    for gap in gaps:
        clock.advance(gap)
        t.stream_token(sid)
    if fail:
        t.fail_stream(sid, message="client went away")
    else:
        t.finish_stream(sid)


def test_series_exist_at_zero_from_the_start(clock):
    t = _hub(clock, LatencySLO("a", 0.9, ttft_seconds=1))
    assert _counts(t, "a") == (0, 0)


def test_a_bound_equal_to_the_value_is_good(clock):
    # Binary fractions, so the measured values equal the bounds exactly.
    t = _hub(clock, LatencySLO("s", 0.9, ttft_seconds=0.5, tpot_seconds=0.125,
                               duration_seconds=1.0))
    _stream(t, clock, "at", ttft=0.5, gaps=[0.125, 0.125, 0.25])  # tpot 0.5/3 > 0.125: bad
    _stream(t, clock, "eq", ttft=0.5, gaps=[0.125, 0.125])  # all at the bound, 0.75 s: good
    assert _counts(t, "s") == (2, 1)
    t.record_request(endpoint=EP, model="gpt-4o", latency_s=1.0)  # duration at the bound
    t.record_request(endpoint=EP, model="gpt-4o", latency_s=1.0000001)
    assert _counts(t, "s") == (4, 2)
    _stream(t, clock, "late", ttft=0.5 + 2**-20, gaps=[])  # first token just late
    assert _counts(t, "s") == (5, 2)


def test_ttft_bounds_streams_only_and_tpot_streams_of_two_tokens(clock):
    t = _hub(clock, LatencySLO("s", 0.9, ttft_seconds=0.25, tpot_seconds=0.001))
    t.record_request(endpoint=EP, model="gpt-4o", latency_s=5.0)  # not streamed: no TTFT
    _stream(t, clock, "one", ttft=0.25, gaps=[])  # one token: no TPOT
    assert _counts(t, "s") == (2, 2)
    _stream(t, clock, "two", ttft=0.25, gaps=[0.002])  # two tokens: TPOT 2 ms > 1 ms
    assert _counts(t, "s") == (3, 2)


def test_a_stream_without_tokens_waited_its_whole_duration_for_one(clock):
    t = _hub(clock, LatencySLO("s", 0.9, ttft_seconds=0.5))
    for sid, wait in (("quick", 0.5), ("slow", 0.75)):
        t.start_stream(sid, endpoint=EP, model="gpt-4o")
        clock.advance(wait)
        t.finish_stream(sid, completion_tokens=0)
    assert _counts(t, "s") == (2, 1)


def test_failures_are_matched_and_bad(clock):
    t = _hub(clock, LatencySLO("s", 0.9, duration_seconds=10))
    t.record_failure(endpoint=EP, model="gpt-4o", status_code=503, error_type="Overloaded",
                     latency_s=0.01)
    t.record_failure(endpoint=EP, model=None, status_code=400, error_type="BadRequest")
    _stream(t, clock, "broken", ttft=0.1, gaps=[0.01], fail=True)
    assert _counts(t, "s") == (3, 0)


def test_only_matching_requests_count(clock):
    t = _hub(clock, LatencySLO("chat-4o", 0.9, model="gpt-4o", endpoint=EP, duration_seconds=1),
             LatencySLO("mini", 0.9, model="gpt-4o-mini", duration_seconds=1),
             LatencySLO("everything", 0.9, duration_seconds=1))
    t.record_request(endpoint=EP, model="gpt-4o", latency_s=0.5)
    t.record_request(endpoint=EP + "?stream=false", model="gpt-4o", latency_s=0.5)  # same route
    t.record_request(endpoint="/v1/embeddings", model="gpt-4o", latency_s=0.5)
    t.record_request(endpoint="/v1/embeddings", model="gpt-4o-mini", latency_s=2)
    t.record_failure(endpoint=EP, model=None, status_code=401, error_type="AuthError")
    _stream(t, clock, "x", ttft=0.1, gaps=[0.1], model="gpt-4o-mini")
    assert _counts(t, "chat-4o") == (2, 2)
    assert _counts(t, "mini") == (2, 1)
    assert _counts(t, "everything") == (6, 4)


def test_tokens_do_no_slo_work(clock):
    t = _hub(clock, LatencySLO("s", 0.9, ttft_seconds=1))
    t.start_stream("a", endpoint=EP, model="gpt-4o")
    for _ in range(100):
        clock.advance(0.01)
        t.stream_token("a")
    assert _counts(t, "s") == (0, 0)  # judged once, when the stream ends
    t.finish_stream("a")
    assert _counts(t, "s") == (1, 1)


# --- slo_status: windows and exactness ----------------------------------------------------------

def test_status_counts_the_window_exactly_at_its_boundary():
    clock = ManualClock(start=1000.0)  # a slot boundary (10 s slots)
    t = _hub(clock, LatencySLO("s", 0.99, duration_seconds=1), slo_window_seconds=300)
    for _ in range(99):
        t.record_request(endpoint=EP, model="m", latency_s=0.5)
    t.record_request(endpoint=EP, model="m", latency_s=2.0)
    status = t.slo_status("s")
    assert (status.total_requests, status.good_requests, status.bad_requests) == (100, 99, 1)
    assert status.good_ratio == 0.99
    assert status.violated is False  # 99/100 at 99 % is on target, not 0.98999...
    assert status.burn_rate == pytest.approx(1.0)
    # the oldest slot counted at t=1290 still holds t=1000; at t=1300 it has left the window
    clock.advance(290)
    assert t.slo_status("s").total_requests == 100
    assert t.slo_status("s").seconds_covered == 290.0
    assert t.slo_status("s").goodput_per_second == 99 / 290
    clock.advance(10)
    empty = t.slo_status("s")
    assert (empty.total_requests, empty.good_ratio, empty.burn_rate) == (0, 1.0, 0.0)
    assert empty.violated is False and empty.goodput_per_second == 0.0


def test_goodput_per_second_counts_only_the_time_the_tracker_has_lived():
    clock = ManualClock(start=1003.0)  # mid-slot
    t = _hub(clock, LatencySLO("s", 0.9, duration_seconds=1), slo_window_seconds=300)
    assert t.slo_status("s").goodput_per_second == 0.0  # no time yet, no division by zero
    clock.advance(4.0)
    for latency in (0.5, 0.5, 0.5, 2.0):
        t.record_request(endpoint=EP, model="m", latency_s=latency)
    s = t.slo_status("s")
    assert s.seconds_covered == 4.0
    assert (s.goodput_per_second, s.throughput_per_second) == (0.75, 1.0)


def test_status_one_more_bad_request_violates():
    clock = ManualClock(start=1000.0)
    t = _hub(clock, LatencySLO("s", 0.999, duration_seconds=1))
    for _ in range(998):
        t.record_request(endpoint=EP, model="m", latency_s=0.5)
    t.record_request(endpoint=EP, model="m", latency_s=5)
    t.record_request(endpoint=EP, model="m", latency_s=0.5)
    assert t.slo_status("s").violated is False  # 999 / 1000 at 99.9 %
    t.record_failure(endpoint=EP, model="m", status_code=500, error_type="E")
    s = t.slo_status("s")
    assert s.violated is True and s.bad_requests == 2 and s.total_requests == 1001
    assert s.to_dict()["name"] == "s"


def test_status_of_an_unknown_slo_is_refused(clock):
    t = _hub(clock, LatencySLO("s", 0.9, duration_seconds=1))
    with pytest.raises(InvalidMetricInput, match="'nope' is no latency SLO"):
        t.slo_status("nope")


# --- OpenTelemetry ----------------------------------------------------------------------------

def test_otel_counters_agree_with_prometheus(clock):
    reader = InMemoryMetricReader()
    t = Telemetry(registry=CollectorRegistry(), clock=clock, wall_clock=clock,
                  meter_provider=MeterProvider(metric_readers=[reader]),
                  slos=[LatencySLO("fast", 0.9, duration_seconds=0.5),
                        LatencySLO("slow", 0.9, duration_seconds=5)])
    for latency in (0.1, 0.4, 0.6, 3.0, 7.0):
        t.record_request(endpoint=EP, model="gpt-4o", latency_s=latency)
    points = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name.startswith("fakeai.slo.") and "burn" not in metric.name:
                    for p in metric.data.data_points:
                        points[(metric.name, p.attributes["fakeai.slo.name"])] = p.value
                    assert metric.data.is_monotonic
    assert points == {("fakeai.slo.requests", "fast"): 5, ("fakeai.slo.good_requests", "fast"): 2,
                      ("fakeai.slo.requests", "slow"): 5, ("fakeai.slo.good_requests", "slow"): 4}
    for (name, slo), value in points.items():
        prom = "fakeai_slo_requests_total" if name == "fakeai.slo.requests" \
            else "fakeai_slo_good_requests_total"
        assert metric_value(t.registry, prom, {"slo": slo}) == value


# --- several worker processes -------------------------------------------------------------------

MP_WORKER = """
from prometheus_client import CollectorRegistry
from fakeai_metrics import LatencySLO, Telemetry

t = Telemetry(registry=CollectorRegistry(),
              slos=[LatencySLO("s", 0.9, duration_seconds=1), LatencySLO("idle", 0.9,
                                                                       model="nobody",
                                                                       duration_seconds=1)])
assert t.goodput.multiprocess, "PROMETHEUS_MULTIPROC_DIR not seen"
for i in range(30):
    t.record_request(endpoint="/v1/chat/completions", model="m", latency_s=0.5 if i % 3 else 2.0)
"""


@pytest.mark.slow  # two Python worker processes
def test_workers_counts_add_up_in_multiprocess_mode(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    from fakeai_metrics.server import scrape_registry

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", MP_WORKER], env=env, check=True, timeout=120)
    registry = scrape_registry()
    assert metric_value(registry, "fakeai_slo_requests_total", {"slo": "s"}) == 60
    assert metric_value(registry, "fakeai_slo_good_requests_total", {"slo": "s"}) == 40
    # an SLO nothing matched is in the files at 0, as in one process
    assert metric_value(registry, "fakeai_slo_requests_total", {"slo": "idle"}) == 0
