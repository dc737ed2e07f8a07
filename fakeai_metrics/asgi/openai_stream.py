"""What an OpenAI-compatible stream's events mean: tokens, usage, the finish reason, an error.

``OpenAIStream.on_event`` reads one server-sent event (``sse.Event``) and says what it was. It
decides from the bytes whatever the bytes already tell, and decodes JSON only for the events that
can carry usage, an error or a finish reason: a chat or completions chunk is content when a
content field (``content``, ``text``, ``refusal``, ``reasoning_content``, ``reasoning``) holds a
non-empty string or ``tool_calls`` holds an object, found with one regex over the bytes; it is
decoded only when ``usage``, ``finish_reason`` or ``error`` holds something other than null. A
Responses API event is content by its ``event:`` name, and decoded otherwise.

The byte tests rely on JSON's own rules: a key is a quoted string followed by a colon, and no
quote inside a string value is unescaped, so ``"content": "x`` can only be that key with that
value, at whatever depth. A server that escapes the letters of a key (``"\\u0075sage"``) is not
read. ``tests/asgi/test_openai_stream.py`` checks these decisions on recorded payloads of OpenAI,
FakeAI, vLLM and the Responses API.
"""

from __future__ import annotations

import re
from typing import Any

from .openai_payloads import Usage, error_info, json_object, reason_name, responses_reason
from .sse import Event

#: What ``on_event`` returns.
NOTHING, TOKEN, USAGE_ONLY, DONE, FAILED = range(5)

#: A content field holding a non-empty string (group 1: where the string starts), or tool calls
#: holding an object.
_CONTENT = re.compile(
    rb'"(?:content|text|refusal|reasoning_content|reasoning)"\s*:\s*(")[^"]'
    rb'|"tool_calls"\s*:\s*\[\s*\{')
#: A field worth decoding the chunk for: usage, a finish reason or an error that is not null.
_DECODE = re.compile(rb'"(?:usage|finish_reason|error)"\s*:\s*[^\sn]')

#: Responses API stream events that carry generated output.
RESPONSES_CONTENT = frozenset({
    "response.output_text.delta", "response.refusal.delta",
    "response.function_call_arguments.delta", "response.reasoning_text.delta",
})
_RESPONSES_CONTENT_NAMES = frozenset(k.encode() for k in RESPONSES_CONTENT)
RESPONSES_DONE = frozenset({"response.completed", "response.incomplete"})
RESPONSES_FAILED = frozenset({"error", "response.failed"})


class OpenAIStream:
    """The meaning of one stream's events so far: its usage, finish reason and error."""

    __slots__ = ("usage", "finish_reason", "error", "_head", "_tail", "_wire_head", "_wire_tail")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.finish_reason = "stop"
        #: (status, error type, message) of an error event, once one came
        self.error: tuple[int, str, str] | None = None
        # The last plain content chunk around its content string: a chunk that is the same
        # bytes around another string (no quote in it, no backslash at its end) has the same
        # JSON structure, so it is content and needs no decoding either. Servers repeat id,
        # model and created on every chunk, so most chunks are decided by this test alone.
        self._head = self._tail = b"\xff"
        # The same around the whole event on the wire: ``data: `` before, a blank line after.
        self._wire_head = self._wire_tail = b"\xff"

    def repeats(self, chunk: bytes) -> bool:
        """Whether ``chunk`` is exactly one ``data:`` event of the last plain content chunk's
        shape around another string (no quote, no line end, no backslash at its end): a
        token, told by the bytes alone. Only for a chunk that starts a new event."""
        head, tail = self._wire_head, self._wire_tail
        if chunk.startswith(head) and chunk.endswith(tail):
            text = chunk[len(head):len(chunk) - len(tail)]
            return (text != b"" and b'"' not in text and b"\n" not in text
                    and b"\r" not in text and not text.endswith(b"\\"))
        return False

    def on_event(self, event: Event) -> int:
        """NOTHING, TOKEN (generated content), USAGE_ONLY (a chunk with usage and no choices:
        what ``stream_options.include_usage`` adds), DONE (``[DONE]``) or FAILED (``error``)."""
        data = event.data
        head, tail = self._head, self._tail
        if data.startswith(head) and data.endswith(tail):
            text = data[len(head):len(data) - len(tail)]
            if text and b'"' not in text and not text.endswith(b"\\"):
                return TOKEN
        if b'"choices"' in data:  # chat or completions chunk
            content = _CONTENT.search(data)
            if _DECODE.search(data) is not None:
                return self._chunk(json_object(data), content is not None)
            if content is None:
                return NOTHING
            self._learn(data, content.start(1))
            return TOKEN
        if len(data) < 16 and data.strip() == b"[DONE]":
            return DONE
        if event.name in _RESPONSES_CONTENT_NAMES:
            return TOKEN
        return self._typed(json_object(data), event.name)

    def _learn(self, data: bytes, opening: int) -> None:
        """Remember a plain content chunk's bytes around the string that opens at ``opening``."""
        if opening < 0:
            return  # content by its tool calls
        end = opening + 1
        while True:
            end = data.find(b'"', end)
            if end < 0:
                return
            backslashes = len(data[:end]) - len(data[:end].rstrip(b"\\"))
            if backslashes % 2 == 0:
                break
            end += 1
        self._head, self._tail = data[:opening + 1], data[end:]
        if b"\n" not in data and b"\r" not in data:  # a one-line event: its wire form is known
            self._wire_head, self._wire_tail = b"data: " + self._head, self._tail + b"\n\n"

    def _chunk(self, obj: dict[str, Any], token: bool) -> int:
        """A chat or completions chunk with a non-null usage, finish reason or error."""
        if isinstance(obj.get("error"), dict):
            return self._failed(obj["error"])
        choices = obj.get("choices")
        if isinstance(choices, list):
            for c in choices:
                if isinstance(c, dict) and (reason := reason_name(c.get("finish_reason"))):
                    self.finish_reason = reason
        usage = Usage.of(obj.get("usage"))
        if usage is not None:
            self.usage = usage
            if choices == []:
                return USAGE_ONLY
        return TOKEN if token else NOTHING

    def _typed(self, obj: dict[str, Any], name: bytes) -> int:
        """Anything that is not a chat chunk: Responses API events, error objects."""
        if not obj:
            return NOTHING
        kind = obj.get("type")
        if not isinstance(kind, str):
            kind = name.decode("utf-8", "replace")
        error = obj.get("error")
        if isinstance(error, dict):
            return self._failed(error)
        if kind in RESPONSES_FAILED or obj.get("object") == "error":
            response = obj.get("response")
            inner = response.get("error") if isinstance(response, dict) else None
            # response.failed carries response.error; "error" events and vLLM put it on top
            return self._failed(inner if isinstance(inner, dict) else obj)
        if kind in RESPONSES_CONTENT:
            return TOKEN
        if kind in RESPONSES_DONE:
            response = obj.get("response")
            if isinstance(response, dict):
                usage = Usage.of(response.get("usage"))
                if usage is not None:
                    self.usage = usage
                self.finish_reason = responses_reason(response) or self.finish_reason
        return NOTHING

    def _failed(self, error: dict[str, Any]) -> int:
        error_type, message = error_info({"error": error}, "stream_error")
        code = error.get("code")
        status = code if code.__class__ is int and 400 <= code <= 599 else 500
        self.error = (status, error_type, message)
        return FAILED
