"""Incremental server-sent-events parsing with bounded state, for watching streamed responses.

The middleware feeds it each body chunk as it passes to the client; it returns the events that
chunk completed. It keeps at most one event in memory: a larger one is skipped, not buffered.
"""

from __future__ import annotations

import logging
import re
from typing import NamedTuple

log = logging.getLogger(__name__)


class Event(NamedTuple):
    name: bytes   # the ``event:`` field, b"" when absent
    data: bytes   # the ``data:`` lines joined by newlines
    size: int     # bytes of the event on the wire, its blank line included


_LINE_END = re.compile(rb"\r\n|\r|\n")


class SSEParser:
    """Incremental server-sent-events parser with bounded state.

    It keeps the current line and event, never more than ``max_event_bytes``: an event larger
    than that is skipped (it still passes through to the client). Lines may end in CRLF, LF or
    CR, and events may be split anywhere across chunks, a CRLF included.
    """

    def __init__(self, max_event_bytes: int, enabled: bool = True) -> None:
        self.max_event_bytes = max_event_bytes
        self.enabled = enabled
        self._line = bytearray()
        self._line_len = 0          # bytes of the current line seen, kept or not
        self._cr_pending = False    # the last chunk ended in CR: maybe half of a CRLF
        self._name = b""
        self._data = bytearray()
        self._has_data = False
        self._size = 0
        self._oversized = False

    def feed(self, chunk: bytes) -> list[Event]:
        events: list[Event] = []
        pos, end = 0, len(chunk)
        if self._cr_pending and end:
            self._cr_pending = False
            crlf = chunk[:1] == b"\n"
            self._end_line(2 if crlf else 1, events)
            pos = 1 if crlf else 0
        while pos < end:
            m = _LINE_END.search(chunk, pos)
            if m is None:
                self._append(chunk[pos:])
                break
            self._append(chunk[pos:m.start()])
            if m.end() == end and m.group() == b"\r":
                self._cr_pending = True
                break
            self._end_line(m.end() - m.start(), events)
            pos = m.end()
        return events

    def _append(self, part: bytes) -> None:
        if not part:
            return
        self._line_len += len(part)
        self._size += len(part)
        if self._size > self.max_event_bytes:
            self._oversized = True
            self._line.clear()
            self._data.clear()
        if not self._oversized:
            self._line += part

    def _end_line(self, terminator: int, events: list[Event]) -> None:
        self._size += terminator
        if self._line_len:
            if not self._oversized:
                self._field(bytes(self._line))
            self._line.clear()
            self._line_len = 0
            return
        # a blank line ends the event
        if self._has_data and not self._oversized:
            events.append(Event(self._name, bytes(self._data), self._size))
        elif self._oversized:
            log.debug("fakeai_metrics middleware: skipped a %d-byte stream event", self._size)
        self._name, self._has_data, self._oversized, self._size = b"", False, False, 0
        self._data.clear()

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if not name and colon:
            return  # a comment, e.g. a keep-alive
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            if self._has_data:
                self._data += b"\n"
            self._data += value
            self._has_data = True
        elif name == b"event":
            self._name = value
