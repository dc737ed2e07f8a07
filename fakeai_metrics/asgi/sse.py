"""Server-sent-events scanning with bounded state, for watching streamed responses as they pass.

``SSEScanner.feed`` takes each body chunk on its way to the client and returns the events that
chunk completed, with where each lies in the chunk (the middleware removes an event it added
itself). It finds event ends with ``bytes.find`` (a regex only when a CR is present) and parses an
event's lines only when it has more than one ``data:`` line: most streams send one line per event,
so a chunk costs a few C calls. It keeps one partial event at most, never more than
``max_event_bytes``: a larger one is skipped, not buffered (it still reaches the client).

Written here rather than taken from a library because the SSE clients on PyPI (httpx-sse,
sseclient) decode ``str`` lines one at a time; the middleware needs bytes, spans and a
per-chunk cost of about a microsecond (bench/bench_asgi.py).
"""

from __future__ import annotations

import logging
import re
from typing import NamedTuple

log = logging.getLogger(__name__)


class Event(NamedTuple):
    """One complete server-sent event, with where it ended in the chunk that completed it (so the
    middleware can cut a usage-only event out of what the client receives)."""

    name: bytes   # the ``event:`` field, b"" when absent
    data: bytes   # the ``data:`` lines joined by newlines
    start: int    # offset in the chunk that completed it; negative when it began in an earlier one
    end: int      # offset just past its blank line in that chunk

    @property
    def size(self) -> int:
        """Bytes of the event on the wire, its blank line included."""
        return self.end - self.start


#: Builds an Event without namedtuple's Python-level ``__new__`` (a fifth of a chunk's cost).
_event = tuple.__new__

#: Two line ends in a row (CRLF, LF or a lone CR each): the blank line that ends an event.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_LINE_END = re.compile(rb"\r\n|\r|\n")
_KEEP_WHEN_SKIPPING = 3  # bytes of a skipped event kept so that an end split across chunks is seen


class SSEScanner:
    """Splits a byte stream into server-sent events; state is one partial event at most.

    Lines may end in CRLF, LF or CR, events may be split anywhere across chunks (inside a CRLF
    too), comment lines (``: keep-alive``) and fields other than ``data`` and ``event`` are
    ignored, and an event without a ``data`` line is not an event (as the SSE spec says). An
    event whose last line end is a CR at the very end of a chunk completes with the next chunk,
    since that CR may be half of a CRLF.
    """

    __slots__ = ("max_event_bytes", "whole_max", "_buf", "_skipping")

    def __init__(self, max_event_bytes: int) -> None:
        self.max_event_bytes = max_event_bytes
        #: the largest chunk that, fed now, could be read as one whole event (its blank line
        #: included); -1 while part of an event is pending. A caller that recognises a whole
        #: event by other means may skip ``feed`` for a chunk no larger than this.
        self.whole_max = max_event_bytes + 2
        self._buf = b""          # the start of the current event, from earlier chunks
        self._skipping = False   # the current event outgrew max_event_bytes

    def feed(self, chunk: bytes) -> list[Event]:
        buf = self._buf
        if not buf and not self._skipping:  # the common case: one whole one-line event, LF line ends
            n = len(chunk) - 2
            if (chunk.find(b"\n") == n and chunk.endswith(b"\n\n") and chunk.startswith(b"data:")
                    and chunk.find(b"\r") < 0 and 0 < n <= self.max_event_bytes):
                return [_event(Event, (b"", chunk[6:n] if chunk[5:6] == b" " else chunk[5:n],
                                       0, n + 2))]
        offset = len(buf)
        text = buf + chunk if buf else chunk
        events: list[Event] = []
        pos = 0
        if b"\r" not in text:
            while True:
                at = text.find(b"\n\n", pos)
                if at < 0:
                    break
                self._complete(text, pos, at, at + 2, offset, events)
                pos = at + 2
        else:
            search = _EVENT_END.search
            while True:
                m = search(text, pos)
                if m is None:
                    break
                end = m.end()
                if end == len(text) and text[end - 1:end] == b"\r":
                    break  # maybe half of a CRLF: wait for the next byte
                self._complete(text, pos, m.start(), end, offset, events)
                pos = end
        rest = text[pos:] if pos else text
        if self._skipping or len(rest) > self.max_event_bytes:
            self._skipping = True
            rest = rest[-_KEEP_WHEN_SKIPPING:]
        self._buf = rest
        self.whole_max = -1 if rest else self.max_event_bytes + 2
        return events

    def _complete(self, text: bytes, start: int, stop: int, end: int, offset: int,
                  events: list[Event]) -> None:
        """The event ``text[start:stop]`` ended (its blank line runs to ``end``)."""
        if self._skipping:
            self._skipping = False
            log.debug("fakeai_metrics: skipped a stream event over %d bytes",
                      self.max_event_bytes)
            return
        if stop - start > self.max_event_bytes:
            log.debug("fakeai_metrics: skipped a %d-byte stream event", stop - start)
            return
        block = text[start:stop]
        if block.startswith(b"data:") and b"\n" not in block and b"\r" not in block:
            name, data = b"", block[6:] if block[5:6] == b" " else block[5:]  # the common case
        else:
            parsed = _fields(block)
            if parsed is None:
                return
            name, data = parsed
        events.append(_event(Event, (name, data, start - offset, end - offset)))


def _fields(block: bytes) -> tuple[bytes, bytes] | None:
    """(event name, data) of an event's lines, or None when it has no ``data`` line."""
    name, data_lines = b"", []
    for line in _LINE_END.split(block):
        field, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data_lines.append(value)
        elif field == b"event":
            name = value
        # a line starting with ":" is a comment; id, retry and others are not needed here
    return (name, b"\n".join(data_lines)) if data_lines else None
