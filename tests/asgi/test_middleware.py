"""The ASGI middleware against real apps, a real HTTP client and a real server.

A small OpenAI-shaped server is built twice, as a FastAPI app and as a plain Starlette app (every
app test runs on both), with ``FakeAIMetricsMiddleware`` added the way users add it. The server
moves the test's ``ManualClock`` instead of sleeping, and the middleware and the hub read that
clock, so TTFT, ITL and request latency are asserted exactly. Requests go through
``httpx.ASGITransport`` (one test uses a real ``uvicorn`` server on 127.0.0.1), and the
assertions read the Prometheus registry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from conftest import uvicorn_server
from fakeai_metrics import InvalidMetricInput, Telemetry
from fakeai_metrics.asgi.middleware import FakeAIMetricsMiddleware
from fakeai_metrics.testing import ManualClock, metric_value, samples

MODEL = "gpt-4o"
KEY = "sk-live-SECRET-5f1d2e3c4b5a69788796a5b4"
AUTH = {"authorization": f"Bearer {KEY}"}
CHAT = "/v1/chat/completions"
EMBED = "/v1/embeddings"
RESPONSES = "/v1/responses"
COMPLETIONS = "/v1/completions"
# gpt-4o in the default price table: $5 input, $2.50 cached input, $15 output per million
GPT4O_INPUT, GPT4O_CACHED, GPT4O_OUTPUT = 5.0, 2.5, 15.0

pytestmark = pytest.mark.anyio  # async tests run on anyio's plugin; sync ones are unaffected


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["fastapi", "starlette"])
def framework(request: pytest.FixtureRequest) -> str:
    return request.param


# --- what the fake server sends (the tests compute expectations from the same functions) -------


def sse(obj: Any, eol: bytes = b"\n", event: str | None = None) -> bytes:
    """One server-sent event; ``obj`` is JSON-encoded unless it is already bytes."""
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    head = b"event: " + event.encode() + eol if event else b""
    return head + b"data: " + data + eol + eol


def chat_events(n: int, *, usage: dict | None = None, eol: bytes = b"\n",
                error_after: int | None = None, finish: Any = "stop") -> list[tuple[bytes, bool]]:
    """A chat completion stream as (event bytes, carries content): a role chunk, ``n`` content
    chunks, a finish chunk (``finish_reason`` = ``finish``), an optional usage chunk,
    ``[DONE]``."""
    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": MODEL, "choices": [{"index": 0, "delta": delta,
                                             "finish_reason": finish}]}

    events = [(sse(chunk({"role": "assistant", "content": ""}), eol), False)]
    for i in range(n):
        if error_after is not None and i == error_after:
            events.append((sse({"error": {"type": "server_error", "code": None,
                                          "message": "The model is overloaded"}}, eol), False))
            return events
        events.append((sse(chunk({"content": f"tok{i} "}), eol), True))
    events.append((sse(chunk({}, finish), eol), False))
    if usage is not None:
        events.append((sse({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                            "model": MODEL, "choices": [], "usage": usage}, eol), False))
    events.append((sse(b"[DONE]", eol), False))
    return events


def completion_events(n: int) -> list[tuple[bytes, bool]]:
    events = [(sse({"object": "text_completion", "model": MODEL,
                    "choices": [{"index": 0, "text": f"w{i} ", "finish_reason": None}]}), True)
              for i in range(n)]
    events.append((sse({"object": "text_completion", "model": MODEL,
                        "choices": [{"index": 0, "text": "", "finish_reason": "length"}]}), False))
    return events + [(sse(b"[DONE]"), False)]


def responses_events(n: int, usage: dict, status: str = "completed",
                     incomplete: dict | None = None) -> list[tuple[bytes, bool]]:
    """A Responses API stream: typed events with an ``event:`` line, usage in the last one
    (``response.completed``, or ``response.incomplete`` with ``incomplete_details``)."""
    def ev(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, **fields}, event=kind)

    events = [(ev("response.created", response={"id": "resp_1", "status": "in_progress"}),
               False)]
    events += [(ev("response.output_text.delta", item_id="msg_1", output_index=0,
                   content_index=0, delta=f"t{i}"), True) for i in range(n)]
    events.append((ev("response.output_text.done", text="..."), False))
    events.append((ev(f"response.{status}",
                      response={"id": "resp_1", "status": status, "usage": usage,
                                "incomplete_details": incomplete}), False))
    return events


def usage(prompt: int, completion: int, cached: int = 0) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


def resplit(data: bytes, size: int) -> list[bytes]:
    """``data`` cut into ``size``-byte pieces, ignoring event and line boundaries."""
    return [data[i:i + size] for i in range(0, len(data), size)]


def content_bytes(events: list[tuple[bytes, bool]]) -> int:
    return sum(len(e) for e, content in events if content)


# --- the fake server -----------------------------------------------------------------------------


def build_app(framework: str, telemetry: Telemetry, clock: ManualClock,
              **middleware: Any) -> Any:
    """The OpenAI-shaped test server on ``framework``, measured by the middleware.

    Test-only request fields steer it: ``x_latency`` (clock seconds a non-streamed request
    takes), ``x_ttft`` / ``x_itl`` (clock seconds before the first / each next content chunk),
    ``x_tokens``, ``x_usage`` (the usage chunk, sent only when the request has
    ``stream_options.include_usage``, as OpenAI does), ``x_finish`` (a chat body's
    ``finish_reason``), ``x_status`` / ``x_incomplete`` (a Responses body's ``status`` and
    ``incomplete_details``), ``x_split`` (re-cut the SSE
    bytes into pieces of that size), ``x_scenario`` (rate_limited, raise_before, raise_mid,
    error_event, endless).
    """

    async def stream(events: list[tuple[bytes, bool]], body: dict) -> StreamingResponse:
        ttft, itl = body.get("x_ttft", 0.0), body.get("x_itl", 0.0)
        scenario = body.get("x_scenario")

        async def timed() -> Any:
            seen = 0
            for data, content in events:
                if content:
                    if scenario == "raise_mid" and seen == 2:
                        raise RuntimeError("model crashed")
                    clock.advance(ttft if seen == 0 else itl)
                    seen += 1
                yield data
                await anyio.sleep(0)  # let concurrent requests interleave

        async def pieces() -> Any:
            for piece in resplit(b"".join(e for e, _ in events), body["x_split"]):
                yield piece

        async def endless() -> Any:
            i = 0
            while True:
                yield sse({"choices": [{"index": 0, "delta": {"content": f"t{i}"}}]})
                i += 1
                await anyio.sleep(0.001)

        gen = endless() if scenario == "endless" else pieces() if "x_split" in body else timed()
        return StreamingResponse(gen, media_type="text/event-stream")

    async def read(request: Request) -> dict | Response:
        try:
            return await request.json()
        except ValueError:
            return JSONResponse({"error": {"type": "invalid_request_error", "code": None,
                                           "message": "We could not parse the JSON body"}},
                                status_code=400)

    async def chat(request: Request) -> Response:
        body = await read(request)
        if isinstance(body, Response):
            return body
        scenario = body.get("x_scenario")
        if scenario == "rate_limited":
            return JSONResponse({"error": {
                "type": "rate_limit_exceeded", "code": "rate_limit_exceeded", "param": None,
                "message": f"Rate limit reached for key {KEY} on requests per min"}},
                status_code=429)
        if scenario == "raise_before":
            raise ValueError("database unavailable")
        n = body.get("x_tokens", 5)
        if body.get("stream"):
            # like OpenAI and vLLM, the usage chunk only when the request asks for it
            asked = (body.get("stream_options") or {}).get("include_usage") is True
            return await stream(chat_events(n, usage=body.get("x_usage") if asked else None,
                                            eol=body.get("x_eol", "\n").encode(),
                                            error_after=2 if scenario == "error_event" else None,
                                            finish=body.get("x_finish", "stop")),
                                body)
        clock.advance(body.get("x_latency", 0.0))
        return JSONResponse({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": body.get("x_finish", "stop"),
                         "message": {"role": "assistant", "content": "Hello!"}}],
            "usage": body.get("x_usage", usage(1000, 500, 200))})

    async def completions(request: Request) -> Response:
        body = await request.json()
        return await stream(completion_events(body.get("x_tokens", 5)), body)

    async def embeddings(request: Request) -> Response:
        body = await read(request)
        if isinstance(body, Response):
            return body
        dims = body.get("x_dims", 4)
        return JSONResponse({
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.125] * dims}],
            "model": body.get("model"), "usage": {"prompt_tokens": 8, "total_tokens": 8}})

    async def responses(request: Request) -> Response:
        body = await request.json()
        u = {"input_tokens": 300, "input_tokens_details": {"cached_tokens": 100},
             "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": 340}
        if body.get("stream"):
            return await stream(responses_events(body.get("x_tokens", 5), u,
                                                 body.get("x_status", "completed"),
                                                 body.get("x_incomplete")), body)
        return JSONResponse({"id": "resp_1", "object": "response",
                             "status": body.get("x_status", "completed"),
                             "incomplete_details": body.get("x_incomplete"),
                             "model": MODEL, "output": [], "usage": u})

    async def other(request: Request) -> Response:
        await request.body()
        return JSONResponse({"usage": usage(1, 1)})

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    posts = [(CHAT, chat), (COMPLETIONS, completions), (EMBED, embeddings),
             (RESPONSES, responses), ("/v1/other", other)]
    if framework == "fastapi":
        app: Any = FastAPI()
        for path, endpoint in posts:
            app.add_api_route(path, endpoint, methods=["POST"])
        app.add_api_route("/health", health, methods=["GET"])
    else:
        app = Starlette(routes=[Route(p, e, methods=["POST"]) for p, e in posts]
                        + [Route("/health", health)])
    app.add_middleware(FakeAIMetricsMiddleware, telemetry=telemetry, clock=clock, **middleware)
    return app


@pytest.fixture
def app(framework: str, telemetry: Telemetry, metrics_clock: ManualClock) -> Any:
    return build_app(framework, telemetry, metrics_clock)


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def post(app: Any, path: str, body: Any, headers: dict | None = AUTH) -> httpx.Response:
    async with client_for(app) as client:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await client.post(path, content=content, headers={
            "content-type": "application/json", **(headers or {})})


def value(registry: Any, name: str, **labels: str) -> float:
    return metric_value(registry, name, labels)


def cost(prompt: int, completion: int, cached: int = 0) -> float:
    return ((prompt - cached) * GPT4O_INPUT + cached * GPT4O_CACHED
            + completion * GPT4O_OUTPUT) / 1e6


# --- non-streamed requests -----------------------------------------------------------------------

pytestmark = pytest.mark.anyio


async def test_chat_completion_records_usage_latency_and_cost(app, metrics_registry):
    r = await post(app, CHAT, {"model": MODEL, "messages": [], "x_latency": 0.25,
                               "x_usage": usage(1000, 500, 200)})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello!"
    reg = metrics_registry
    assert value(reg, "fakeai_requests_total", endpoint=CHAT, model=MODEL,
                 outcome="success") == 1
    assert value(reg, "fakeai_tokens_total", model=MODEL, type="prompt") == 1000
    assert value(reg, "fakeai_tokens_total", model=MODEL, type="completion") == 500
    assert value(reg, "fakeai_tokens_total", model=MODEL, type="cached") == 200
    assert value(reg, "fakeai_request_duration_seconds_sum", endpoint=CHAT, model=MODEL) == 0.25
    assert value(reg, "fakeai_request_duration_seconds_count", endpoint=CHAT) == 1
    assert value(reg, "fakeai_cost_usd_total", model=MODEL) == pytest.approx(
        cost(1000, 500, 200))  # 0.012
    assert samples(reg, "fakeai_streams_total") == {}


async def test_embeddings_bill_prompt_tokens_only(app, metrics_registry):
    r = await post(app, EMBED, {"model": "text-embedding-3-small", "input": "hello"})
    assert r.status_code == 200
    reg = metrics_registry
    labels = {"model": "text-embedding-3-small"}
    assert value(reg, "fakeai_requests_total", endpoint=EMBED, outcome="success", **labels) == 1
    assert value(reg, "fakeai_tokens_total", type="prompt", **labels) == 8
    assert value(reg, "fakeai_tokens_total", type="completion", **labels) == 0
    assert value(reg, "fakeai_cost_usd_total", **labels) == pytest.approx(8 * 0.02 / 1e6)


async def test_usage_after_a_body_larger_than_the_parse_limit(framework, telemetry,
                                                              metrics_clock, metrics_registry):
    """OpenAI puts ``usage`` last; a megabyte of vectors before it must not hide it."""
    app = build_app(framework, telemetry, metrics_clock, max_body_bytes=4096)
    r = await post(app, EMBED, {"model": "text-embedding-3-small", "input": "x",
                                "x_dims": 5000})
    assert len(r.content) > 4096 * 5
    assert value(metrics_registry, "fakeai_tokens_total", type="prompt") == 8


async def test_responses_api_usage(app, metrics_registry):
    r = await post(app, RESPONSES, {"model": MODEL, "input": "hi"})
    assert r.status_code == 200
    reg = metrics_registry
    assert value(reg, "fakeai_requests_total", endpoint=RESPONSES, outcome="success") == 1
    assert value(reg, "fakeai_tokens_total", type="prompt") == 300
    assert value(reg, "fakeai_tokens_total", type="cached") == 100
    assert value(reg, "fakeai_tokens_total", type="completion") == 40


async def test_no_authorization_header_means_no_api_key(app, metrics_registry, telemetry):
    r = await post(app, CHAT, {"model": MODEL}, headers=None)
    assert r.status_code == 200
    assert value(metrics_registry, "fakeai_requests_total", outcome="success") == 1
    # tokens are still counted, billed to the key id "anonymous"
    assert {dict(k)["api_key"] for k in samples(metrics_registry, "fakeai_cost_usd_total")} == \
        {"anonymous"}
    assert value(metrics_registry, "fakeai_tokens_total", type="prompt") > 0
    assert telemetry.models.get_model_stats(MODEL)["users"] == {}


# --- errors --------------------------------------------------------------------------------------


async def test_rate_limit_error_is_recorded_from_the_openai_error_body(app, metrics_registry,
                                                                       telemetry, metrics_clock):
    r = await post(app, CHAT, {"model": MODEL, "x_scenario": "rate_limited"})
    assert r.status_code == 429
    assert r.json()["error"]["type"] == "rate_limit_exceeded"
    reg = metrics_registry
    assert value(reg, "fakeai_errors_total", endpoint=CHAT, error_type="rate_limit_exceeded",
                 status_code="429") == 1
    assert value(reg, "fakeai_requests_total", model=MODEL, outcome="error") == 1
    assert samples(reg, "fakeai_cost_usd_total") == {}
    [record] = telemetry.errors.get_recent_errors()
    assert KEY not in record.error_message and "Rate limit reached" in record.error_message


async def test_body_that_is_not_json_counts_under_model_unknown(app, metrics_registry):
    r = await post(app, EMBED, b"this is not json")
    assert r.status_code == 400
    assert value(metrics_registry, "fakeai_requests_total", model="unknown",
                 outcome="error") == 1
    assert value(metrics_registry, "fakeai_errors_total", error_type="invalid_request_error",
                 status_code="400") == 1


async def test_app_raising_before_the_response_is_a_500_named_after_the_exception(
        app, metrics_registry):
    with pytest.raises(ValueError, match="database unavailable"):
        await post(app, CHAT, {"model": MODEL, "x_scenario": "raise_before"})
    assert value(metrics_registry, "fakeai_errors_total", endpoint=CHAT, error_type="ValueError",
                 status_code="500") == 1
    assert value(metrics_registry, "fakeai_requests_total", model=MODEL, outcome="error") == 1


# --- streams -------------------------------------------------------------------------------------


async def test_stream_ttft_itl_usage_and_cost_are_exact(app, metrics_registry):
    n, ttft, itl = 5, 0.25, 0.02
    final_usage = usage(1000, 2 * n, 200)  # usage wins over the chunks seen (2 tokens a chunk)
    body = {"model": MODEL, "stream": True, "stream_options": {"include_usage": True},
            "x_tokens": n, "x_ttft": ttft, "x_itl": itl, "x_usage": final_usage}
    r = await post(app, CHAT, body)
    events = chat_events(n, usage=final_usage)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.content == b"".join(e for e, _ in events)  # passed through byte for byte
    reg, m = metrics_registry, {"model": MODEL}
    assert value(reg, "fakeai_time_to_first_token_seconds_count", **m) == 1
    assert value(reg, "fakeai_time_to_first_token_seconds_sum", **m) == pytest.approx(ttft)
    assert value(reg, "fakeai_inter_token_latency_seconds_count", **m) == n - 1
    assert value(reg, "fakeai_inter_token_latency_seconds_sum", **m) == pytest.approx(
        (n - 1) * itl)
    assert value(reg, "fakeai_time_per_output_token_seconds_sum", **m) == pytest.approx(itl)
    assert value(reg, "fakeai_request_duration_seconds_sum", endpoint=CHAT) == pytest.approx(
        ttft + (n - 1) * itl)
    assert value(reg, "fakeai_stream_bytes_total", **m) == content_bytes(events)
    assert value(reg, "fakeai_streams_total", outcome="completed", **m) == 1
    assert value(reg, "fakeai_streams_active", **m) == 0
    assert value(reg, "fakeai_requests_total", endpoint=CHAT, outcome="success", **m) == 1
    assert value(reg, "fakeai_tokens_total", type="prompt", **m) == 1000
    assert value(reg, "fakeai_tokens_total", type="cached", **m) == 200
    assert value(reg, "fakeai_tokens_total", type="completion", **m) == 2 * n
    assert value(reg, "fakeai_cost_usd_total", **m) == pytest.approx(cost(1000, 2 * n, 200))


async def test_stream_without_usage_bills_the_tokens_seen(app, metrics_registry):
    r = await post(app, CHAT, {"model": MODEL, "stream": True, "x_tokens": 7})
    assert r.status_code == 200
    assert value(metrics_registry, "fakeai_tokens_total", type="completion") == 7
    assert value(metrics_registry, "fakeai_tokens_total", type="prompt") == 0
    assert value(metrics_registry, "fakeai_streams_total", outcome="completed") == 1


@pytest.mark.parametrize("piece", [1, 2, 7, 64])
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
async def test_events_split_across_chunk_boundaries(app, metrics_registry, piece, eol):
    n = 6
    events = chat_events(n, usage=usage(40, n), eol=eol.encode())
    r = await post(app, CHAT, {"model": MODEL, "stream": True, "x_tokens": n,
                               "x_usage": usage(40, n), "x_eol": eol, "x_split": piece})
    assert r.content == b"".join(e for e, _ in events)
    reg = metrics_registry
    assert value(reg, "fakeai_time_to_first_token_seconds_count") == 1
    assert value(reg, "fakeai_inter_token_latency_seconds_count") == n - 1
    assert value(reg, "fakeai_stream_bytes_total") == content_bytes(events)
    assert value(reg, "fakeai_tokens_total", type="prompt") == 40
    assert value(reg, "fakeai_streams_total", outcome="completed") == 1


async def test_completions_stream_counts_text_chunks(app, metrics_registry):
    r = await post(app, COMPLETIONS, {"model": MODEL, "prompt": "x", "stream": True,
                                      "x_tokens": 4})
    assert r.content == b"".join(e for e, _ in completion_events(4))
    assert value(metrics_registry, "fakeai_inter_token_latency_seconds_count") == 3
    assert value(metrics_registry, "fakeai_tokens_total", type="completion") == 4
    assert value(metrics_registry, "fakeai_requests_total", endpoint=COMPLETIONS,
                 outcome="success") == 1


async def test_responses_api_stream(app, metrics_registry):
    r = await post(app, RESPONSES, {"model": MODEL, "input": "x", "stream": True,
                                    "x_tokens": 3, "x_ttft": 0.5, "x_itl": 0.01})
    assert r.status_code == 200
    reg = metrics_registry
    assert value(reg, "fakeai_time_to_first_token_seconds_sum") == pytest.approx(0.5)
    assert value(reg, "fakeai_inter_token_latency_seconds_count") == 2
    assert value(reg, "fakeai_tokens_total", type="prompt") == 300
    assert value(reg, "fakeai_tokens_total", type="cached") == 100
    assert value(reg, "fakeai_tokens_total", type="completion") == 40
    assert value(reg, "fakeai_streams_total", outcome="completed") == 1


async def test_error_event_in_a_stream_fails_it(app, metrics_registry):
    r = await post(app, CHAT, {"model": MODEL, "stream": True, "x_scenario": "error_event"})
    assert r.status_code == 200  # the headers were sent before the error
    reg = metrics_registry
    assert value(reg, "fakeai_streams_total", outcome="failed") == 1
    assert value(reg, "fakeai_errors_total", error_type="server_error", status_code="500") == 1
    assert value(reg, "fakeai_requests_total", outcome="error") == 1
    assert value(reg, "fakeai_time_to_first_token_seconds_count") == 1  # tokens were sent


async def test_app_raising_mid_stream_fails_the_stream_and_reraises(app, metrics_registry):
    with pytest.raises(RuntimeError, match="model crashed"):
        await post(app, CHAT, {"model": MODEL, "stream": True, "x_tokens": 5,
                               "x_scenario": "raise_mid"})
    reg = metrics_registry
    assert value(reg, "fakeai_streams_total", outcome="failed") == 1
    assert value(reg, "fakeai_streams_active") == 0
    assert value(reg, "fakeai_errors_total", endpoint=CHAT, error_type="RuntimeError",
                 status_code="500") == 1
    assert value(reg, "fakeai_requests_total", outcome="error") == 1
    assert value(reg, "fakeai_inter_token_latency_seconds_count") == 1  # 2 tokens went out


async def test_client_disconnect_mid_stream_fails_the_stream(app, metrics_registry):
    """Driven at the ASGI level: a client that reads three chunks and hangs up."""
    enough = anyio.Event()
    sent: list[dict] = []
    calls = 0

    async def receive() -> dict:
        nonlocal calls
        calls += 1
        if calls == 1:
            body = json.dumps({"model": MODEL, "stream": True, "x_scenario": "endless"})
            return {"type": "http.request", "body": body.encode(), "more_body": False}
        await enough.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)
        if sum(m["type"] == "http.response.body" for m in sent) >= 3:
            enough.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": CHAT, "raw_path": CHAT.encode(),
             "root_path": "", "query_string": b"", "client": ("127.0.0.1", 5000),
             "server": ("test", 80),
             "headers": [(b"content-type", b"application/json"),
                         (b"authorization", f"Bearer {KEY}".encode())]}
    with anyio.fail_after(5):
        await app(scope, receive, send)
    assert not any(m["type"] == "http.response.body" and not m.get("more_body")
                   for m in sent)  # the response never completed
    reg = metrics_registry
    assert value(reg, "fakeai_streams_total", outcome="failed") == 1
    assert value(reg, "fakeai_errors_total", error_type="client_disconnect",
                 status_code="499") == 1
    assert value(reg, "fakeai_time_to_first_token_seconds_count") == 1


async def test_client_gone_before_a_non_streamed_response_completes(telemetry,
                                                                      metrics_registry):
    """A server whose send fails (peer gone), and an app that stops on ``http.disconnect``."""

    async def bare_json(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        if (await receive())["type"] == "http.disconnect":  # the app checks, as vLLM does
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        await send({"type": "http.response.body", "body": b"}", "more_body": False})

    body = json.dumps({"model": MODEL}).encode()
    messages = [{"type": "http.request", "body": body, "more_body": False},
                {"type": "http.request", "body": b"", "more_body": False},
                {"type": "http.request", "body": body, "more_body": False},
                {"type": "http.disconnect"}]

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body":
            raise OSError("connection reset by peer")

    scope = {"type": "http", "method": "POST", "path": CHAT, "headers": [], "root_path": ""}
    app = FakeAIMetricsMiddleware(bare_json, telemetry)
    with pytest.raises(OSError):
        await app(scope, receive, send)
    await app(scope, receive, send)
    assert value(metrics_registry, "fakeai_errors_total", error_type="client_disconnect",
                 status_code="499") == 2
    assert value(metrics_registry, "fakeai_requests_total", model=MODEL, outcome="error") == 2


# --- what it leaves alone ------------------------------------------------------------------------


async def test_other_paths_methods_and_scopes_are_untouched(app, metrics_registry):
    async with client_for(app) as client:
        assert (await client.get("/health")).text == "ok"
        r = await client.post("/v1/other", json={"model": MODEL}, headers=AUTH)
        assert r.status_code == 200
        assert (await client.get(CHAT)).status_code == 405  # GET lists stored completions
    for name in ("fakeai_requests_total", "fakeai_endpoint_requests_total",
                 "fakeai_tokens_total", "fakeai_request_duration_seconds_count"):
        assert samples(metrics_registry, name) == {}, name


def bare_sse_app(payload: bytes, piece: int, seen: list[Any]) -> Any:
    """A bare ASGI app (no framework) that streams ``payload`` in ``piece``-byte bodies."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            seen.append("lifespan")
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream; charset=utf-8")]})
        for part in resplit(payload, piece):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


