"""What an attacker can send: no input through any public path breaks ``/metrics``, no key leaks
by any path (a path segment, a message, a user id, an id brute-forced), messages of any size cost
time linear in their length, and a folded label is counted once per request."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families

from conftest import uvicorn_server
from fakeai_metrics import InvalidMetricInput, KeyIds, Telemetry, hash_key
from fakeai_metrics.demo import build_app
from fakeai_metrics.error_metrics_tracker import normalize_message
from fakeai_metrics.keys import MAX_MESSAGE, SECRET_ENV
from fakeai_metrics.testing import ManualClock, metric_value
from test_argument_matrix import VALID, _owners

EP = "/v1/chat/completions"
MODEL = "gpt-4o"


def _exposes(registry: CollectorRegistry) -> tuple[str, str]:
    """Both formats render and parse back (what a scrape needs)."""
    text = generate_latest(registry).decode("utf-8")
    om = generate_openmetrics(registry).decode("utf-8")
    list(text_string_to_metric_families(text))
    list(parse_om(om))
    return text, om


# --- 1. one request must not take /metrics down ------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("error_rate", [0.0, 1.0], ids=["served", "failed"])
def test_lone_surrogate_in_a_request_keeps_metrics_up(error_rate):
    """Over real HTTP: a JSON body whose model is ``"gpt\\ud800x"`` (valid JSON) is measured with
    the surrogate replaced, and /metrics keeps answering 200 in both formats."""
    registry = CollectorRegistry(auto_describe=True)
    telemetry = Telemetry(registry=registry)
    app = build_app(telemetry, registry, random.Random(1), error_rate)
    hostile = b'{"model": "gpt\\ud800x", "messages": [{"content": "hi \\udfff"}]'
    with uvicorn_server(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        for stream in (b"false", b"true"):
            r = client.post(EP, content=hostile + b', "stream": ' + stream + b"}",
                            headers={"content-type": "application/json"})
            assert r.status_code in (200, 429, 500)
        for accept in ("text/plain", "application/openmetrics-text; version=1.0.0"):
            r = client.get("/metrics", headers={"accept": accept})
            assert r.status_code == 200, r.text
        text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    models = {s.labels["model"] for s in families["fakeai_requests"].samples}
    assert models == {"gpt\ufffdx"}
    assert sum(s.value for s in families["fakeai_requests"].samples
               if s.name == "fakeai_requests_total") == 2


@pytest.mark.parametrize("argument, call", [
    ("model", lambda t, x: t.record_request(endpoint=EP, model=x, latency_s=0.1)),
    ("endpoint", lambda t, x: t.record_request(endpoint=x, model=MODEL, latency_s=0.1)),
    ("error_type", lambda t, x: t.errors.record_error(EP, 500, x)),
    ("api_key", lambda t, x: t.errors.record_error(EP, 500, "E", api_key=x)),
    ("api_key", lambda t, x: t.cost.record_usage(x, MODEL, EP, 1, 1)),
])
def test_unencodable_label_is_refused_before_it_takes_a_cap_slot(argument, call):
    registry = CollectorRegistry(auto_describe=True)
    t = Telemetry(registry=registry, label_limits={"models": 1, "endpoints": 1,
                                                   "api_keys": 1, "error_types": 1})
    with pytest.raises(InvalidMetricInput, match=argument):
        call(t, "gpt\ud800x")
    assert all(not admitted for admitted in t.limits._admitted.values())
    _exposes(registry)
    call(t, "fine")  # the slot is still free: the valid value is admitted, not folded
    assert "\"__other__\"" not in _exposes(registry)[0]


_TEXT = st.lists(st.one_of(st.characters(), st.sampled_from(
    ["\ud800", "\udfff", "\x00", "\n", '"', "\\", "{", "}", "=", " ", "\u2028"])),
    max_size=12).map("".join)
_STRING_ARGS = {name for kwargs in VALID.values() for name, value in kwargs.items()
                if isinstance(value, str)}


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(sorted(VALID)), st.sampled_from(sorted(_STRING_ARGS)),
                          _TEXT), max_size=25))
def test_no_input_through_any_public_path_breaks_the_exposition(calls):
    clock = ManualClock()
    registry = CollectorRegistry(auto_describe=True)
    t = Telemetry(registry=registry, clock=clock, wall_clock=clock)
    t.start_stream("stream-open", endpoint=EP, model=MODEL, prompt_tokens=10,
                   api_key="sk-live-key-1")
    for qualified, argument, text in calls:
        kwargs = dict(VALID[qualified])
        if argument in kwargs:
            kwargs[argument] = text
        try:
            getattr(_owners()[qualified.split(".")[0]](t), qualified.split(".")[1])(**kwargs)
        except InvalidMetricInput:
            pass
        clock.advance(0.01)
    _exposes(registry)


# --- 2. keys do not leak -------------------------------------------------------------------------

KEY = "Zq7pLm2xVb9nRt4kWc8s"   # no sk- prefix: only a key-shaped token, or the api_key, tells


def _everything(t: Telemetry) -> str:
    """Every view a caller can read, and the exposition, as one text."""
    views = [t.cost.get_summary(), t.cost.get_cost_by_key(KEY), t.models.get_all_models_stats(),
             t.metrics.get_metrics(), t.errors.get_metrics(),
             t.errors.get_recent_errors(limit=1000),
             t.errors.get_error_patterns(min_count=1, recent_only=False),
             t.streaming.get_metrics().to_dict()]
    return repr(views) + generate_latest(t.registry).decode()


@pytest.mark.parametrize("passed_as", ["api_key", "nothing"])
def test_a_key_in_a_path_segment_is_not_exported_or_returned(telemetry, metrics_clock, passed_as):
    api_key = KEY if passed_as == "api_key" else None
    path = f"/proxy/{KEY}/v1/chat/completions"
    telemetry.record_request(endpoint=path, model=MODEL, latency_s=0.1, prompt_tokens=3,
                             completion_tokens=2, api_key=api_key)
    telemetry.record_failure(endpoint=path, model=MODEL, status_code=401, error_type="auth",
                             api_key=api_key)
    telemetry.start_stream("s", endpoint=path, model=MODEL, api_key=api_key)
    metrics_clock.advance(0.1)
    telemetry.stream_token("s")
    telemetry.finish_stream("s")
    telemetry.cost.record_usage(api_key, MODEL, path, 1, 1)
    telemetry.models.track_request(MODEL, path, 1, 1, user=api_key)
    telemetry.errors.record_error(path, 500, "E", user_id=api_key)
    everything = _everything(telemetry)
    assert KEY not in everything
    assert "/proxy/{key}/v1/chat/completions" in everything


@pytest.mark.parametrize("message, passed", [
    (f"user {KEY} is over quota", "user_id"),
    (f"bad key {KEY}", "api_key"),
    ("Incorrect API key provided: sk-proj-AbC123xyz987. You can find your key at ...", None),
    ("Authorization: Bearer tok_9f8e7d6c5b4a3 rejected", None),
    ("upstream said: api_key=hunter2hunter2 is invalid", None),
])
def test_keys_are_scrubbed_from_stored_messages(telemetry, message, passed):
    secret = {"user_id": KEY, "api_key": KEY}.get(passed or "", "")
    telemetry.errors.record_error(EP, 401, "auth", message, **({passed: KEY} if passed else {}))
    (record,) = telemetry.errors.get_recent_errors()
    (pattern,) = telemetry.errors.get_error_patterns(min_count=1)
    leaked = [s for s in ("sk-proj-AbC123xyz987", "tok_9f8e7d6c5b4a3", "hunter2hunter2", secret)
              if s and (s in repr(record) or s in repr(pattern))]
    assert not leaked, (record, pattern)
    assert record.error_message  # scrubbed, not dropped


def test_a_failed_streams_kept_message_is_scrubbed(telemetry):
    """``get_stream_details`` keeps a failed stream's message: scrubbed like an error record's."""
    telemetry.start_stream("s", endpoint=EP, model=MODEL, api_key=KEY)
    telemetry.fail_stream("s", message=f"upstream {KEY}: Authorization: Bearer tok_9f8e7d6c5b4a3")
    telemetry.streaming.start_stream("direct", MODEL)
    telemetry.streaming.fail_stream("direct", "Incorrect API key provided: sk-proj-AbC123xyz987")
    for stream_id in ("s", "direct"):
        kept = repr(telemetry.streaming.get_stream_details(stream_id))
        assert "<KEY>" in kept
        assert not [x for x in (KEY, "tok_9f8e7d6c5b4a3", "sk-proj-AbC123xyz987") if x in kept]


def test_keyed_ids_come_from_the_secret_and_agree_across_processes(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "fleet-secret")
    keyed = KeyIds()("123456")
    assert keyed.startswith("key_") and keyed != hash_key("123456")
    assert KeyIds(secret="other")("123456") != keyed
    # another process with the same secret in its environment gives the same id
    code = "from fakeai_metrics import KeyIds; print(KeyIds()('123456'))"
    env = {**os.environ, SECRET_ENV: "fleet-secret"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == keyed
    # without the secret, trying every 6-digit key finds the plain id but not the keyed one
    plain = hash_key("123456")
    assert plain in {hash_key(f"{n:06d}") for n in range(123_000, 124_000)}
    assert keyed not in {hash_key(f"{n:06d}") for n in range(123_000, 124_000)}


# --- 4. messages of any size -----------------------------------------------------------------------

def test_a_key_cut_by_the_clip_is_still_scrubbed(telemetry):
    telemetry.errors.record_error(EP, 500, "E", "y" * (MAX_MESSAGE - 10) + " sk-proj-cut-here-9")
    (record,) = telemetry.errors.get_recent_errors()
    assert "sk-proj" not in record.error_message and record.error_message.endswith("<KEY>")


def test_a_megabyte_message_is_clipped_before_any_pattern(telemetry):
    """The timing is bench/bench_messages.py's; here, what is kept (before the fix this call
    ran the old quadratic patterns over the whole megabyte: hours)."""
    message = "a@" * 500_000 + " sk-proj-tail-secret"
    telemetry.errors.record_error(EP, 500, "E", message)
    (record,) = telemetry.errors.get_recent_errors()
    assert record.error_message == message[:MAX_MESSAGE]
    (pattern,) = telemetry.errors.get_error_patterns(min_count=1)
    assert len(pattern.normalized_message) <= MAX_MESSAGE
    assert len(normalize_message(message)) <= MAX_MESSAGE


# --- 6. miscounts ------------------------------------------------------------------------------

OVERFLOW = "fakeai_label_overflow_total"


def _full_hub() -> Telemetry:
    clock = ManualClock()
    t = Telemetry(registry=CollectorRegistry(auto_describe=True), clock=clock, wall_clock=clock,
                  label_limits={"models": 1, "endpoints": 1})
    t.record_request(endpoint=EP, model=MODEL, latency_s=0.1)  # fills both caps
    return t


def _overflow(t: Telemetry, label: str) -> float:
    return metric_value(t.registry, OVERFLOW, {"label": label})


def test_a_folded_request_counts_its_overflow_once():
    t = _full_hub()
    t.record_request(endpoint="/v1/other", model="other-model", latency_s=0.1, prompt_tokens=3,
                     completion_tokens=1, api_key="sk-a")
    assert (_overflow(t, "model"), _overflow(t, "endpoint")) == (1, 1)
    t.record_failure(endpoint="/v1/other", model="other-model", status_code=500,
                     error_type="E", latency_s=0.1)
    assert (_overflow(t, "model"), _overflow(t, "endpoint")) == (2, 2)
    t.start_stream("s", endpoint="/v1/other", model="other-model")
    t.stream_token("s")
    t.finish_stream("s")
    t.start_stream("f", endpoint="/v1/other", model="other-model")
    t.fail_stream("f")
    assert (_overflow(t, "model"), _overflow(t, "endpoint")) == (4, 4)


def test_a_refused_start_stream_counts_no_overflow():
    t = _full_hub()
    for call in (lambda: t.start_stream("s", endpoint="/v1/x", model="m2", started_at=-1.0),
                 lambda: t.streaming.start_stream("s", "m2", started_at=float("nan")),
                 lambda: t.metrics.start_stream("s", "/v1/x", started_at=-1.0)):
        with pytest.raises(InvalidMetricInput, match="started_at"):
            call()
    assert (_overflow(t, "model"), _overflow(t, "endpoint")) == (0, 0)


def test_json_module_makes_the_surrogates_this_file_sends():
    """The hostile body above is valid JSON that Python decodes to a lone surrogate."""
    assert json.loads('"gpt\\ud800x"') == "gpt\ud800x"
