"""What the middleware reads from recorded payloads of OpenAI, the Responses API, vLLM and FakeAI.

Each recorded stream (tests/payloads.py) is fed through the scanner and ``OpenAIStream`` at every
split into two chunks; the content events, usage, finish reason and error found must be the ones
the payload holds. The byte-level content decision is also checked against decoding every chunk.
"""

from __future__ import annotations

import json

import pytest

from fakeai_metrics.asgi.openai_payloads import Usage, request_model, trailing_usage
from fakeai_metrics.asgi.openai_stream import DONE, FAILED, NOTHING, TOKEN, USAGE_ONLY, OpenAIStream
from fakeai_metrics.asgi.sse import SSEScanner

from payloads import STREAMS, USAGE_OBJECTS


def read(chunks: list[bytes]) -> tuple[OpenAIStream, list[int]]:
    scanner, stream, steps = SSEScanner(1 << 20), OpenAIStream(), []
    for chunk in chunks:
        for event in scanner.feed(chunk):
            steps.append(stream.on_event(event))
            if steps[-1] in (DONE, FAILED):
                return stream, steps
    return stream, steps


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_recorded_streams_at_every_split(name):
    rec = STREAMS[name]
    for cut in range(0, len(rec.wire) + 1, 7):
        stream, steps = read([rec.wire[:cut], rec.wire[cut:]])
        assert steps.count(TOKEN) == rec.tokens, cut
        usage = stream.usage or Usage()
        assert (usage.prompt, usage.completion, usage.cached) == (
            rec.prompt, rec.completion, rec.cached)
        assert stream.finish_reason == rec.finish_reason
        assert (stream.error[:2] if stream.error else None) == rec.error


@pytest.mark.parametrize("name", ["openai_chat", "vllm_reasoning", "openai_completions"])
def test_the_separate_usage_chunk_is_usage_only(name):
    _, steps = read([STREAMS[name].wire])
    assert steps.count(USAGE_ONLY) == 1 and steps[-1] == DONE


def test_fakeai_usage_on_the_finish_chunk_is_not_a_usage_only_chunk():
    stream, steps = read([STREAMS["fakeai"].wire])
    assert USAGE_ONLY not in steps
    assert stream.usage == Usage(25, 8, 5)  # not the null input_tokens/output_tokens


def decoded_has_content(data: bytes) -> bool:
    """The slow, obvious reading: decode, look at every choice's content fields."""
    try:
        obj = json.loads(data)
    except ValueError:
        return False
    if obj.get("type") in ("response.output_text.delta", "response.refusal.delta",
                           "response.function_call_arguments.delta"):
        return True
    for c in obj.get("choices") or []:
        if isinstance(c.get("text"), str) and c["text"]:
            return True
        delta = c.get("delta") or {}
        if any(isinstance(delta.get(f), str) and delta[f]
               for f in ("content", "refusal", "reasoning_content", "reasoning")):
            return True
        if delta.get("tool_calls"):
            return True
    return False


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_byte_decision_agrees_with_decoding(name):
    stream = OpenAIStream()
    for event in SSEScanner(1 << 20).feed(STREAMS[name].wire):
        step = stream.on_event(event)
        if step in (DONE, FAILED):
            break
        assert (step == TOKEN) == decoded_has_content(event.data), event.data


def test_a_learned_chunk_shape_still_rejects_what_is_not_content():
    stream = OpenAIStream()
    head = b'{"id":"c1","choices":[{"index":0,"delta":{"content":"'
    tail = b'"},"finish_reason":null}]}'
    ev = SSEScanner(1 << 20).feed
    assert stream.on_event(ev(b"data: " + head + b"hi" + tail + b"\n\n")[0]) == TOKEN
    assert stream.on_event(ev(b"data: " + head + b"again" + tail + b"\n\n")[0]) == TOKEN
    # an empty string, or one whose end quote is escaped, does not fit the learned shape
    assert stream.on_event(ev(b"data: " + head + tail + b"\n\n")[0]) != TOKEN
    reshaped = head + b'","x":"y' + tail  # the head and tail fit, but the content is ""
    assert stream.on_event(ev(b"data: " + reshaped + b"\n\n")[0]) == NOTHING
    escaped_backslash = head + b"x\\\\" + tail  # content x\ : read the slow way, still content
    assert decoded_has_content(escaped_backslash)
    assert stream.on_event(ev(b"data: " + escaped_backslash + b"\n\n")[0]) == TOKEN
    # a key named like a field, inside a string, is text and not a field
    text = (b'{"id":"c1","choices":[{"index":0,"delta":{"content":"say \\"usage\\": {}"},'
            b'"finish_reason":null}]}')
    assert stream.on_event(ev(b"data: " + text + b"\n\n")[0]) == TOKEN
    assert stream.usage is None


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_a_repeated_chunk_shape_is_a_token_exactly_when_reading_it_says_so(name):
    """``repeats`` (the middleware's per-chunk shortcut) never says token where splitting and
    reading the same bytes would not."""
    stream, oracle = OpenAIStream(), OpenAIStream()
    events = SSEScanner(1 << 20).feed(STREAMS[name].wire)
    wire = STREAMS[name].wire
    repeated = 0
    for event in events:
        chunk = wire[event.start:event.end]
        if stream.repeats(chunk):
            repeated += 1
            assert oracle.on_event(event) == TOKEN, chunk
            continue
        step = stream.on_event(event)
        assert oracle.on_event(event) == step
        if step in (DONE, FAILED):
            break
    if name in ("openai_chat", "fakeai", "openai_completions"):
        assert repeated > 0  # the shortcut is taken on real chunks


