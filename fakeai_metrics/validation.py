"""Checks for what callers hand a tracker, run before any state changes.

A rejected call raises ``InvalidMetricInput`` (a ``ValueError``) naming the argument, and changes
nothing; the message never repeats an API key.
"""

from __future__ import annotations

import math

#: Largest token count one call may report; anything larger is a bug upstream, not a workload.
MAX_TOKENS = 10**12
#: Longest latency one call may report (about 115 days), so unit conversions stay finite.
MAX_SECONDS = 1e7


class InvalidMetricInput(ValueError):
    """An argument a tracker cannot record; the call changed nothing."""


def tokens(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMetricInput(f"{name} must be an int, got {type(value).__name__}")
    if value < 0 or value > MAX_TOKENS:
        raise InvalidMetricInput(f"{name} must be in 0..{MAX_TOKENS}, got {value}")
    return value


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
    """A string that may be empty (an error message)."""
    if not isinstance(value, str):
        raise InvalidMetricInput(f"{name} must be a string, got {type(value).__name__}")
    return value


def label(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidMetricInput(f"{name} must be a non-empty string, got {type(value).__name__}")
    if not value:
        raise InvalidMetricInput(f"{name} must be a non-empty string, got ''")
    return value


def ratio(name: str, value: object, *, low_open: bool = True, high_closed: bool = True) -> float:
    """A number in (0, 1] by default; ``high_closed=False`` for (0, 1)."""
    v = non_negative(name, value)
    if (v <= 0 if low_open else v < 0) or (v > 1 if high_closed else v >= 1):
        interval = f"{'(' if low_open else '['}0, 1{']' if high_closed else ')'}"
        raise InvalidMetricInput(f"{name} must be in {interval}, got {v}")
    return v
