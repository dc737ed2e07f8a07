"""Finish reasons through the middleware: read from a JSON body or the stream, counted by the hub
in ``fakeai_finish_reasons_total{model, finish_reason}`` from a fixed set of values."""

from __future__ import annotations

import json

import pytest

from fakeai_metrics.asgi.openai_payloads import finish_reason
from fakeai_metrics.testing import samples
from test_middleware import (CHAT, COMPLETIONS, EMBED, MODEL, RESPONSES,  # noqa: F401
                             anyio_backend, app, framework, post)

FINISHED = "fakeai_finish_reasons_total"


def reasons(registry) -> dict[str, float]:
    """Counted finish reasons of MODEL, by reason."""
    return {dict(k)["finish_reason"]: v for k, v in samples(registry, FINISHED).items()
            if dict(k)["model"] == MODEL}


@pytest.mark.anyio
@pytest.mark.parametrize("given, counted", [("stop", "stop"), ("length", "length"),
                                            ("tool_calls", "tool_calls"),
                                            ("content_filter", "content_filter"),
                                            ("invented_by_upstream", "other"),
                                            ("sp\u00e4ter", "other")])
async def test_a_chat_body_counts_its_finish_reason(app, metrics_registry, given, counted):
    r = await post(app, CHAT, {"model": MODEL, "messages": [], "x_finish": given})
    assert r.status_code == 200
    assert reasons(metrics_registry) == {counted: 1}


@pytest.mark.anyio
@pytest.mark.parametrize("status, details, counted", [
    ("completed", None, {"stop": 1}),
    ("incomplete", {"reason": "max_output_tokens"}, {"length": 1}),
    ("incomplete", {"reason": "content_filter"}, {"content_filter": 1}),
    ("incomplete", {"reason": "something_new"}, {"other": 1}),
    ("in_progress", None, {}),  # a background response: no answer yet, nothing counted
])
async def test_a_responses_body_counts_status_and_incomplete_reason(app, metrics_registry,
                                                                    status, details, counted):
    r = await post(app, RESPONSES, {"model": MODEL, "input": "hi", "x_status": status,
                                    "x_incomplete": details})
    assert r.status_code == 200
    assert reasons(metrics_registry) == counted


@pytest.mark.anyio
async def test_streams_count_the_reason_of_their_finish_chunk(app, metrics_registry):
    await post(app, CHAT, {"model": MODEL, "stream": True, "x_tokens": 3})  # "stop"
    await post(app, COMPLETIONS, {"model": MODEL, "prompt": "x", "stream": True,
                                  "x_tokens": 2})  # "length"
    await post(app, RESPONSES, {"model": MODEL, "input": "x", "stream": True,
                                "x_tokens": 2})  # response.completed: stop
    assert reasons(metrics_registry) == {"stop": 2, "length": 1}


@pytest.mark.anyio
async def test_requests_without_a_finish_reason_and_failures_count_none(app, metrics_registry):
    await post(app, EMBED, {"model": "text-embedding-3-small", "input": "x"})
    await post(app, CHAT, {"model": MODEL, "x_scenario": "rate_limited"})
    await post(app, CHAT, {"model": MODEL, "stream": True, "x_scenario": "error_event"})
    assert samples(metrics_registry, FINISHED) == {}


def _body(obj) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize("body, expected", [
    (_body({"choices": [{"index": 0, "finish_reason": "length"},
                        {"index": 1, "finish_reason": "stop"}]}), "length"),  # choices[0]'s
    (_body({"choices": [{"message": {"content": '"finish_reason": "tool_calls"'},
                         "finish_reason": "stop"}]}), "stop"),  # text in a string is not a key
    (_body({"choices": [{"finish_reason": None}]}), None),
    (_body({"choices": [{"finish_reason": 'a"b'}]}), "other"),
    (_body({"choices": [{"finish_reason": ""}]}), "other"),
    (_body({"object": "list", "data": []}), None),
    (_body({"object": "response", "status": "failed", "incomplete_details": None}), None),
    (_body({"object": "response", "status": "incomplete"}), "other"),
    (b"not json", None),
    (b"", None),
])
def test_finish_reason_of_a_body(body, expected):
    assert finish_reason(body) == expected


def test_a_large_body_of_another_kind_is_not_scanned_for_a_reason():
    """Only a body whose head says chat, completions or Responses is searched: megabytes of
    embeddings that happen to contain the words are not read as a finish reason."""
    vectors = b'{"object":"list","data":[' + b'{"embedding":[0.5]},' * 200_000
    tail = b'{"text":"x","finish_reason":"length"}],"usage":{"prompt_tokens":8}}'
    assert finish_reason(vectors + tail) is None
    chat_head = b'{"id":"c","object":"chat.completion","choices":[' + b'{"index":0,' + tail[1:]
    assert finish_reason(chat_head) == "length"


@pytest.mark.anyio
@pytest.mark.parametrize("given, counted", [("", "other"), ("x" * 65, "other"),
                                            ("sp\u00e4ter", "other"), (7, "stop"),
                                            ("tool_calls", "tool_calls")])
async def test_a_stream_with_an_odd_finish_reason_is_recorded_whole(app, telemetry,
                                                                    metrics_registry, given,
                                                                    counted):
    """Whatever an upstream puts in finish_reason, the stream is finished and counted (a string
    that is not a plain name counts as other; a value that is not a string keeps stop)."""
    r = await post(app, CHAT, {"model": MODEL, "stream": True, "x_tokens": 3, "x_finish": given})
    assert r.status_code == 200
    assert reasons(metrics_registry) == {counted: 1}
    assert telemetry.streaming.get_active_stream_count() == 0
    assert samples(metrics_registry, "fakeai_streams_total") == {
        (("model", MODEL), ("outcome", "completed")): 1.0}


@pytest.mark.anyio
@pytest.mark.parametrize("status, details, counted", [
    ("completed", None, {"stop": 1}),
    ("incomplete", {"reason": "max_output_tokens"}, {"length": 1}),
    ("incomplete", {"reason": "content_filter"}, {"content_filter": 1}),
    ("incomplete", None, {"other": 1}),
])
async def test_a_responses_stream_counts_how_it_ended(app, metrics_registry, status, details,
                                                     counted):
    await post(app, RESPONSES, {"model": MODEL, "input": "x", "stream": True, "x_tokens": 2,
                                "x_status": status, "x_incomplete": details})
    assert reasons(metrics_registry) == counted