async def test_any_asgi_app_can_be_wrapped(telemetry, metrics_registry):
    """No framework: the middleware wraps a bare ASGI callable and forwards its messages."""
    payload = b"".join(e for e, _ in chat_events(3, usage=usage(9, 3)))
    seen: list[Any] = []
    app = FakeAIMetricsMiddleware(bare_sse_app(payload, 5, seen), telemetry)
    r = await post(app, CHAT, {"model": MODEL, "stream": True}, headers=None)
    assert r.content == payload
    await app({"type": "lifespan"}, None, None)  # not http: straight through
    assert seen == ["lifespan"]
    assert value(metrics_registry, "fakeai_inter_token_latency_seconds_count") == 2
    assert value(metrics_registry, "fakeai_streams_total", outcome="completed") == 1


async def test_an_event_over_the_size_cap_is_skipped_not_buffered(telemetry, metrics_registry):
    big = (sse({"choices": [{"index": 0, "delta": {"content": "x" * 5000}}]}), True)
    events = chat_events(2)[:-1] + [big] + chat_events(2)[1:]  # one [DONE], at the end
    payload = b"".join(e for e, _ in events)
    app = FakeAIMetricsMiddleware(bare_sse_app(payload, 100, []), telemetry,
                                  max_event_bytes=1024)
    r = await post(app, CHAT, {"model": MODEL, "stream": True})
    assert r.content == payload
    reg = metrics_registry
    assert value(reg, "fakeai_inter_token_latency_seconds_count") == 3  # 4 tokens, big skipped
    assert value(reg, "fakeai_stream_bytes_total") == content_bytes(events) - len(big[0])
    assert value(reg, "fakeai_streams_total", outcome="completed") == 1


