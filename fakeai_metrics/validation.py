"""Checks for what callers hand a tracker, run before any state changes.

A rejected call raises ``InvalidMetricInput`` (a ``ValueError``) naming the argument, and changes
nothing; the message never repeats an API key.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

#: Largest token count one call may report; anything larger is a bug upstream, not a workload.
MAX_TOKENS = 10**12
#: Longest latency one call may report (about 115 days), so unit conversions stay finite.
MAX_SECONDS = 1e7
#: Largest size of one streamed chunk (1 GiB); a larger one is a bug, not an event.
MAX_BYTES = 1 << 30


#: The code points ``str.encode("utf-8")`` refuses: surrogates, which only occur unpaired in str.
_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidMetricInput(ValueError):
    """An argument a tracker cannot record; the call changed nothing."""


def optional(check: Callable[[str, Any], object], name: str, value: object) -> None:
    """``check(name, value)`` unless ``value`` is None (an argument that may be left out)."""
    if value is not None:
        check(name, value)


def integer(name: str, value: object, maximum: int) -> int:
    """An int in 0..maximum (a count of tokens or bytes)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMetricInput(f"{name} must be an int, got {type(value).__name__}")
    if value < 0 or value > maximum:
        raise InvalidMetricInput(f"{name} must be in 0..{maximum}, got {value}")
    return value


def tokens(name: str, value: object) -> int:
    return integer(name, value, MAX_TOKENS)


def usage(model: object, endpoint: object, prompt_tokens: object, completion_tokens: object,
          cached_tokens: object = 0) -> None:
    """One request's model, endpoint and token counts (cached tokens are part of the prompt)."""
    label("model", model)
    label("endpoint", endpoint)
    tokens("prompt_tokens", prompt_tokens)
    tokens("completion_tokens", completion_tokens)
    tokens("cached_tokens", cached_tokens)
    if cached_tokens > prompt_tokens:  # type: ignore[operator]
        raise InvalidMetricInput(f"cached_tokens ({cached_tokens}) is part of prompt_tokens "
                                 f"({prompt_tokens}) and cannot exceed it")


def non_negative(name: str, value: object, maximum: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidMetricInput(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or not 0 <= value <= maximum:
        raise InvalidMetricInput(f"{name} must be a finite number in 0..{maximum}, got {value}")
    return float(value)


def seconds(name: str, value: object) -> float:
    return non_negative(name, value, MAX_SECONDS)


def milliseconds(name: str, value: object) -> float:
    return non_negative(name, value, MAX_SECONDS * 1000)


def status_code(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMetricInput(f"status_code must be an int, got {type(value).__name__}")
    if not 100 <= value <= 599:
        raise InvalidMetricInput(f"status_code must be in 100..599, got {value}")
    return value


def text(name: str, value: object) -> str:
    """A string that may be empty (an error message); unencodable characters become U+FFFD."""
    if not isinstance(value, str):
        raise InvalidMetricInput(f"{name} must be a string, got {type(value).__name__}")
    return encodable(value)


def label(name: str, value: object) -> str:
    """A non-empty string that can be written out as UTF-8 (an exported label value or a key).

    Python strings may hold lone surrogates (``json.loads('"\\ud800"')`` makes one); such a
    value would make every later ``generate_latest`` raise, so it is refused here. The message
    never repeats the value, which may be an API key.
    """
    if not isinstance(value, str):
        raise InvalidMetricInput(f"{name} must be a non-empty string, got {type(value).__name__}")
    if not value:
        raise InvalidMetricInput(f"{name} must be a non-empty string, got ''")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidMetricInput(
                f"{name} must be text that encodes as UTF-8; it holds an unpaired surrogate "
                f"at position {e.start}") from None
    return value


def encodable(value: str) -> str:
    """``value`` with anything UTF-8 cannot encode (lone surrogates) replaced by U+FFFD: the
    documented fallback for free text from clients (error messages, a request's model)."""
    return value if value.isascii() else _SURROGATE.sub("\ufffd", value)


def count(name: str, value: object, minimum: int = 0) -> int:
    """A whole number of at least ``minimum``: a size, a cap or a threshold of a configuration."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMetricInput(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise InvalidMetricInput(f"{name} must be >= {minimum}, got {value}")
    return value


def positive(name: str, value: object, maximum: float = math.inf) -> float:
    """A finite number > 0 (a window length, a limit)."""
    v = non_negative(name, value, maximum)
    if v == 0:
        raise InvalidMetricInput(f"{name} must be > 0, got {value}")
    return v


def bounds(name: str, value: object) -> tuple[float, ...]:
    """Histogram bucket bounds, sorted: a non-empty sequence of distinct finite numbers
    (``+Inf`` is added by the exposition), so no two ``le`` lines are the same."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise InvalidMetricInput(f"{name} must be a sequence of numbers, got "
                                 f"{type(value).__name__}")
    out = []
    for b in value:
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b):
            raise InvalidMetricInput(f"{name} must hold finite numbers, got {b!r}")
        out.append(float(b))
    if not out:
        raise InvalidMetricInput(f"{name} must hold at least one bound")
    out.sort()
    if any(a == b for a, b in zip(out, out[1:])):
        raise InvalidMetricInput(f"{name} must not repeat a bound, got {out}")
    return tuple(out)


def ratio(name: str, value: object, *, low_open: bool = True, high_closed: bool = True) -> float:
    """A number in (0, 1] by default; ``high_closed=False`` for (0, 1)."""
    v = non_negative(name, value)
    if (v <= 0 if low_open else v < 0) or (v > 1 if high_closed else v >= 1):
        interval = f"{'(' if low_open else '['}0, 1{']' if high_closed else ')'}"
        raise InvalidMetricInput(f"{name} must be in {interval}, got {v}")
    return v
