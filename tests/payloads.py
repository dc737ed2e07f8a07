"""Streams and bodies as real servers send them, byte for byte, for the payload-reader tests.

Each is the wire form of one response from the server named (ids and timestamps shortened where
noted, field order and nulls as the server writes them): OpenAI chat completions with
``stream_options.include_usage``, OpenAI legacy completions, the Responses API, vLLM's
OpenAI-compatible server (usage chunk with ``prompt_tokens_details: null``, a reasoning delta)
and FakeAI (every optional field present as null, usage with ``input_tokens: null`` beside the
real counts, on the finish chunk rather than a chunk of its own).
"""

from __future__ import annotations

from typing import NamedTuple


class Recorded(NamedTuple):
    wire: bytes             # the response body
    tokens: int             # events carrying generated content
    prompt: int | None      # usage the reader must find (None: no number sent)
    completion: int | None
    cached: int
    finish_reason: str
    error: tuple[int, str] | None = None   # (status, error type) of an error event


_OA = (b'{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk",'
       b'"created":1741570283,"model":"gpt-4o-2024-08-06","service_tier":"default",'
       b'"system_fingerprint":"fp_eb9dce56a8","choices":[')

OPENAI_CHAT = Recorded(
    b"data: " + _OA + b'{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
    b'"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    + b"".join(b"data: " + _OA + b'{"index":0,"delta":{"content":"' + w + b'"},'
               b'"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
               for w in (b"Hello", b"!", b" How", b" can", b" I", b" \\\"help\\\"", b"?"))
    + b"data: " + _OA + b'{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],'
    b'"usage":null}\n\n'
    b"data: " + _OA + b'],"usage":{"prompt_tokens":19,"completion_tokens":7,"total_tokens":26,'
    b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":'
    b'{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,'
    b'"rejected_prediction_tokens":0}}}\n\n'
    b"data: [DONE]\n\n",
    tokens=7, prompt=19, completion=7, cached=0, finish_reason="stop")

OPENAI_TOOL_CALL = Recorded(
    b"data: " + _OA + b'{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":'
    b'[{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function","function":'
    b'{"name":"get_weather","arguments":""}}],"refusal":null},"logprobs":null,'
    b'"finish_reason":null}],"usage":null}\n\n'
    + b"".join(b"data: " + _OA + b'{"index":0,"delta":{"tool_calls":[{"index":0,"function":'
               b'{"arguments":"' + a + b'"}}]},"logprobs":null,"finish_reason":null}],'
               b'"usage":null}\n\n' for a in (b'{\\"', b"location", b'\\":\\"', b"Paris", b'\\"}'))
    + b"data: " + _OA + b'{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],'
    b'"usage":null}\n\n'
    b"data: [DONE]\n\n",
    tokens=6, prompt=None, completion=None, cached=0, finish_reason="tool_calls")

_CMPL = b'{"id":"cmpl-AbCd","object":"text_completion","created":1741570283,"choices":['
OPENAI_COMPLETIONS = Recorded(
    b"".join(b"data: " + _CMPL + b'{"text":"' + w + b'","index":0,"logprobs":null,'
             b'"finish_reason":null}],"model":"gpt-3.5-turbo-instruct"}\n\n'
             for w in (b"\\n\\n", b"Metrics", b" matter", b"."))
    + b"data: " + _CMPL + b'{"text":"","index":0,"logprobs":null,"finish_reason":"length"}],'
    b'"model":"gpt-3.5-turbo-instruct"}\n\n'
    b"data: " + _CMPL + b'],"model":"gpt-3.5-turbo-instruct","usage":{"prompt_tokens":5,'
    b'"completion_tokens":4,"total_tokens":9}}\n\n'
    b"data: [DONE]\n\n",
    tokens=4, prompt=5, completion=4, cached=0, finish_reason="length")


