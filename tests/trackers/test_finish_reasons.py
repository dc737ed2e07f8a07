"""``fakeai_finish_reasons_total``: the hub counts each successful request's finish reason once,
from a fixed set of values."""

from __future__ import annotations

from fakeai_metrics import Telemetry
from fakeai_metrics.catalog import FINISH_REASONS, OTHER, OTHER_FINISH_REASON
from fakeai_metrics.testing import samples

EP = "/v1/chat/completions"
FINISHED = "fakeai_finish_reasons_total"


def counted(registry) -> dict[tuple[str, str], float]:
    return {(dict(k)["model"], dict(k)["finish_reason"]): v
            for k, v in samples(registry, FINISHED).items()}


def _stream(t: Telemetry, sid: str, model: str, **finish) -> None:
    t.start_stream(sid, endpoint=EP, model=model)
    t.stream_token(sid)
    t.finish_stream(sid, **finish)


def test_finished_streams_and_requests_count_their_reason(telemetry, metrics_registry):
    _stream(telemetry, "a", "gpt-4o")  # the default: stop
    _stream(telemetry, "b", "gpt-4o", finish_reason="length")
    _stream(telemetry, "c", "gpt-4o", finish_reason="length")
    telemetry.record_request(endpoint=EP, model="gpt-4o-mini", latency_s=0.1,
                             finish_reason="tool_calls")
    telemetry.record_request(endpoint=EP, model="gpt-4o-mini", latency_s=0.1)  # none given
    assert counted(metrics_registry) == {("gpt-4o", "stop"): 1, ("gpt-4o", "length"): 2,
                                         ("gpt-4o-mini", "tool_calls"): 1}


def test_reasons_outside_the_fixed_set_are_other(telemetry, metrics_registry):
    for i, reason in enumerate([*FINISH_REASONS, "eos_token", "Stop", "abort", "x" * 200]):
        telemetry.record_request(endpoint=EP, model="m", latency_s=0.1, finish_reason=reason)
        _stream(telemetry, f"s{i}", "m", finish_reason=reason)
    assert counted(metrics_registry) == {
        **{("m", r): 2 for r in FINISH_REASONS}, ("m", OTHER_FINISH_REASON): 8}


def test_failures_count_no_reason_and_models_beyond_the_cap_are_folded(metrics_registry,
                                                                       metrics_clock):
    t = Telemetry(registry=metrics_registry, clock=metrics_clock, label_limits={"models": 1})
    t.start_stream("f", endpoint=EP, model="gpt-4o")
    t.stream_token("f")
    t.fail_stream("f")
    t.record_failure(endpoint=EP, model="gpt-4o", status_code=500, error_type="E")
    assert counted(metrics_registry) == {}
    t.record_request(endpoint=EP, model="gpt-4o", latency_s=0.1, finish_reason="stop")
    t.record_request(endpoint=EP, model="llama", latency_s=0.1, finish_reason="stop")
    assert counted(metrics_registry) == {("gpt-4o", "stop"): 1, (OTHER, "stop"): 1}


def test_a_stream_the_streaming_tracker_lost_still_counts_its_reason(telemetry,
                                                                     metrics_registry):
    telemetry.start_stream("s", endpoint=EP, model="gpt-4o")
    telemetry.streaming.reset()  # forgets the open stream; the hub still knows its route
    telemetry.finish_stream("s", finish_reason="length", completion_tokens=3)
    assert counted(metrics_registry) == {("gpt-4o", "length"): 1}


def test_reset_stats_starts_the_counts_again(telemetry, metrics_registry):
    telemetry.record_request(endpoint=EP, model="m", latency_s=0.1, finish_reason="stop")
    telemetry.models.reset_stats()
    assert counted(metrics_registry) == {}
