"""The SSE scanner on its own: events, their spans, and every way a stream can be cut.

The oracle is the SSE spec's own line-by-line procedure (``spec_events``), run on the whole
stream at once; the scanner must give the same events whatever the chunking, a split inside a
CRLF included, and spans that cut exactly its event's bytes out of the chunk that completed it.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakeai_metrics.asgi.sse import SSEScanner

from payloads import STREAMS

MIXED = (b": keep-alive comment\r\n\r\n"
         b"event: response.output_text.delta\r\ndata: {\"delta\":\"a\"}\r\n\r\n"
         b"data: line one\ndata: line two\n\n"
         b"id: 7\nretry: 100\ndata:no space\n\n"
         b"data\n\n"                                   # a data line with no colon: empty data
         b": comment between\nevent: x\n\n"            # no data line: not an event
         b"data: cr only\r\r"
         b"data: {\"error\":{\"message\":\"boom\"}}\n\n"
         b"data: [DONE]\n\n")


def spec_events(stream: bytes) -> list[tuple[bytes, bytes]]:
    """(event name, data) of every dispatched event, by the spec's algorithm."""
    events, name, data, has_data = [], b"", [], False
    for line in re.split(rb"\r\n|\r|\n", stream)[:-1]:  # the text after the last line end
        if not line:                                    # is an unfinished line
            if has_data:
                events.append((name, b"\n".join(data)))
            name, data, has_data = b"", [], False
            continue
        field, _, value = line.partition(b":")
        value = value[1:] if value[:1] == b" " else value
        if field == b"data":
            data.append(value)
            has_data = True
        elif field == b"event":
            name = value
    return events


def scan(chunks: list[bytes], max_event_bytes: int = 1 << 20) -> list[tuple[bytes, bytes]]:
    scanner = SSEScanner(max_event_bytes)
    out = []
    for chunk in chunks:
        out += [(e.name, e.data) for e in scanner.feed(chunk)]
    return out


def test_mixed_stream_whole():
    assert scan([MIXED]) == spec_events(MIXED)
    assert scan([MIXED])[:4] == [(b"response.output_text.delta", b'{"delta":"a"}'),
                                 (b"", b"line one\nline two"), (b"", b"no space"), (b"", b"")]


@pytest.mark.parametrize("name", sorted(STREAMS) + ["mixed"])
def test_split_in_two_at_every_byte_offset(name):
    stream = MIXED if name == "mixed" else STREAMS[name].wire
    expected = spec_events(stream)
    assert expected  # the oracle sees events at all
    for cut in range(len(stream) + 1):
        assert scan([stream[:cut], stream[cut:]]) == expected, cut


def test_one_byte_at_a_time():
    assert scan([MIXED[i:i + 1] for i in range(len(MIXED))]) == spec_events(MIXED)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(MIXED)), max_size=12))
def test_any_chunking(cuts):
    bounds = [0, *sorted(cuts), len(MIXED)]
    assert scan([MIXED[a:b] for a, b in zip(bounds, bounds[1:])]) == spec_events(MIXED)


def test_spans_cut_out_exactly_the_event():
    stream = b"data: a\n\nevent: e\r\ndata: b\r\n\r\n: c\n\ndata: d\n\n"
    scanner = SSEScanner(1 << 20)
    events = scanner.feed(stream)
    assert [stream[e.start:e.end] for e in events] == [
        b"data: a\n\n", b"event: e\r\ndata: b\r\n\r\n", b"data: d\n\n"]  # not the comment
    assert [e.size for e in events] == [9, 21, 9]


def test_an_event_begun_in_an_earlier_chunk_has_a_negative_start():
    scanner = SSEScanner(1 << 20)
    assert scanner.feed(b"data: hel") == []
    (event,) = scanner.feed(b"lo\n\ndata")
    assert (event.data, event.start, event.end, event.size) == (b"hello", -9, 4, 13)


def test_a_cr_at_the_end_of_a_chunk_waits_for_the_next_byte():
    scanner = SSEScanner(1 << 20)
    assert scanner.feed(b"data: x\r\n\r") == []  # the blank line may be a CRLF
    (event,) = scanner.feed(b"\ndata: y")
    assert (event.data, event.end) == (b"x", 1)


def test_an_event_over_the_cap_is_skipped_and_the_next_one_read():
    big = b"data: " + b"x" * 100 + b"\n\n"
    for piece in (7, 50, len(big)):
        chunks = [big[i:i + piece] for i in range(0, len(big), piece)] + [b"data: ok\n\n"]
        assert scan(chunks, max_event_bytes=64) == [(b"", b"ok")]


def test_state_stays_bounded_while_an_oversized_event_streams_in():
    scanner = SSEScanner(64)
    for _ in range(1000):
        scanner.feed(b"data: " + b"y" * 50)
    assert len(scanner._buf) <= 64
    assert [e.data for e in scanner.feed(b"\n\ndata: next\n\n")] == [b"next"]


def test_whole_max_says_when_a_chunk_may_be_read_as_one_whole_event():
    scanner = SSEScanner(100)
    assert scanner.whole_max == 102  # 100 bytes of event and its blank line
    scanner.feed(b"data: a\n\ndata: b")
    assert scanner.whole_max == -1  # "data: b" pending: the next chunk continues it
    assert [e.data for e in scanner.feed(b"c\n\n")] == [b"bc"]
    assert scanner.whole_max == 102
    scanner.feed(b"data: " + b"x" * 200)  # an oversized event being skipped
    assert scanner.whole_max == -1
