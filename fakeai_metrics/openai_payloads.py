"""Reading OpenAI-shaped payloads: usage counts, error bodies, streamed chunks with content.

Servers differ (chat and completions, embeddings, the Responses API, vLLM's extra delta fields,
FastAPI's ``detail``); everything here is lenient and never raises on a malformed body: a count
that cannot be read is 0, so a request is still counted rather than refused.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from .validation import MAX_TOKENS, encodable

MAX_LABEL = 200  # longer model names / error types are not label values, they are junk
_MAX_MESSAGE = 1000

#: Responses API stream events that carry generated output.
RESPONSES_CONTENT = frozenset({
    "response.output_text.delta", "response.refusal.delta",
    "response.function_call_arguments.delta",
})
RESPONSES_DONE = frozenset({"response.completed", "response.incomplete"})
RESPONSES_FAILED = frozenset({"error", "response.failed"})
#: Chat delta fields that carry generated text (``reasoning_content`` is vLLM's / DeepSeek's).
_DELTA_TEXT = ("content", "refusal", "reasoning_content")


class Usage(NamedTuple):
    """Token counts of one request, cleaned so the hub never refuses them."""

    prompt: int = 0
    completion: int = 0
    cached: int = 0

    @classmethod
    def of(cls, usage: Any) -> Usage:
        """OpenAI's chat/completions/embeddings ``usage`` or the Responses API's.

        A missing or malformed count reads as 0 and cached is clamped to prompt, so a server
        with odd usage still has its request counted rather than refused.
        """
        if not isinstance(usage, dict):
            return cls()
        if "input_tokens" in usage or "output_tokens" in usage:  # Responses API
            prompt = _count(usage.get("input_tokens"))
            completion = _count(usage.get("output_tokens"))
            details = usage.get("input_tokens_details")
        else:
            prompt = _count(usage.get("prompt_tokens"))
            if "prompt_tokens" not in usage:  # an embeddings server that only sends the total
                prompt = _count(usage.get("total_tokens"))
            completion = _count(usage.get("completion_tokens"))
            details = usage.get("prompt_tokens_details")
        cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
        return cls(prompt, completion, min(cached, prompt))


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        return 0
    return value


def has_content(choice: Any) -> bool:
    """Does a streamed chat or completions choice carry generated output?"""
    if not isinstance(choice, dict):
        return False
    text = choice.get("text")  # /v1/completions
    if isinstance(text, str) and text:
        return True
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return False
    if any(isinstance(delta.get(f), str) and delta[f] for f in _DELTA_TEXT):
        return True
    tool_calls = delta.get("tool_calls")
    return isinstance(tool_calls, list) and bool(tool_calls)


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
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return {}
    return obj if isinstance(obj, dict) else {}


_COLON = re.compile(rb"\s*:\s*")


def trailing_usage(tail: bytes) -> Any:
    """The last ``"usage": {...}`` in the end of a body too large to keep whole.

    OpenAI writes ``usage`` after the payload (an embeddings list can be megabytes), so the
    tail of the body is where it is.
    """
    at = tail.rfind(b'"usage"')
    colon = _COLON.match(tail, at + len(b'"usage"')) if at >= 0 else None
    if colon is None:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(tail[colon.end():].decode("utf-8", "replace"))
    except ValueError:
        return None
    return value


def clip(text: str) -> str:
    return text[:_MAX_MESSAGE]
