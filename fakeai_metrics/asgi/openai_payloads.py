"""Reading OpenAI-shaped payloads: usage counts and error bodies.

Servers differ (chat and completions, embeddings, the Responses API, FakeAI's null fields, vLLM,
FastAPI's ``detail``); everything here is lenient and never raises on a malformed body: a count
that cannot be read is absent, so a request is still counted rather than refused.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from ..catalog import OTHER_FINISH_REASON
from ..keys import MAX_MESSAGE
from ..validation import MAX_TOKENS, encodable

MAX_LABEL = 200  # longer model names / error types are not label values, they are junk
_DECODER = json.JSONDecoder()


class Usage(NamedTuple):
    """Token counts of one request, each None when the server sent no number for it."""

    prompt: int | None = None
    completion: int | None = None
    cached: int = 0

    @classmethod
    def of(cls, usage: Any) -> Usage | None:
        """The counts of any ``usage`` object real servers send, or None when it has none.

        Each count is the first field *holding a number*, never the first key present: FakeAI
        sends ``"input_tokens": null`` beside ``"prompt_tokens": 25``, the Responses API only
        ``input_tokens``/``output_tokens``, vLLM ``"prompt_tokens_details": null``, and an
        embeddings server may send only ``total_tokens`` (then that is the prompt). A count that
        is not a token count (negative, a float, a bool, too large) is treated as absent, and
        cached is clamped to the prompt, so the hub never refuses what a server sent.
        """
        if not isinstance(usage, dict):
            return None
        get = usage.get
        prompt = _count(get("prompt_tokens"))
        if prompt is None:
            prompt = _count(get("input_tokens"))
        completion = _count(get("completion_tokens"))
        if completion is None:
            completion = _count(get("output_tokens"))
        if prompt is None and completion is None:
            prompt = _count(get("total_tokens"))
            if prompt is None:
                return None
        details = get("prompt_tokens_details")
        cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else None
        if cached is None:
            details = get("input_tokens_details")
            if isinstance(details, dict):
                cached = _count(details.get("cached_tokens"))
        return cls(prompt, completion, min(cached or 0, prompt or 0))


def _count(value: Any) -> int | None:
    """``value`` if it is a token count, else None (absent, null, negative, float, bool)."""
    if value.__class__ is not int or not 0 <= value <= MAX_TOKENS:
        return None
    return value


def error_info(body: dict[str, Any], default: str) -> tuple[str, str]:
    """(error type, message) of an OpenAI error body: ``type``, else ``code``, else ``default``."""
    error = body.get("error")
    message: Any = ""
    error_type: Any = None
    if isinstance(error, dict):
        error_type = error.get("type") or error.get("code")
        message = error.get("message") or ""
    elif isinstance(error, str):  # some servers send {"error": "text"}
        message = error
    elif isinstance(body.get("detail"), str):  # FastAPI's HTTPException
        message = body["detail"]
    if error_type is None or isinstance(error_type, bool) or not str(error_type):
        error_type = default
    error_type = encodable(str(error_type)[:MAX_LABEL])
    return error_type, clip(message if isinstance(message, str) else str(message))


def json_object(data: bytes | None) -> dict[str, Any]:
    """The JSON object in ``data``, or {} when it is not one."""
    if not data:
        return {}
    try:
        try:
            obj = _DECODER.decode(data.decode())  # UTF-8, as servers send; no detection pass
        except UnicodeDecodeError:
            obj = json.loads(data)  # UTF-16/32, which JSON also allows
    except (ValueError, RecursionError):
        return {}
    return obj if isinstance(obj, dict) else {}


_USAGE_KEY = re.compile(rb'"usage"\s*:\s*')
_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]*)"')


def request_model(body: bytes | None) -> Any:
    """The ``model`` of a JSON request body; None when it has none.

    Read from the bytes when ``"model"`` occurs once and holds a plain string (no escapes), so
    a request is not decoded for its model: one pass of ``bytes.find`` over the body (to know
    the key occurs once) and one anchored match cost about a quarter of decoding it (chat
    requests of 5 kB and 47 kB: 2.3–2.9 and 22–25 µs, against 7.5–11.7 and 88–94 µs to
    decode, timeit, best of 5). Otherwise the body is decoded. The bytes cannot tell the key's depth nor
    whether the rest of the body is valid JSON: a body whose only ``model`` key is nested, or
    that is broken after it, is counted under that model (the server answers it anyway).
    """
    if not body:
        return None
    at = body.find(b'"model"')
    if at >= 0 and body.find(b'"model"', at + 7) < 0:
        found = _MODEL.match(body, at)
        if found is not None:
            try:
                return found.group(1).decode()
            except UnicodeDecodeError:
                pass
    return json_object(body).get("model")


def trailing_usage(tail: bytes) -> Any:
    """The value of the last ``"usage"`` key in a JSON response body, or in its end.

    OpenAI, the Responses API, vLLM and FakeAI write ``usage`` at the top level after the
    payload (an embeddings list can be megabytes), so only that key's value is decoded, not
    the body: about a third of the cost of ``json.loads`` on a 600-byte chat completion. Only
    keys can be followed by a colon in JSON, so text inside a string is never taken for it.
    """
    at = len(tail)
    while True:
        at = tail.rfind(b'"usage"', 0, at)
        if at < 0:
            return None
        key = _USAGE_KEY.match(tail, at)
        if key is not None:
            break
    try:  # the C scanner raw_decode wraps, without its Python frame (typeshed omits the attribute)
        value, _ = _DECODER.scan_once(  # type: ignore[attr-defined]
            tail[key.end():].decode("utf-8", "replace"), 0)
    except (StopIteration, ValueError, RecursionError):
        return None
    return value


#: ``choices[0].finish_reason``: the first ``"finish_reason"`` key of a body and its value. As with
#: ``"usage"``, a quoted name followed by a colon is always a key, never text inside a string.
#: The value: a plain name (group 1), another string (group 2: counted as ``other``), or null.
_REASON_NAME = "[A-Za-z0-9_.-]{1,64}"
_FINISH_REASON = re.compile(
    rb'"finish_reason"\s*:\s*(?:"(' + _REASON_NAME.encode() + rb')"|(")|null)')
_RESPONSE_OBJECT = re.compile(rb'"object"\s*:\s*"response"')
#: Where a body says what it is: chat and completions bodies open with ``id``, ``object``,
#: ``created`` and ``model`` before ``choices``, a Responses body with ``id`` and ``object``.
#: Only this head is searched for them, so a body of another kind (megabytes of embeddings) is
#: not scanned.
_HEAD_BYTES = 2048
#: A Responses API ``incomplete_details.reason`` as chat completions name it.
RESPONSES_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}


def finish_reason(body: bytes) -> str | None:
    """The finish reason of a non-streamed response body, or None when it gives none.

    Chat and completions: ``choices[0].finish_reason`` (a string that is not a plain name:
    ``other``). The Responses API (``"object": "response"``, decoded whole): ``stop`` once
    ``completed``, and for ``incomplete`` its ``incomplete_details.reason`` as chat names it
    (``max_output_tokens``: ``length``; another reason: ``other``).
    """
    head = body[:_HEAD_BYTES]
    if b'"choices"' in head:
        at = body.find(b'"finish_reason"')
        found = _FINISH_REASON.match(body, at) if at >= 0 else None
        if found is None:
            return None
        name, other = found.groups()
        return name.decode() if name else OTHER_FINISH_REASON if other else None
    if b'"response"' not in head or _RESPONSE_OBJECT.search(head) is None:
        return None
    return responses_reason(json_object(body))


_PLAIN_NAME = re.compile(_REASON_NAME)


def reason_name(value: object) -> str | None:
    """A finish reason as the server gave it, if it is a plain name; ``other`` for any other
    string (empty, too long, odd characters); None for a value that is not a string."""
    if not isinstance(value, str):
        return None
    return value if _PLAIN_NAME.fullmatch(value) else OTHER_FINISH_REASON


def responses_reason(response: dict[str, Any]) -> str | None:
    """The finish reason of a Responses API response object: ``stop`` once ``completed``; for
    ``incomplete`` its ``incomplete_details.reason`` as chat names it (``max_output_tokens``:
    ``length``; another reason: ``other``); None while it is not a finished answer."""
    status = response.get("status")
    if status == "completed":
        return "stop"
    if status != "incomplete":
        return None  # queued, in progress, failed, cancelled: not a finished answer
    details = response.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    return RESPONSES_INCOMPLETE.get(reason, OTHER_FINISH_REASON) if isinstance(reason, str) \
        else OTHER_FINISH_REASON


def clip(text: str) -> str:
    return text[:MAX_MESSAGE]
