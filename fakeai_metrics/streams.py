"""The state of one open stream: a few numbers however many tokens it carries."""

from __future__ import annotations

from typing import Any

from .instruments import Distribution


class OpenStream:
    """Start, first and last token times and the token count of one stream.

    ``key`` is the label tuple the stream reports under (its model or endpoint). ``itl`` is the
    inter-token-latency series the stream's gaps go to, remembered at its first gap so that later
    tokens update it without looking it up (``StreamingMetricsTracker.record_token``). In
    multiprocess mode ``mirror`` is that series' prometheus_client child, which every gap also
    goes to.
    """

    __slots__ = ("key", "start", "first", "last", "tokens", "prompt_tokens", "itl", "mirror")

    def __init__(self, key: tuple[str, ...], start: float, prompt_tokens: int = 0) -> None:
        self.key = key
        self.start = start
        self.first: float | None = None
        self.last = start
        self.tokens = 0
        self.prompt_tokens = prompt_tokens
        self.itl: Distribution | None = None
        self.mirror: Any = None

    def tpot(self) -> float | None:
        """(last - first) / (tokens - 1), for streams with at least two tokens."""
        if self.tokens < 2 or self.first is None:
            return None
        return (self.last - self.first) / (self.tokens - 1)

    def tokens_per_second(self, end: float) -> float | None:
        """tokens / (end - start), for streams that produced tokens over a positive time."""
        elapsed = end - self.start
        return self.tokens / elapsed if self.tokens and elapsed > 0 else None
