"""ASGI middleware that measures OpenAI-compatible routes and records them in a ``Telemetry`` hub.

This module is the ASGI plumbing: it wraps ``receive`` and ``send``, and hands what passes to
``sse.SSEScanner`` (event boundaries) and ``openai_stream.OpenAIStream`` (what an event means).
It records, per request:

- a non-streamed response: ``record_request`` with the ``usage`` of a 2xx JSON body, or
  ``record_failure`` with the OpenAI error body of a status >= 400;
- a ``text/event-stream`` response: ``start_stream`` at the response start (dated back to the
  request's arrival, so TTFT includes the time before the first byte), one token (the tracker
  call ``stream_token`` makes) for every server-sent event that carries generated content (one
  clock read, in the tracker), and
  ``finish_stream`` (with the usage the server sent) or ``fail_stream`` on an ``error`` event,
  an exception or a client disconnect.

Usage for every stream: a streamed chat or completions request without
``stream_options.include_usage`` gets it added to the body the app receives (``content-length``
adjusted), and the usage-only chunk this makes the upstream send is removed from what the client
receives, so the client gets the bytes it would have got without the middleware. The request body
is therefore read before the app is called (up to ``max_body_bytes``; a larger one passes
unchanged). ``include_usage=False`` turns this off for upstreams that refuse ``stream_options``.
Every other message is forwarded at once, as the app sent it.

Memory is bounded per request whatever the response size: a capped copy of the request body, a
capped head and tail of a JSON response (for ``usage``, which OpenAI puts last) and, for a stream,
one partially received event. Metrics never break the app: an error in this module or in the hub
is logged at DEBUG (with the API key scrubbed) and the response goes on.

Only POST requests to the configured paths are measured; everything else (other paths, other
methods, websocket and lifespan scopes) goes straight to the app. Written against the ASGI 3
spec only, so it wraps any ASGI app, and Starlette/FastAPI take it as
``app.add_middleware(FakeAIMetricsMiddleware, telemetry=telemetry)``.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
from typing import Any, Awaitable, Callable, Iterable, MutableMapping

from ..catalog import UNKNOWN_MODEL
from .openai_payloads import (MAX_LABEL, Usage, clip, error_info, finish_reason, json_object,
                              request_model, trailing_usage)
from .openai_stream import DONE, FAILED, TOKEN, USAGE_ONLY, OpenAIStream
from .sse import Event, SSEScanner
from ..telemetry import Telemetry
from ..validation import encodable

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
#: Measured paths whose streams take ``stream_options.include_usage``.
_USAGE_ROUTES = ("/chat/completions", "/completions")

#: Status and error type recorded when the client goes away before the response is complete
#: (499 is nginx's "client closed request").
DISCONNECT_STATUS, DISCONNECT_ERROR = 499, "client_disconnect"

_INCLUDE_USAGE = b'"stream_options":{"include_usage":true},'
_MiB = 1 << 20
_TAIL_BYTES = 64 * 1024     # end of a large JSON response kept to find its trailing "usage"


class FakeAIMetricsMiddleware:
    """Records every POST to ``routes`` into ``telemetry``; a pure ASGI 3 middleware.

    ``clock`` (seconds, monotonic) times requests from their arrival; it defaults to the hub's
    own (``telemetry.now``), which streams are measured on, and must be that clock if given.
    ``max_body_bytes`` caps what is kept of a request or JSON response body for parsing and
    ``max_event_bytes`` the size of one server-sent event; larger ones pass through unparsed.
    ``include_usage`` (default True) asks the upstream for usage on streams whose client did
    not, and hides that usage chunk from the client (see the module docstring).
    """

    def __init__(self, app: ASGIApp, telemetry: Telemetry,
                 routes: Iterable[str] = OPENAI_ROUTES, *,
                 clock: Callable[[], float] | None = None,
                 max_body_bytes: int = _MiB, max_event_bytes: int = _MiB,
                 include_usage: bool = True) -> None:
        self.app = app
        self.telemetry = telemetry
        self.routes = frozenset(_normalise(r) for r in routes)
        #: route -> whether its streams are asked for usage; looked up by the raw path first
        self._asks = {r: include_usage and r.endswith(_USAGE_ROUTES) for r in self.routes}
        self.clock = clock if clock is not None else telemetry.now
        self.max_body_bytes = max_body_bytes
        self.max_event_bytes = max_event_bytes
        self.include_usage = include_usage
        # ids unique per request, and across middlewares sharing one hub
        self._ids = itertools.count(1)
        self._id_prefix = "asgi-" + secrets.token_hex(4)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        path = scope.get("path") or ""
        endpoint = path if path in self._asks and not scope.get("root_path") \
            else self._endpoint(path, scope.get("root_path") or "")
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
        if self._asks[endpoint]:
            scope = await exchange.ask_for_usage(scope)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except BaseException as exc:
            exchange.guarded(exchange.app_raised, exc)
            raise
        if not exchange._done:  # the common case, a complete response, costs nothing more
            exchange.guarded(exchange.app_returned)

    def _endpoint(self, path: str, root: str) -> str | None:
        """The measured route of a POST to ``path`` under ``root_path``, or None to pass it
        through (``__call__`` takes the common case, a route path and no root, itself)."""
        if root and path.startswith(root):  # mounted under a prefix: the path includes it
            path = path[len(root):]
        path = _normalise(path)
        return path if path in self.routes else None

    def _new_stream_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"


class _Exchange:
    """One request/response pair: what has been seen of it and what has been recorded.

    Each outcome is recorded once (``_done``); every hub call runs inside a ``try`` (``_call``,
    or the one around the work of ``send`` and ``receive``) so that a refused call
    (``InvalidMetricInput``) or a bug here is logged, never raised into the app.
    """

    __slots__ = ("mw", "telemetry", "endpoint", "api_key", "started", "_receive_downstream",
                 "_send_downstream", "_replay", "_request", "_request_complete",
                 "_request_json", "_model", "status", "_response", "_stream", "_scanner",
                 "_strip_usage", "stream_id", "_token", "_done", "_reading", "_disconnected",
                 "_send_failed")

    def __init__(self, mw: FakeAIMetricsMiddleware, endpoint: str, scope: Scope,
                 receive: Receive, send: Send) -> None:
        self.mw = mw
        self.telemetry = mw.telemetry
        self.endpoint = endpoint
        self.api_key = _bearer_key(scope.get("headers") or ())
        self.started = mw.clock()
        self._receive_downstream = receive
        self._send_downstream = send
        self._replay: list[Message] = []          # request messages read ahead of the app
        self._request = _Capture(mw.max_body_bytes, tail=0)
        self._request_complete = False
        self._request_json: dict[str, Any] | None = None
        self._model: str | None = None
        self.status: int | None = None
        self._response: _Capture | None = None   # JSON body being kept for parsing
        self._stream: OpenAIStream | None = None  # set when the response is an event stream
        self._scanner: SSEScanner | None = None   # None too for a compressed stream
        self._strip_usage = False                 # usage was asked for on the client's behalf
        self.stream_id: str | None = None
        self._token: Callable[[str, str, int], None] | None = None  # the tracker's record_token
        self._done = False                          # outcome recorded (or given up)
        self._reading = False                       # a readable stream, outcome not recorded
        self._disconnected = False
        self._send_failed = False

    # --- the wrappers the app sees -------------------------------------------------------------

    async def receive(self) -> Message:
        if self._replay:
            return self._replay.pop(0)
        message = await self._receive_downstream()
        try:
            self._on_receive(message)
        except Exception as exc:  # noqa: BLE001 - metrics must never break the request
            self._log("receive", exc)
        return message

    async def send(self, message: Message) -> None:
        # look first, then forward: token times are when the app produced them, not when a slow
        # client drained its socket, and the outcome is recorded before the client can see it
        if self._reading:
            try:
                if message["type"] == "http.response.body":
                    # the per-chunk path: a message that repeats the last content chunk's shape
                    # is one whole token event, known from its bytes (no split, no decoding)
                    body = message.get("body") or b""
                    size = len(body)
                    scanner, stream = self._scanner, self._stream
                    if (body.__class__ is bytes
                            and size <= scanner.whole_max  # type: ignore[union-attr]
                            and stream.repeats(body)):  # type: ignore[union-attr]
                        self._token(self.stream_id, "", size)  # type: ignore[misc, arg-type]
                        if not message.get("more_body", False):
                            self._finish_stream()
                    else:
                        cut = self._on_stream_body(message)
                        if cut is None:
                            return  # it held only the usage chunk asked for here
                        message = cut
                else:
                    self._on_send(message)
            except Exception as exc:  # noqa: BLE001 - metrics must never break the response
                self._log("send", exc)
        elif not self._done:
            try:
                self._on_send(message)
            except Exception as exc:  # noqa: BLE001 - metrics must never break the response
                self._log("send", exc)
        try:
            await self._send_downstream(message)
        except BaseException:
            self._send_failed = True  # the server could not deliver: the client is gone
            raise

    def _on_stream_body(self, message: Message) -> Message | None:
        """A readable stream's body message in general: split into events, each recorded;
        returns the message without the spans to remove (None: nothing left to send)."""
        body = message.get("body") or b""
        if body:
            events = self._scanner.feed(  # type: ignore[union-attr]
                body if body.__class__ is bytes else bytes(body))
            if events:
                cuts = self._on_events(events)
                if cuts:
                    return _cut(message, body, cuts, message.get("more_body", False))
        if not message.get("more_body", False):
            self._finish_stream()
        return message

    def guarded(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run metrics code (a hub call, or this exchange's own); an error in it (a refused
        ``InvalidMetricInput`` or a bug) is logged at DEBUG and swallowed."""
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - metrics must never break the response
            self._log(getattr(fn, "__name__", "metrics"), exc)

    # --- request ---------------------------------------------------------------------------------

    async def ask_for_usage(self, scope: Scope) -> Scope:
        """Read the request body ahead of the app; for a stream that does not ask for usage,
        give the app a body that does (and the scope with its new ``content-length``)."""
        while True:
            message = await self._receive_downstream()
            self._replay.append(message)
            try:
                self._on_receive(message)
            except Exception as exc:  # noqa: BLE001 - metrics must never break the request
                self._log("receive", exc)
            if (message.get("type") != "http.request" or not message.get("more_body", False)
                    or self._request.truncated):
                break
        try:
            body = self._body_asking_for_usage()
        except Exception as exc:  # noqa: BLE001 - an odd body goes to the app as it came
            self._log("include_usage", exc)
            return scope
        if body is None:
            return scope
        self._replay = [{"type": "http.request", "body": body, "more_body": False}]
        self._strip_usage = True
        headers = [(k, v) for k, v in scope.get("headers") or ()
                   if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        return {**scope, "headers": headers}

    def _body_asking_for_usage(self) -> bytes | None:
        """The request body with ``stream_options.include_usage`` set, or None to leave it.

        Without a ``stream_options`` key the field is written in after the opening brace and
        the client's bytes are kept as they were (no re-encoding of numbers or text); otherwise
        the body is encoded again with the option set.
        """
        if not self._request_complete:
            return None
        body = self._request.whole() or b""
        if b'"stream"' not in body:  # not a stream: no decoding (a key is not escaped)
            return None
        obj = self._parsed_request()
        if obj.get("stream") is not True:
            return None
        options = obj.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            return None
        if "stream_options" not in obj and b'"stream_options"' not in body:
            brace = body.index(b"{")  # obj is a non-empty object: it has "stream"
            return body[:brace + 1] + _INCLUDE_USAGE + body[brace + 1:]
        obj["stream_options"] = {**(options if isinstance(options, dict) else {}),
                                 "include_usage": True}
        return json.dumps(obj).encode()

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

    def _parsed_request(self) -> dict[str, Any]:
        """The JSON request body as received so far ({} when it is not an object), parsed once
        it is complete."""
        if self._request_json is not None:
            return self._request_json
        obj = json_object(self._request.whole())
        if self._request_complete:
            self._request_json = obj
        return obj

    def model(self) -> str:
        """``model`` of the JSON request body (``request_model``), "unknown" when there is
        none."""
        if self._model is not None:
            return self._model
        found = self._request_json.get("model") if self._request_json is not None \
            else request_model(self._request.whole())
        # JSON may carry lone surrogates: replaced, so the label can be written out
        model = encodable(found) if isinstance(found, str) and 0 < len(found) <= MAX_LABEL \
            else UNKNOWN_MODEL
        if self._request_complete:
            self._model = model
        return model

    # --- response --------------------------------------------------------------------------------

    def _on_send(self, message: Message) -> None:
        """Look at a message the app sends, other than a readable stream's body."""
        kind = message.get("type")
        if kind == "http.response.body":
            more = message.get("more_body", False)
            if self._stream is not None:  # a compressed stream: only its end can be seen
                if not more:
                    self._finish_stream()
                return
            if self._response is not None:
                self._response.add(message.get("body") or b"")
            if not more:
                self._on_complete()
        elif kind == "http.response.start":
            self._on_start(message)

    def _on_start(self, message: Message) -> None:
        self.status = status = int(message.get("status", 200))
        content_type, encoding = b"", b"identity"
        for name, value in message.get("headers") or ():  # bytes, or bytearray
            name = name.lower()
            if name == b"content-type":
                content_type = value.lower()
            elif name == b"content-encoding":
                encoding = value.lower()
        encoded = encoding != b"identity"
        if status < 400 and content_type.startswith(b"text/event-stream"):
            self.stream_id = self.mw._new_stream_id()
            self.guarded(self.telemetry.start_stream, self.stream_id, endpoint=self.endpoint,
                         model=self.model(), api_key=self.api_key, started_at=self.started)
            self._stream = OpenAIStream()
            # a compressed stream is counted (start, outcome) but its tokens cannot be read
            if not encoded:
                self._scanner = SSEScanner(self.mw.max_event_bytes)
                # what Telemetry.stream_token does, without its extra call: one call per token
                self._token = self.telemetry.streaming.record_token
                self._reading = True
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
        usage = None if body is None else Usage.of(trailing_usage(body.last()))
        prompt, completion, cached = usage if usage is not None else (0, 0, 0)
        reason = None if body is None else finish_reason(body.last())
        # inside the try of send: a refused call is logged there
        self.telemetry.record_request(endpoint=self.endpoint, model=self.model(),
                                      latency_s=latency, prompt_tokens=prompt or 0,
                                      completion_tokens=completion or 0, cached_tokens=cached,
                                      api_key=self.api_key, finish_reason=reason)

    # --- streams ---------------------------------------------------------------------------------

    def _on_events(self, events: list[Event]) -> list[tuple[int, int]] | None:
        """Record what the events of one body message mean; returns the spans to remove."""
        on_event = self._stream.on_event  # type: ignore[union-attr]
        token = self._token
        stream_id = self.stream_id or ""  # set with the stream, before any body
        cuts = None
        for event in events:
            step = on_event(event)
            if step == TOKEN:
                token(stream_id, "", event.end - event.start)  # type: ignore[misc]
            elif step == USAGE_ONLY:
                if self._strip_usage and event.start >= 0:
                    cuts = (cuts or []) + [(event.start, event.end)]
            elif step == DONE:
                self._finish_stream()
                break
            elif step == FAILED:
                self._fail_stream(*self._stream.error)  # type: ignore[union-attr, misc]
                break
        return cuts

    def _finish_stream(self) -> None:
        if self._done:
            return
        self._done, self._reading = True, False
        u = self._stream.usage if self._stream is not None else None
        if u is None:  # no usage: bill the content events seen
            self.guarded(self.telemetry.finish_stream, self.stream_id,
                         finish_reason=self._stream.finish_reason if self._stream else "stop")
        else:  # a count the server did not send falls back to what the hub knows
            self.guarded(self.telemetry.finish_stream, self.stream_id,
                         finish_reason=self._stream.finish_reason,  # type: ignore[union-attr]
                         completion_tokens=u.completion, prompt_tokens=u.prompt,
                         cached_tokens=u.cached)

    def _fail_stream(self, status: int, error_type: str, message: str) -> None:
        if self._done:
            return
        self._done, self._reading = True, False
        self.guarded(self.telemetry.fail_stream, self.stream_id, status_code=status,
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
        self.guarded(self.telemetry.record_failure, endpoint=self.endpoint, model=self.model(),
                     status_code=status, error_type=error_type, message=message,
                     latency_s=latency, api_key=self.api_key)

    def _elapsed(self) -> float:
        return max(0.0, self.mw.clock() - self.started)

    def _log(self, what: str, exc: Exception) -> None:
        text = str(exc)
        if self.api_key:
            text = text.replace(self.api_key, "<api key>")
        log.debug("fakeai_metrics middleware: %s failed on %s: %s: %s", what, self.endpoint,
                  type(exc).__name__, text)


def _cut(message: Message, body: bytes, cuts: list[tuple[int, int]], more: bool
         ) -> Message | None:
    """``message`` without the byte spans ``cuts``; None when nothing is left of a message
    that is not the last (the client would not have received it)."""
    parts, pos = [], 0
    for start, end in cuts:
        parts.append(body[pos:start])
        pos = end
    parts.append(body[pos:])
    rest = b"".join(parts)
    if not rest and more:
        return None
    return {**message, "body": rest}


def _normalise(path: str) -> str:
    return path.rstrip("/") or "/"


def _bearer_key(raw: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key of ``Authorization: Bearer <key>``, or None."""
    for name, value in raw:
        if name.lower() == b"authorization":
            scheme, _, key = value.decode("latin-1").strip().partition(" ")
            key = key.strip()
            return key if scheme.lower() == "bearer" and key else None
    return None


class _Capture:
    """A body kept up to ``limit`` bytes, and past that only its last ``tail`` bytes."""

    __slots__ = ("limit", "tail_limit", "parts", "size", "tail", "truncated")

    def __init__(self, limit: int, tail: int) -> None:
        self.limit = limit
        self.tail_limit = tail
        self.parts: list[bytes] = []   # the body while it is within the limit
        self.size = 0
        self.tail = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        if not chunk:
            return
        if not self.truncated:
            if self.size + len(chunk) <= self.limit:
                self.parts.append(chunk)
                self.size += len(chunk)
                return
            self.truncated = True
            if self.tail_limit:
                self.tail = bytearray(b"".join(self.parts)[-self.tail_limit:])
            self.parts = []  # the head is no use once the body cannot be parsed whole
        if self.tail_limit:
            self.tail += chunk
            if len(self.tail) > self.tail_limit:
                del self.tail[:-self.tail_limit]

    def whole(self) -> bytes | None:
        """The complete body so far, or None once it outgrew the limit."""
        if self.truncated:
            return None
        parts = self.parts
        if len(parts) != 1:
            parts[:] = [b"".join(parts)]
        return bytes(parts[0])

    def last(self) -> bytes:
        """The end of the body: all of it while within the limit, else its last ``tail``."""
        return bytes(self.tail) if self.truncated else self.whole() or b""