# --- safety --------------------------------------------------------------------------------------


async def test_api_key_is_never_exported_or_logged(app, metrics_registry, telemetry,
                                                   monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    await post(app, CHAT, {"model": MODEL, "x_scenario": "rate_limited"})
    await post(app, CHAT, {"model": MODEL, "stream": True, "x_usage": usage(10, 5)})
    with pytest.raises(RuntimeError):
        await post(app, CHAT, {"model": MODEL, "stream": True, "x_scenario": "raise_mid"})

    def refuse(**kwargs: Any) -> None:
        raise InvalidMetricInput(f"boom for {kwargs['api_key']}")

    monkeypatch.setattr(telemetry, "record_request", refuse)
    r = await post(app, CHAT, {"model": MODEL})
    assert r.status_code == 200
    assert "InvalidMetricInput: boom for <api key>" in caplog.text
    assert KEY not in caplog.text
    assert KEY not in generate_latest(metrics_registry).decode()
    assert all(KEY not in e.error_message for e in telemetry.errors.get_recent_errors())


async def test_metrics_failures_never_break_the_app(app, telemetry, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="fakeai_metrics")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("tracker bug")

    for name in ("record_request", "record_failure", "start_stream", "stream_token",
                 "finish_stream", "fail_stream"):
        monkeypatch.setattr(telemetry, name, broken)
    monkeypatch.setattr(telemetry.streaming, "record_token", broken)  # the per-token call
    r = await post(app, CHAT, {"model": MODEL})
    assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] == 1000
    body = {"model": MODEL, "stream": True, "x_usage": usage(3, 5)}
    r = await post(app, CHAT, body)
    assert r.content == b"".join(e for e, _ in chat_events(5))
    assert (await post(app, CHAT, {"model": MODEL, "x_scenario": "rate_limited"})
            ).status_code == 429
    assert caplog.text.count("tracker bug") >= 5


