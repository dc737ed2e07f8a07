"""The state of one open stream: a few numbers however many tokens it carries."""

from __future__ import annotations

from typing import Any

from .instruments import Distribution


class OpenStream:
    """Start, first and last token times and the token count of one stream.

    ``key`` is the label tuple the stream reports under (its model or endpoint). ``itl`` is the
    inter-token-latency series the stream's gaps go to, remembered at its first gap so that later
    tokens update it without looking it up (``StreamingMetricsTracker.record_token``). In
    multiprocess mode ``mirror`` is what that series' prometheus_client file records are written
    with (``MirroredHistogram.mirror_of``), which every gap also goes to.
    """

    __slots__ = ("key", "start", "first", "last", "tokens", "prompt_tokens", "itl",
                 "backpressure", "given_ttft", "mirror")

    def __init__(self, key: tuple[str, ...], start: float, prompt_tokens: int = 0) -> None:
        self.key = key
        self.start = start
        self.first: float | None = None
        self.last = start
        self.tokens = 0
        self.prompt_tokens = prompt_tokens
        self.itl: Distribution | None = None
        self.backpressure = 0
        #: a TTFT the caller measured (``record_first_token_time``), seconds; it wins over
        #: ``first - start``, and ``first`` stays the first token's time for the gaps
        self.given_ttft: float | None = None
        self.mirror: Any = None

    def tpot(self) -> float | None:
        """(last - first) / (tokens - 1), for streams with at least two tokens."""
        if self.tokens < 2 or self.first is None:
            return None
        return (self.last - self.first) / (self.tokens - 1)

    def ttft(self) -> float | None:
        """Seconds to the first token: as given, else as seen; None before either."""
        if self.given_ttft is not None:
            return self.given_ttft
        return None if self.first is None else self.first - self.start

    def details(self, end: float) -> dict[str, Any]:
        """FakeAI's per-stream view at ``end`` (now, or when it finished); times in ms."""
        duration = end - self.start
        tpot = self.tpot()
        return {"tokens_generated": self.tokens, "backpressure_count": self.backpressure,
                "duration_ms": duration * 1000.0,
                "ttft_ms": None if (ttft := self.ttft()) is None else ttft * 1000.0,
                "tps": self.tokens / duration if duration > 0 else 0.0,
                "avg_itl_ms": None if tpot is None else tpot * 1000.0}

    def tokens_per_second(self, end: float) -> float | None:
        """tokens / (end - start), for streams that produced tokens over a positive time."""
        elapsed = end - self.start
        return self.tokens / elapsed if self.tokens and elapsed > 0 else None