def _ev(kind: str, data: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


_RESP = (b'"response":{"id":"resp_67ccd2bed1ec8190b14f964abc054267","object":"response",'
         b'"created_at":1741476542,"status":"%s","error":null,"model":"gpt-4.1-2025-04-14",'
         b'"output":[],"usage":%s}')
RESPONSES = Recorded(
    _ev("response.created", b'{"type":"response.created","sequence_number":0,'
        + _RESP % (b"in_progress", b"null") + b"}")
    + _ev("response.in_progress", b'{"type":"response.in_progress","sequence_number":1,'
          + _RESP % (b"in_progress", b"null") + b"}")
    + _ev("response.output_item.added", b'{"type":"response.output_item.added",'
          b'"sequence_number":2,"output_index":0,"item":{"id":"msg_67c","type":"message",'
          b'"status":"in_progress","role":"assistant","content":[]}}')
    + b"".join(_ev("response.output_text.delta", b'{"type":"response.output_text.delta",'
                   b'"sequence_number":%d,"item_id":"msg_67c","output_index":0,'
                   b'"content_index":0,"delta":"%s","logprobs":[]}' % (3 + i, w))
               for i, w in enumerate((b"Hi", b" there", b"!")))
    + _ev("response.output_text.done", b'{"type":"response.output_text.done",'
          b'"sequence_number":6,"item_id":"msg_67c","output_index":0,"content_index":0,'
          b'"text":"Hi there!","logprobs":[]}')
    + _ev("response.completed", b'{"type":"response.completed","sequence_number":7,'
          + _RESP % (b"completed", b'{"input_tokens":36,"input_tokens_details":'
                     b'{"cached_tokens":12},"output_tokens":3,"output_tokens_details":'
                     b'{"reasoning_tokens":0},"total_tokens":39}') + b"}"),
    tokens=3, prompt=36, completion=3, cached=12, finish_reason="stop")

RESPONSES_FAILED = Recorded(
    _ev("response.created", b'{"type":"response.created","sequence_number":0,'
        + _RESP % (b"in_progress", b"null") + b"}")
    + _ev("response.output_text.delta", b'{"type":"response.output_text.delta",'
          b'"sequence_number":1,"item_id":"msg_1","output_index":0,"content_index":0,'
          b'"delta":"Hel","logprobs":[]}')
    + _ev("response.failed", b'{"type":"response.failed","sequence_number":2,"response":'
          b'{"id":"resp_1","object":"response","status":"failed","error":{"code":"server_error",'
          b'"message":"The model produced invalid content."},"usage":null}}'),
    tokens=1, prompt=None, completion=None, cached=0, finish_reason="stop",
    error=(500, "server_error"))

_VLLM = (b'{"id":"chatcmpl-5d3a5e0c2b1f4b7e9a8c","object":"chat.completion.chunk",'
         b'"created":1741570283,"model":"Qwen/Qwen3-8B","choices":[')
VLLM_REASONING = Recorded(
    b"data: " + _VLLM + b'{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,'
    b'"finish_reason":null}]}\n\n'
    + b"".join(b"data: " + _VLLM + b'{"index":0,"delta":{"reasoning_content":"' + w + b'"},'
               b'"logprobs":null,"finish_reason":null}]}\n\n' for w in (b"Let", b" me", b" think"))
    + b"".join(b"data: " + _VLLM + b'{"index":0,"delta":{"content":"' + w + b'"},'
               b'"logprobs":null,"finish_reason":null}]}\n\n' for w in (b"4", b"."))
    + b"data: " + _VLLM + b'{"index":0,"delta":{"content":""},"logprobs":null,'
    b'"finish_reason":"stop","stop_reason":null}]}\n\n'
    b"data: " + _VLLM + b'],"usage":{"prompt_tokens":14,"total_tokens":20,'
    b'"completion_tokens":6,"prompt_tokens_details":null}}\n\n'
    b"data: [DONE]\n\n",
    tokens=5, prompt=14, completion=6, cached=0, finish_reason="stop")

VLLM_ERROR = Recorded(
    b"data: " + _VLLM + b'{"index":0,"delta":{"content":"Par"},"logprobs":null,'
    b'"finish_reason":null}]}\n\n'
    b'data: {"error": {"object": "error", "message": "CUDA out of memory", '
    b'"type": "InternalServerError", "param": null, "code": 500}}\n\n'
    b"data: [DONE]\n\n",
    tokens=1, prompt=None, completion=None, cached=0, finish_reason="stop",
    error=(500, "InternalServerError"))


def _fakeai(content: bytes, finish: bytes, usage: bytes) -> bytes:
    return (b'data: {"id":"chatcmpl-7f3a9c2e41b8","object":"chat.completion.chunk",'
            b'"created":1741570283,"model":"openai/gpt-oss-120b","system_fingerprint":'
            b'"fp_fakeai","choices":[{"index":0,"delta":{"role":"assistant","content":'
            + content + b',"tool_calls":null,"refusal":null,"reasoning_content":null,'
            b'"function_call":null},"logprobs":null,"finish_reason":' + finish
            + b',"matched_stop":null}],"usage":' + usage + b',"service_tier":null}\n\n')


FAKEAI = Recorded(
    b"".join(_fakeai(b'"' + w + b'"', b"null", b"null")
             for w in (b"The", b" answer", b" is", b" 42", b".", b" Anything", b" else", b"?"))
    + _fakeai(b"null", b'"stop"', b'{"prompt_tokens":25,"completion_tokens":8,"total_tokens":33,'
              b'"prompt_tokens_details":{"cached_tokens":5,"audio_tokens":0},'
              b'"completion_tokens_details":null,"input_tokens":null,"output_tokens":null}')
    + b"data: [DONE]\n\n",
    tokens=8, prompt=25, completion=8, cached=5, finish_reason="stop")

CHAT_ERROR_MID_STREAM = Recorded(
    b"data: " + _OA + b'{"index":0,"delta":{"content":"Hel"},"logprobs":null,'
    b'"finish_reason":null}],"usage":null}\n\n'
    b'data: {"error":{"message":"Rate limit reached","type":"rate_limit_error",'
    b'"param":null,"code":429}}\n\n',
    tokens=1, prompt=None, completion=None, cached=0, finish_reason="stop",
    error=(429, "rate_limit_error"))

STREAMS = {"openai_chat": OPENAI_CHAT, "openai_tool_call": OPENAI_TOOL_CALL,
           "openai_completions": OPENAI_COMPLETIONS, "responses": RESPONSES,
           "responses_failed": RESPONSES_FAILED, "vllm_reasoning": VLLM_REASONING,
           "vllm_error": VLLM_ERROR, "fakeai": FAKEAI,
           "chat_error_mid_stream": CHAT_ERROR_MID_STREAM}

#: Non-streamed usage objects: (usage JSON, prompt, completion, cached).
USAGE_OBJECTS = {
    "openai_chat": (b'{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,'
                    b'"prompt_tokens_details":{"cached_tokens":3,"audio_tokens":0},'
                    b'"completion_tokens_details":{"reasoning_tokens":0}}', 19, 10, 3),
    "responses": (b'{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},'
                  b'"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},'
                  b'"total_tokens":123}', 36, 87, 0),
    "fakeai": (b'{"prompt_tokens":25,"completion_tokens":8,"total_tokens":33,'
               b'"prompt_tokens_details":null,"completion_tokens_details":null,'
               b'"input_tokens":null,"output_tokens":null}', 25, 8, 0),
    "fakeai_responses": (b'{"prompt_tokens":null,"completion_tokens":null,"total_tokens":50,'
                         b'"input_tokens":30,"output_tokens":20}', 30, 20, 0),
    "vllm": (b'{"prompt_tokens":12,"total_tokens":22,"completion_tokens":10,'
             b'"prompt_tokens_details":null}', 12, 10, 0),
    "embeddings": (b'{"prompt_tokens":8,"total_tokens":8}', 8, None, 0),
    "total_only": (b'{"total_tokens":8}', 8, None, 0),
}