# --- load and a real server ----------------------------------------------------------------------


async def test_concurrent_streams_are_counted_exactly(app, metrics_registry):
    n_requests, n_tokens = 50, 6

    async def one(i: int) -> httpx.Response:
        return await client.post(CHAT, headers={"authorization": f"Bearer sk-user-{i % 5}"},
                                 json={"model": MODEL, "stream": True, "x_tokens": n_tokens,
                                       "x_usage": usage(10, n_tokens, 2)})

    async with client_for(app) as client:
        responses = await asyncio.gather(*(one(i) for i in range(n_requests)))
    # the client did not ask for usage: the middleware did, and the client does not see it
    expected = b"".join(e for e, _ in chat_events(n_tokens))
    assert all(r.content == expected for r in responses)
    reg = metrics_registry
    assert value(reg, "fakeai_requests_total", outcome="success") == n_requests
    assert value(reg, "fakeai_streams_total", outcome="completed") == n_requests
    assert value(reg, "fakeai_streams_active") == 0
    assert value(reg, "fakeai_time_to_first_token_seconds_count") == n_requests
    assert value(reg, "fakeai_inter_token_latency_seconds_count") == n_requests * (n_tokens - 1)
    assert value(reg, "fakeai_tokens_total", type="completion") == n_requests * n_tokens
    assert value(reg, "fakeai_tokens_total", type="prompt") == n_requests * 10
    assert value(reg, "fakeai_cost_usd_total") == pytest.approx(n_requests * cost(10, n_tokens, 2))
    assert len(samples(reg, "fakeai_cost_usd_total")) == 5  # one series per key id