def test_repeats_rejects_what_only_looks_like_a_learned_chunk():
    stream = OpenAIStream()
    head = b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"'
    tail = b'"},"finish_reason":null}]}\n\n'
    assert not stream.repeats(head + b"hi" + tail)  # nothing learned yet
    stream.on_event(SSEScanner(1 << 20).feed(head + b"hi" + tail)[0])
    assert stream.repeats(head + b"again" + tail)
    for chunk in (head + tail,                                   # empty content
                  head + b'x","y":"z' + tail,                    # a quote: another structure
                  head + b"x\\" + tail,                         # ends in a backslash
                  head + b"a" + tail + head + b"b" + tail,       # two events in one message
                  head + b"a\n\ndata: b" + tail,                  # a line end inside
                  head.replace(b"data: ", b"data:") + b"a" + tail,
                  head + b"a" + tail[:-1]):                      # no blank line yet
        assert not stream.repeats(chunk), chunk


def test_a_multi_line_event_teaches_no_wire_shape():
    stream = OpenAIStream()
    chunk = b'data: {"choices":[{"delta":\ndata: {"content":"hi"}}]}\n\n'
    [event] = SSEScanner(1 << 20).feed(chunk)
    assert stream.on_event(event) == TOKEN
    assert not stream.repeats(chunk)


@pytest.mark.parametrize("body, model", [
    (b'{"model":"gpt-4o","messages":[]}', "gpt-4o"),
    (b'{ "messages": [{"role":"user","content":"say \\"model\\": \\"x\\""}],\n "model" : "m" }',
     "m"),
    (b'{"model":"caf\\u00e9"}', "caf\u00e9"),               # escaped: decoded
    (b'{"model":"a","metadata":{"model":"b"}}', "a"),        # twice: decoded, the top one
    (b'{"model":5}', 5),                                     # not a string: as decoded
    (b'{"messages":[{"role":"model"}]}', None),
    (b"this is not json", None), (b"", None), (None, None),
])
def test_request_model_from_the_bytes_agrees_with_decoding(body, model):
    assert request_model(body) == model


@pytest.mark.parametrize("name", sorted(USAGE_OBJECTS))
def test_usage_is_read_from_the_fields_that_hold_numbers(name):
    raw, prompt, completion, cached = USAGE_OBJECTS[name]
    assert Usage.of(json.loads(raw)) == Usage(prompt, completion, cached)
    body = b'{"id":"x","choices":[{"message":{"content":"usage"}}],"usage":' + raw + b"}"
    assert Usage.of(trailing_usage(body)) == Usage(prompt, completion, cached)


@pytest.mark.parametrize("usage", [None, [], "12", {}, {"prompt_tokens": None},
                                   {"prompt_tokens": -1, "completion_tokens": True},
                                   {"input_tokens": 1.5}, {"total_tokens": 10**12 + 1}])
def test_usage_without_a_count_is_none(usage):
    assert Usage.of(usage) is None


def test_cached_tokens_never_exceed_the_prompt():
    assert Usage.of({"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 9}}) == \
        Usage(5, None, 5)


def test_trailing_usage_skips_the_word_usage_inside_strings():
    body = b'{"usage":{"prompt_tokens":3},"note":"the \\"usage\\" here is text","x":"usage"}'
    assert trailing_usage(body) == {"prompt_tokens": 3}
    assert trailing_usage(b'{"choices":[]}') is None
    assert trailing_usage(b'{"usage": {"prompt_tokens": 3') is None  # cut off
