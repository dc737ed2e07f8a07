"""ASGI middleware that measures OpenAI-compatible routes and records them in a ``Telemetry`` hub.

It watches the messages an app already exchanges with its server and changes none of them: the
request body is read by wrapping ``receive`` (the app still gets every message as it was), the
response by wrapping ``send`` (every message is forwarded as soon as it has been looked at). From
what passes it records, per request:

- a non-streamed response: ``record_request`` with the ``usage`` of a 2xx JSON body, or
  ``record_failure`` with the OpenAI error body of a status >= 400;
- a ``text/event-stream`` response: ``start_stream`` at the response start (dated back to the
  request's arrival, so TTFT includes the time before the first byte), ``stream_token`` for
  every server-sent event that carries generated content, and ``finish_stream`` (with the final
  chunk's ``usage`` when the server sends it) or ``fail_stream`` on an ``error`` event, an
  exception or a client disconnect.

Memory is bounded per request whatever the response size: a capped prefix of the request body
(for ``model``), a capped head and tail of a JSON response (for ``usage``, which OpenAI puts last)
and, for a stream, one partially received event. Metrics never break the app: an error in this
module or in the hub is logged at DEBUG (with the API key scrubbed) and the response goes on.

Only POST requests to the configured paths are measured; everything else (other paths, other
methods, websocket and lifespan scopes) goes straight to the app. Written against the ASGI 3
spec only, so it wraps any ASGI app, and Starlette/FastAPI take it as
``app.add_middleware(FakeAIMetricsMiddleware, telemetry=telemetry)``.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from typing import Any, Awaitable, Callable, Iterable, MutableMapping

from .errors import UNKNOWN_MODEL
from .openai_payloads import (MAX_LABEL, RESPONSES_CONTENT, RESPONSES_DONE, RESPONSES_FAILED,
                              Usage, clip, error_info, has_content, json_object, trailing_usage)
from .sse import Event, SSEParser
from .telemetry import Telemetry
from .validation import encodable

__all__ = ["FakeAIMetricsMiddleware", "OPENAI_ROUTES"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The OpenAI-compatible paths measured by default (POST only; a GET lists stored objects).
OPENAI_ROUTES: frozenset[str] = frozenset({
    "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses",
})

#: Status and error type recorded when the client goes away before the response is complete
#: (499 is nginx's "client closed request").
DISCONNECT_STATUS, DISCONNECT_ERROR = 499, "client_disconnect"

_MiB = 1 << 20
_TAIL_BYTES = 64 * 1024     # end of a large JSON response kept to find its trailing "usage"



class FakeAIMetricsMiddleware:
    """Records every POST to ``routes`` into ``telemetry``; a pure ASGI 3 middleware.

    ``clock`` (seconds, monotonic) times requests from their arrival; it defaults to the hub's
    own (``telemetry.now``), which streams are measured on, and must be that clock if given.
    ``max_body_bytes`` caps what is kept of a request or JSON response body for parsing and
    ``max_event_bytes`` the size of one server-sent event; larger ones pass through unparsed.
    """

    def __init__(self, app: ASGIApp, telemetry: Telemetry,
                 routes: Iterable[str] = OPENAI_ROUTES, *,
                 clock: Callable[[], float] | None = None,
                 max_body_bytes: int = _MiB, max_event_bytes: int = _MiB) -> None:
        self.app = app
        self.telemetry = telemetry
        self.routes = frozenset(_normalise(r) for r in routes)
        self.clock = clock if clock is not None else telemetry.now
        self.max_body_bytes = max_body_bytes
        self.max_event_bytes = max_event_bytes
        # ids unique per request, and across middlewares sharing one hub
        self._ids = itertools.count(1)
        self._id_prefix = "asgi-" + secrets.token_hex(4)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._endpoint(scope)
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        try:
            exchange = _Exchange(self, endpoint, scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - e.g. a broken clock: serve unmeasured
            log.debug("fakeai_metrics middleware: not measuring %s: %s", endpoint,
                      type(exc).__name__)
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except BaseException as exc:
            exchange.guarded(exchange.app_raised, exc)
            raise
        exchange.guarded(exchange.app_returned)

    def _endpoint(self, scope: Scope) -> str | None:
        """The measured route a scope is for, or None to pass it through."""
        if scope.get("type") != "http" or scope.get("method") != "POST":
            return None
        path = scope.get("path") or ""
        root = scope.get("root_path") or ""
        if root and path.startswith(root):  # mounted under a prefix: the path includes it
            path = path[len(root):]
        path = _normalise(path)
        return path if path in self.routes else None

    def _new_stream_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"


class _Exchange:
    """One request/response pair: what has been seen of it and what has been recorded.

    Each outcome is recorded once (``_done``); every hub call goes through ``_call`` so that a
    refused call (``InvalidMetricInput``) or a bug here is logged, never raised into the app.
    """

    def __init__(self, mw: FakeAIMetricsMiddleware, endpoint: str, scope: Scope,
                 receive: Receive, send: Send) -> None:
        self.mw = mw
        self.telemetry = mw.telemetry
        self.endpoint = endpoint
        self.api_key = _bearer_key(scope.get("headers") or ())
        self.started = mw.clock()
        self._receive_downstream = receive
        self._send_downstream = send
        self._request = _Capture(mw.max_body_bytes, tail=0)
        self._request_complete = False
        self._model: str | None = None
        self.status: int | None = None
        self._response: _Capture | None = None   # JSON body being kept for parsing
        self._sse: SSEParser | None = None
        self.stream_id: str | None = None
        self._usage: Usage | None = None
        self._finish_reason = "stop"
        self._done = False                          # outcome recorded (or given up)
        self._disconnected = False
        self._send_failed = False

    # --- the wrappers the app sees -------------------------------------------------------------

    async def receive(self) -> Message:
        message = await self._receive_downstream()
        self.guarded(self._on_receive, message)
        return message

    async def send(self, message: Message) -> None:
        # look first, then forward: token times are when the app produced them, not when a slow
        # client drained its socket, and the outcome is recorded before the client can see it
        self.guarded(self._on_send, message)
        try:
            await self._send_downstream(message)
        except BaseException:
            self._send_failed = True  # the server could not deliver: the client is gone
            raise

    def guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run metrics code; an error in it is logged at DEBUG and swallowed."""
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - metrics must never break the response
            self._log(getattr(fn, "__name__", "metrics"), exc)

    # --- request ---------------------------------------------------------------------------------

    def _on_receive(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.request":
            self._request.add(message.get("body") or b"")
            if not message.get("more_body", False):
                self._request_complete = True
        elif kind == "http.disconnect":
            if self._done:
                return  # the server says so after every complete response
            self._disconnected = True
            if self.stream_id is not None:
                self._fail_stream(DISCONNECT_STATUS, DISCONNECT_ERROR, "client disconnected")

    def model(self) -> str:
        """``model`` of the JSON request body, "unknown" when there is none (parsed once)."""
        if self._model is not None:
            return self._model
        model = UNKNOWN_MODEL
        body = self._request.whole()
        if body is not None:
            found = json_object(body).get("model")
            if isinstance(found, str) and 0 < len(found) <= MAX_LABEL:
                model = encodable(found)  # JSON may carry lone surrogates: replaced
        if self._request_complete:
            self._model = model
        return model

    # --- response --------------------------------------------------------------------------------

    def _on_send(self, message: Message) -> None:
        if self._done:
            return
        kind = message.get("type")
        if kind == "http.response.start":
            self._on_start(message)
        elif kind == "http.response.body":
            body = message.get("body") or b""
            more = bool(message.get("more_body", False))
            if self._sse is not None:
                self._on_stream_body(self._sse, body, more)
            else:
                if self._response is not None:
                    self._response.add(body)
                if not more:
                    self._on_complete()

    def _on_start(self, message: Message) -> None:
        self.status = status = int(message.get("status", 200))
        headers = _headers(message.get("headers") or ())
        content_type = headers.get(b"content-type", b"").lower()
        encoded = headers.get(b"content-encoding", b"identity").lower() != b"identity"
        if status < 400 and content_type.startswith(b"text/event-stream"):
            self.stream_id = self.mw._new_stream_id()
            self._call(self.telemetry.start_stream, self.stream_id, endpoint=self.endpoint,
                       model=self.model(), api_key=self.api_key, started_at=self.started)
            # a compressed stream is counted (start, outcome) but its tokens cannot be read
            self._sse = SSEParser(self.mw.max_event_bytes, enabled=not encoded)
        elif not encoded and (not content_type or b"json" in content_type):
            self._response = _Capture(self.mw.max_body_bytes, tail=_TAIL_BYTES)

    def _on_complete(self) -> None:
        """The last body chunk of a non-streamed response: its outcome and usage."""
        latency = self._elapsed()
        status = self.status or 500
        body = self._response
        if status >= 400:
            error_type, message = error_info(json_object(body.whole()) if body else {},
                                              f"http_{status}")
            self._record_failure(status, error_type, message, latency)
            return
        self._done = True
        usage = Usage()
        if body is not None:
            usage = Usage.of(json_object(body.whole()).get("usage") if not body.truncated
                              else trailing_usage(body.tail))
        self._call(self.telemetry.record_request, endpoint=self.endpoint, model=self.model(),
                   latency_s=latency, prompt_tokens=usage.prompt,
                   completion_tokens=usage.completion, cached_tokens=usage.cached,
                   api_key=self.api_key)

    # --- streams ---------------------------------------------------------------------------------

    def _on_stream_body(self, sse: SSEParser, body: bytes, more: bool) -> None:
        if sse.enabled and body:
            for event in sse.feed(bytes(body)):
                self._on_event(event)
                if self._done:
                    return
        if not more:
            self._finish_stream()

    def _on_event(self, event: Event) -> None:
        data = event.data.strip()
        if data == b"[DONE]":
            self._finish_stream()
            return
        obj = json_object(data)
        if not obj:
            return
        kind = obj.get("type")
        if not isinstance(kind, str):
            kind = event.name.decode("utf-8", "replace")
        error = obj.get("error")
        if kind in RESPONSES_FAILED or isinstance(error, dict):
            self._stream_error(obj)
            return
        if kind in RESPONSES_CONTENT:
            self._token(event.size)
        elif kind in RESPONSES_DONE:
            response = obj.get("response")
            if isinstance(response, dict) and isinstance(response.get("usage"), dict):
                self._usage = Usage.of(response["usage"])
        else:
            choices = obj.get("choices")
            if isinstance(choices, list):
                if any(has_content(c) for c in choices):
                    self._token(event.size)
                for c in choices:
                    if isinstance(c, dict) and isinstance(c.get("finish_reason"), str):
                        self._finish_reason = c["finish_reason"]
            if isinstance(obj.get("usage"), dict):
                self._usage = Usage.of(obj["usage"])

    def _token(self, size: int) -> None:
        self._call(self.telemetry.stream_token, self.stream_id, chunk_size_bytes=size)

    def _stream_error(self, obj: dict[str, Any]) -> None:
        """An error event: chat's ``{"error": {...}}``, or the Responses API's error events."""
        error = obj.get("error")
        if not isinstance(error, dict):
            response = obj.get("response")
            error = response.get("error") if isinstance(response, dict) else None
            if not isinstance(error, dict):
                # the Responses API's {"type": "error", "code": ..., "message": ...}
                error = {"code": obj.get("code"), "message": obj.get("message")}
        error_type, message = error_info({"error": error}, "stream_error")
        code = error.get("code")
        status = code if isinstance(code, int) and 400 <= code <= 599 else 500
        self._fail_stream(status, error_type, message)

    def _finish_stream(self) -> None:
        if self._done:
            return
        self._done = True
        u = self._usage
        if u is None:  # no usage chunk: bill the tokens seen
            self._call(self.telemetry.finish_stream, self.stream_id,
                       finish_reason=self._finish_reason)
        else:
            self._call(self.telemetry.finish_stream, self.stream_id,
                       finish_reason=self._finish_reason, completion_tokens=u.completion,
                       prompt_tokens=u.prompt, cached_tokens=u.cached)

    def _fail_stream(self, status: int, error_type: str, message: str) -> None:
        if self._done:
            return
        self._done = True
        self._call(self.telemetry.fail_stream, self.stream_id, status_code=status,
                   error_type=error_type, message=message)

    # --- the app's end ---------------------------------------------------------------------------

    def app_raised(self, exc: BaseException) -> None:
        """The app raised: the request failed, at whatever point it had reached."""
        if self._done:
            return
        if self._disconnected or self._send_failed:
            status, error_type = DISCONNECT_STATUS, DISCONNECT_ERROR
            message = "client disconnected"
        else:
            status, error_type = 500, type(exc).__name__
            message = clip(str(exc))
        if self.stream_id is not None:
            self._fail_stream(status, error_type, message)
        else:
            self._record_failure(status, error_type, message, self._elapsed())

    def app_returned(self) -> None:
        """The app returned; a response it left unfinished is a failure."""
        if self._done:
            return
        if self._disconnected or self._send_failed:
            status, error_type = DISCONNECT_STATUS, DISCONNECT_ERROR
        else:
            status = 500
            error_type = "no_response" if self.status is None else "incomplete_response"
        if self.stream_id is not None:
            self._fail_stream(status, error_type, "")
        else:
            self._record_failure(status, error_type, "", self._elapsed())

    # --- helpers ---------------------------------------------------------------------------------

    def _record_failure(self, status: int, error_type: str, message: str,
                        latency: float) -> None:
        self._done = True
        self._call(self.telemetry.record_failure, endpoint=self.endpoint, model=self.model(),
                   status_code=status, error_type=error_type, message=message,
                   latency_s=latency, api_key=self.api_key)

    def _elapsed(self) -> float:
        return max(0.0, self.mw.clock() - self.started)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - InvalidMetricInput or a tracker bug
            self._log(fn.__name__, exc)

    def _log(self, what: str, exc: Exception) -> None:
        text = str(exc)
        if self.api_key:
            text = text.replace(self.api_key, "<api key>")
        log.debug("fakeai_metrics middleware: %s failed on %s: %s: %s", what, self.endpoint,
                  type(exc).__name__, text)


def _normalise(path: str) -> str:
    return path.rstrip("/") or "/"


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    return {bytes(k).lower(): bytes(v) for k, v in raw}


def _bearer_key(raw: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key of ``Authorization: Bearer <key>``, or None."""
    for name, value in raw:
        if bytes(name).lower() == b"authorization":
            scheme, _, key = bytes(value).decode("latin-1").strip().partition(" ")
            key = key.strip()
            return key if scheme.lower() == "bearer" and key else None
    return None


class _Capture:
    """A body kept up to ``limit`` bytes, and past that only its last ``tail`` bytes."""

    def __init__(self, limit: int, tail: int) -> None:
        self.limit = limit
        self.tail_limit = tail
        self.head = bytearray()
        self.tail = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        if not chunk:
            return
        if not self.truncated:
            if len(self.head) + len(chunk) <= self.limit:
                self.head += chunk
                return
            self.truncated = True
            self.tail = self.head[-self.tail_limit:] if self.tail_limit else bytearray()
            self.head = bytearray()  # the head is no use once the body cannot be parsed whole
        if self.tail_limit:
            self.tail += chunk
            if len(self.tail) > self.tail_limit:
                del self.tail[:-self.tail_limit]

    def whole(self) -> bytes | None:
        """The complete body so far, or None once it outgrew the limit."""
        return None if self.truncated else bytes(self.head)