def test_real_uvicorn_server(framework, telemetry, metrics_clock, metrics_registry):
    """Over real sockets: a non-streamed request, a stream, and a client hanging up mid-stream."""
    app = build_app(framework, telemetry, metrics_clock)
    with uvicorn_server(app) as base:
        with httpx.Client(base_url=base, headers=AUTH, timeout=5) as client:
            r = client.post(CHAT, json={"model": MODEL})
            assert r.status_code == 200
            body = {"model": MODEL, "stream": True, "x_tokens": 4, "x_usage": usage(20, 4)}
            with client.stream("POST", CHAT, json=body) as r:
                received = b"".join(r.iter_bytes())
            assert received == b"".join(e for e, _ in chat_events(4))  # usage asked, hidden
            with client.stream("POST", CHAT, json={"model": MODEL, "stream": True,
                                                   "x_scenario": "endless"}) as r:
                for i, _ in enumerate(r.iter_bytes()):
                    if i == 3:
                        break
        reg = metrics_registry
        deadline = time.monotonic() + 5
        while not samples(reg, "fakeai_errors_total"):  # the server learns of the hang-up
            assert time.monotonic() < deadline, "the disconnect was not recorded"
            time.sleep(0.01)
        assert value(reg, "fakeai_requests_total", outcome="success") == 2
        assert value(reg, "fakeai_streams_total", outcome="completed") == 1
        assert value(reg, "fakeai_streams_total", outcome="failed") == 1
        assert value(reg, "fakeai_errors_total", error_type="client_disconnect",
                     status_code="499") == 1
        assert value(reg, "fakeai_inter_token_latency_seconds_count") >= 3 + 3
        assert value(reg, "fakeai_tokens_total", type="prompt") == 1000 + 20


async def test_ttft_counts_from_the_request_not_from_the_response_headers(
        telemetry, metrics_clock, metrics_registry):
    """A server that prefills before sending its headers: the client waits for that too."""
    async def slow_to_start(scope, receive, send):
        await receive()
        metrics_clock.advance(0.5)  # queueing + prefill before the response begins
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for data, content in chat_events(3):
            if content:
                metrics_clock.advance(0.01)
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    app = FakeAIMetricsMiddleware(slow_to_start, telemetry=telemetry)
    r = await post(app, CHAT, {"model": MODEL, "stream": True})
    assert r.status_code == 200
    assert value(metrics_registry, "fakeai_time_to_first_token_seconds_sum") == \
        pytest.approx(0.51)
    assert value(metrics_registry, "fakeai_request_duration_seconds_sum") >= 0.51
