"""Usage for every stream: the middleware asks the upstream for it and hides what that adds.

The upstream is a raw ASGI app that behaves like OpenAI and vLLM (the usage chunk only when the
request has ``stream_options.include_usage``); the client's view is every ASGI message the server
would write, compared with what the same app sends to the same request without the middleware.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from fakeai_metrics import Telemetry
from fakeai_metrics.asgi.middleware import FakeAIMetricsMiddleware
from fakeai_metrics.testing import ManualClock, metric_value

from payloads import FAKEAI, OPENAI_CHAT, VLLM_REASONING, Recorded

pytestmark = pytest.mark.anyio
CHAT = "/v1/chat/completions"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def events_of(rec: Recorded) -> list[bytes]:
    return [e + b"\n\n" for e in rec.wire.split(b"\n\n") if e]


def upstream(rec: Recorded, seen: list[dict[str, Any]], *, together: bool = False) -> Any:
    """Streams ``rec`` one event per body message (``together``: the usage chunk and [DONE] in
    one message); the usage-only chunk only when asked for, as OpenAI does."""
    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body)
        seen.append({"request": request, "headers": dict(scope["headers"]), "body": body})
        asked = (request.get("stream_options") or {}).get("include_usage") is True
        parts = [e for e in events_of(rec) if asked or b'"choices":[],"usage"' not in e]
        if together and asked:
            parts[-2:] = [parts[-2] + parts[-1]]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for part in parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    return app


async def call(app: Any, request: dict[str, Any] | bytes, piece: int = 10
               ) -> list[dict[str, Any]]:
    """Every message ``app`` sends for ``request`` (JSON-encoded unless bytes already), whose
    body arrives in ``piece``-byte messages."""
    body = request if isinstance(request, bytes) else json.dumps(request).encode()
    scope = {"type": "http", "method": "POST", "path": CHAT, "root_path": "",
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode()),
                         (b"authorization", b"Bearer sk-test-0123456789")]}
    messages = [{"type": "http.request", "body": body[i:i + piece],
                 "more_body": i + piece < len(body)} for i in range(0, len(body), piece)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    return sent


def wrapped(app: Any, **options: Any) -> tuple[Any, CollectorRegistry]:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry=registry, clock=ManualClock())
    return FakeAIMetricsMiddleware(app, telemetry=telemetry, **options), registry


def tokens(registry: CollectorRegistry, kind: str) -> float:
    return metric_value(registry, "fakeai_tokens_total", {"type": kind})


REQUEST = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("together", [False, True])
@pytest.mark.parametrize("rec", [OPENAI_CHAT, VLLM_REASONING], ids=["openai", "vllm"])
async def test_client_gets_the_messages_it_would_get_without_the_middleware(rec, together):
    bare = await call(upstream(rec, [], together=together), REQUEST)
    seen: list[dict[str, Any]] = []
    app, registry = wrapped(upstream(rec, seen, together=together))
    assert await call(app, REQUEST) == bare           # every message, every byte, same cuts
    assert seen[0]["request"]["stream_options"] == {"include_usage": True}
    assert seen[0]["headers"][b"content-length"] == str(len(seen[0]["body"])).encode()
    assert tokens(registry, "prompt") == rec.prompt
    assert tokens(registry, "completion") == rec.completion


async def test_the_app_gets_the_clients_bytes_with_the_option_written_in():
    raw = ('{ "model":"gpt-4o", "temperature": 1.0e0, "stream": true,\n'
           ' "messages": [{"role": "user", "content": "caf\u00e9 \u2603"}]}').encode()
    seen: list[dict[str, Any]] = []
    app, _ = wrapped(upstream(OPENAI_CHAT, seen))
    await call(app, raw)
    assert seen[0]["body"] == b'{"stream_options":{"include_usage":true},' + raw[1:]
    assert seen[0]["request"] == {**json.loads(raw), "stream_options": {"include_usage": True}}


async def test_a_client_that_asked_for_usage_gets_it_untouched():
    request = {**REQUEST, "stream_options": {"include_usage": True}}
    bare = await call(upstream(OPENAI_CHAT, []), request)
    seen: list[dict[str, Any]] = []
    app, registry = wrapped(upstream(OPENAI_CHAT, seen))
    assert await call(app, request) == bare
    assert any(b'"usage":{' in m.get("body", b"") for m in bare)
    assert seen[0]["request"] == request
    assert tokens(registry, "prompt") == OPENAI_CHAT.prompt


async def test_other_stream_options_are_kept():
    request = {**REQUEST, "stream_options": {"include_usage": False, "continuous": 1}}
    seen: list[dict[str, Any]] = []
    app, _ = wrapped(upstream(OPENAI_CHAT, seen))
    await call(app, request)
    assert seen[0]["request"]["stream_options"] == {"include_usage": True, "continuous": 1}


async def test_include_usage_off_leaves_the_request_alone_and_counts_content_events():
    seen: list[dict[str, Any]] = []
    app, registry = wrapped(upstream(OPENAI_CHAT, seen), include_usage=False)
    bare = await call(upstream(OPENAI_CHAT, []), REQUEST)
    assert await call(app, REQUEST) == bare
    assert seen[0]["request"] == REQUEST
    assert tokens(registry, "prompt") == 0                     # nobody sent it
    assert tokens(registry, "completion") == OPENAI_CHAT.tokens  # one per content event


async def test_plain_requests_reach_the_app_unchanged():
    seen: list[dict[str, Any]] = []
    app, _ = wrapped(upstream(OPENAI_CHAT, seen))
    for request in ({"model": "gpt-4o", "messages": []}, {"model": "gpt-4o", "stream": False}):
        await call(app, request)
        assert seen[-1]["request"] == request
    assert b"content-length" in seen[0]["headers"]


async def test_fakeai_usage_on_the_finish_chunk_beside_null_responses_fields():
    """FakeAI's usage has input_tokens/output_tokens null beside the real counts, on the
    finish chunk: the counts are read, and the chunk (it has choices) reaches the client."""
    seen: list[dict[str, Any]] = []
    app, registry = wrapped(upstream(FAKEAI, seen))
    sent = await call(app, REQUEST)
    assert b"".join(m.get("body", b"") for m in sent[1:]) == FAKEAI.wire
    assert tokens(registry, "prompt") == 25 and tokens(registry, "completion") == 8
    assert tokens(registry, "cached") == 5


async def test_a_body_over_the_parse_limit_reaches_the_app_unchanged():
    """Read ahead up to max_body_bytes only: past that the body passes as it came, in order."""
    request = {**REQUEST, "messages": [{"role": "user", "content": "x" * 5000}]}
    seen: list[dict[str, Any]] = []
    app, registry = wrapped(upstream(OPENAI_CHAT, seen), max_body_bytes=1000)
    bare = await call(upstream(OPENAI_CHAT, []), request, piece=300)
    assert await call(app, request, piece=300) == bare   # 4 messages read ahead, 15 passed on
    assert seen[0]["request"] == request          # not rewritten: too large to parse
    assert tokens(registry, "completion") == OPENAI_CHAT.tokens
