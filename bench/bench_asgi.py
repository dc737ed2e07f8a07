#!/usr/bin/env python
"""Middleware benchmark: what FakeAIMetricsMiddleware adds to an app, in process and over HTTP.

In process (``--inprocess``, the default section): a raw ASGI app that answers at once is driven
without an event loop or sockets (its coroutine runs to the end in one ``send(None)``, since
nothing it awaits suspends), bare and wrapped, sides alternated, best and median of ``--rounds``:

  stream   a 50-token chat stream, one SSE event per body message, OpenAI's chunk bytes; the
           client does not ask for usage, so the wrapped side also asks the app for it and
           removes the usage chunk. Reported: us added per request / 50 tokens   (<= 4 us)
  fakeai   the same with FakeAI's chunk shape (~380 bytes, null fields, usage on the finish
           chunk), reported the same way
  plain    a non-streamed chat completion with usage                              (<= 20 us)

Over HTTP (``--http``): the same zero-delay responses from a FastAPI app under uvicorn (one worker,
one process per side: bare, ours, prometheus-fastapi-instrumentator), a keep-alive load client in
this process, rounds interleaved (the side order rotates); req/s and p50/p99 latency ratios to the
bare app, streamed and plain (targets: >= 0.9x the bare app, and above the instrumentator).

    python bench/bench_asgi.py                 # in process (about 20 s)
    python bench/bench_asgi.py --http          # over HTTP too (pip install -e '.[bench]')
    python bench/bench_asgi.py --before /tmp/before   # and an earlier version, alternated
        (git archive REV fakeai_metrics | tar -x -C /tmp/before)
    python bench/bench_asgi.py --check         # exit 1 when a target is missed
    python bench/bench_asgi.py --profile stream   # cProfile of the wrapped stream side
    python bench/bench_asgi.py --cold 20000    # in process, other code between requests
    python bench/bench_asgi.py --http-only --decompose   # wrap-only and no-hub sides too
    python bench/bench_asgi.py --profile-server ours stream   # cProfile of a loaded server

Run by hand; nothing here is a test. On a shared machine absolute figures move a lot between runs;
each ratio divides by a baseline measured in the same run, alternated with it.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import os
import pstats
import statistics
import sys
import time
from typing import Any, Callable

from prometheus_client import CollectorRegistry

from bench_core import Report
from fakeai_metrics import Telemetry
from fakeai_metrics.asgi.middleware import FakeAIMetricsMiddleware

TARGET_CHUNK_US = 4.0
TARGET_PLAIN_US = 20.0
TARGET_HTTP_RATIO = 0.9
TOKENS = 50
CHAT = "/v1/chat/completions"
KEY = b"Bearer sk-bench-0123456789abcdef"


# --- what the app sends ------------------------------------------------------------------------

def openai_chunks(include_usage: bool) -> list[bytes]:
    """A chat stream as OpenAI sends it: role chunk, 50 content chunks, finish chunk, usage
    chunk when asked, [DONE]; one SSE event per body message."""
    def chunk(delta: str, finish: str = "null") -> bytes:
        return (b'data: {"id":"chatcmpl-AbC123","object":"chat.completion.chunk",'
                b'"created":1733140000,"model":"gpt-4o-mini-2024-07-18",'
                b'"system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":'
                + delta.encode() + b',"logprobs":null,"finish_reason":' + finish.encode()
                + b'}]}\n\n')
    out = [chunk('{"role":"assistant","content":"","refusal":null}')]
    out += [chunk('{"content":"tok%d "}' % i) for i in range(TOKENS)]
    out.append(chunk("{}", '"stop"'))
    if include_usage:
        out.append(b'data: {"id":"chatcmpl-AbC123","object":"chat.completion.chunk",'
                   b'"created":1733140000,"model":"gpt-4o-mini-2024-07-18",'
                   b'"system_fingerprint":"fp_0ba0d124f1","choices":[],"usage":'
                   b'{"prompt_tokens":25,"completion_tokens":50,"total_tokens":75,'
                   b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
                   b'"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
                   b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}\n\n')
    return out + [b"data: [DONE]\n\n"]


def fakeai_chunks(include_usage: bool) -> list[bytes]:
    """FakeAI's shape: every optional field present as null, usage on the finish chunk."""
    def chunk(content: str, finish: str, usage: str) -> bytes:
        return (b'data: {"id":"chatcmpl-7f3a9c2e41b8","object":"chat.completion.chunk",'
                b'"created":1733140000,"model":"openai/gpt-oss-120b","system_fingerprint":'
                b'"fp_fakeai","choices":[{"index":0,"delta":{"role":"assistant","content":'
                + content.encode() + b',"tool_calls":null,"refusal":null,'
                b'"reasoning_content":null,"function_call":null},"logprobs":null,'
                b'"finish_reason":' + finish.encode() + b',"matched_stop":null}],"usage":'
                + usage.encode() + b',"service_tier":null}\n\n')
    usage = ('{"prompt_tokens":25,"completion_tokens":50,"total_tokens":75,'
             '"prompt_tokens_details":null,"completion_tokens_details":null,'
             '"input_tokens":null,"output_tokens":null}') if include_usage else "null"
    out = [chunk('"tok%d "' % i, "null", "null") for i in range(TOKENS)]
    return out + [chunk("null", '"stop"', usage), b"data: [DONE]\n\n"]


PLAIN_BODY = json.dumps({
    "id": "chatcmpl-AbC123", "object": "chat.completion", "created": 1733140000,
    "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_0ba0d124f1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! " * 20,
                                         "refusal": None}, "logprobs": None,
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 25, "completion_tokens": 141, "total_tokens": 166,
              "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}},
}, separators=(",", ":")).encode()

SHAPES = {"stream": openai_chunks, "fakeai": fakeai_chunks}


def request_body(stream: bool) -> bytes:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Write a haiku about metrics."}]}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


# --- in process -------------------------------------------------------------------------------

def raw_app(shape: str) -> Callable[..., Any]:
    """A zero-delay OpenAI-shaped ASGI app; streams carry usage only when the request asks."""
    with_usage = SHAPES[shape](True) if shape in SHAPES else []
    without = SHAPES[shape](False) if shape in SHAPES else []
    sse_start = {"type": "http.response.start", "status": 200,
                 "headers": [(b"content-type", b"text/event-stream; charset=utf-8")]}
    json_start = {"type": "http.response.start", "status": 200,
                  "headers": [(b"content-type", b"application/json"),
                              (b"content-length", str(len(PLAIN_BODY)).encode())]}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        body = message["body"]
        if shape == "plain":
            await send(json_start)
            await send({"type": "http.response.body", "body": PLAIN_BODY})
            return
        await send(sse_start)
        for chunk in (with_usage if b'"include_usage": true' in body else without):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


#: Other code's data, walked between requests by ``--cold`` (filled by ``main``).
_OTHER: list[dict[str, list[Any]]] = []


def _other_code() -> int:
    """What a server does between two requests, roughly: Python code walking a few MB of
    objects, which pushes the middleware's code and data out of the CPU caches."""
    n = 0
    for d in _OTHER:
        for v in d.values():
            n += len(v)
    return n


def drive(app: Callable[..., Any], n: int, body: bytes) -> float:
    """Seconds for ``n`` requests through ``app`` with no event loop (with ``--cold``, other
    code runs between requests, untimed)."""
    scope = {"type": "http", "method": "POST", "path": CHAT, "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"authorization", KEY),
                         (b"content-length", str(len(body)).encode())]}
    request = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: Any) -> None:
        pass

    total = 0.0
    for _ in range(n):
        if _OTHER:
            _other_code()
        t0 = time.perf_counter()
        coro = app(scope, receive, send)
        try:
            coro.send(None)
        except StopIteration:
            pass
        else:
            raise RuntimeError("the app suspended; this driver needs one that does not")
        total += time.perf_counter() - t0
    return total


#: The package's earlier version for the "before" side (``--before``): (Telemetry, middleware).
_BEFORE: list[Any] = []


def load_before(path: str) -> None:
    """Import the package exported to ``path`` a second time, as ``fakeai_metrics_before``
    (a copy under that name in a temporary folder; the package imports itself only
    relatively), so the in-process rounds can alternate it with this one."""
    import atexit
    import importlib
    import shutil
    import tempfile
    folder = tempfile.mkdtemp(prefix="fakeai-before-")
    atexit.register(shutil.rmtree, folder, True)
    shutil.copytree(os.path.join(path, "fakeai_metrics"),
                    os.path.join(folder, "fakeai_metrics_before"))
    sys.path.insert(0, folder)
    _BEFORE[:] = [importlib.import_module("fakeai_metrics_before").Telemetry,
                  importlib.import_module("fakeai_metrics_before.asgi.middleware")
                  .FakeAIMetricsMiddleware]


def build(side: str, shape: str) -> Callable[..., Any]:
    app = raw_app(shape)
    if side == "bare":
        return app
    if side == "before":
        before: Callable[..., Any] = _BEFORE[1](app, _BEFORE[0](registry=CollectorRegistry()))
        return before
    return FakeAIMetricsMiddleware(app, Telemetry(registry=CollectorRegistry()))


def inprocess(shape: str, n: int, rounds: int) -> dict[str, float]:
    """us per request of each side: best and median of ``rounds``, sides alternated (with
    ``--before``, the earlier version is a third side in the same rounds)."""
    body = request_body(shape != "plain")
    sides = ("bare", "ours", "before") if _BEFORE else ("bare", "ours")
    times: dict[str, list[float]] = {side: [] for side in sides}
    for r in range(rounds):
        for side in (sides if r % 2 == 0 else sides[::-1]):
            app = build(side, shape)
            drive(app, 50, body)  # warm: first-series creation is not the steady state
            gc.collect()
            times[side].append(drive(app, n, body) / n * 1e6)
    out = {}
    for side, ts in times.items():
        out[side + "_best"] = min(ts)
        out[side + "_median"] = statistics.median(ts)
    # added per request: best of each side, and the median of the per-round differences
    for side in sides[1:]:
        prefix = "" if side == "ours" else side + "_"
        out[prefix + "added_best"] = out[side + "_best"] - out["bare_best"]
        out[prefix + "added_median"] = statistics.median(
            o - b for o, b in zip(times[side], times["bare"]))
    return out


def profile(shape: str, n: int, top: int) -> None:
    app = build("ours", shape)
    body = request_body(shape != "plain")
    drive(app, 50, body)
    prof = cProfile.Profile()
    prof.enable()
    drive(app, n, body)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--requests", type=int, default=200, help="stream requests per round "
                    "(plain requests: 10x)")
    ap.add_argument("--http", action="store_true", help="also the HTTP section")
    ap.add_argument("--http-only", action="store_true")
    ap.add_argument("--http-seconds", type=float, default=2.0, help="seconds per side per round")
    ap.add_argument("--http-rounds", type=int, default=5)
    ap.add_argument("--before", metavar="PATH", help="also measure the middleware of an "
                    "earlier version of the package exported to PATH (a side named before, in "
                    "the same alternated rounds, in process and over HTTP)")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--profile", choices=["stream", "fakeai", "plain"])
    ap.add_argument("--decompose", action="store_true", help="over HTTP, also a wrap-only "
                    "middleware and ours with a hub that does nothing")
    ap.add_argument("--cold", type=int, default=0, metavar="N", help="in process, walk N "
                    "objects of other data between requests (caches as cold as in a server)")
    ap.add_argument("--profile-server", nargs=2, metavar=("SIDE", "WORKLOAD"),
                    help="cProfile of a uvicorn server (bare, ours, instrumentator) under the "
                    "HTTP load (stream or plain): time per request in fakeai_metrics")
    ap.add_argument("--serve", nargs=2, metavar=("SIDE", "PORT"), help=argparse.SUPPRESS)
    ap.add_argument("--load", nargs=3, metavar=("WORKLOAD", "PORT", "SECONDS"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        import bench_http
        bench_http.serve(args.serve[0], int(args.serve[1]))
        return 0
    if args.load:
        import bench_http
        bench_http.load(args.load[0], int(args.load[1]), float(args.load[2]))
        return 0
    if args.profile:
        profile(args.profile, args.requests, 20)
        return 0
    if args.profile_server:
        import bench_http
        side, workload = args.profile_server
        bench_http.profile_server(os.path.abspath(__file__), side, workload,
                                  args.http_seconds * 2)
        return 0
    _OTHER[:] = [{f"k{i}": [i, str(i), float(i)]} for i in range(args.cold)]
    if args.before:
        load_before(args.before)
    report = Report()
    print(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f} at start")
    if not args.http_only:
        cold = f", {args.cold} objects walked between requests" if args.cold else ""
        print(f"\nin process, us per request; best and median of {args.rounds} alternated "
              f"rounds{cold}")
        print(f"{'workload':<34} {'bare':>8} {'wrapped':>8} {'added':>8} {'added':>8} "
              f"{'per token':>9}")
        print(f"{'':<34} {'best':>8} {'best':>8} {'best':>8} {'median':>8} {'median':>9}")
        for shape, label in (("stream", "50-token chat stream (OpenAI)"),
                             ("fakeai", "50-token chat stream (FakeAI)"),
                             ("plain", "plain chat completion")):
            n = args.requests * (10 if shape == "plain" else 1)
            r = inprocess(shape, n, args.rounds)
            per = r["added_median"] / (TOKENS if shape != "plain" else 1)
            print(f"{label:<34} {r['bare_best']:8.2f} {r['ours_best']:8.2f} "
                  f"{r['added_best']:8.2f} {r['added_median']:8.2f} "
                  f"{per if shape != 'plain' else math.nan:9.2f}", flush=True)
            if _BEFORE:
                was = r["before_added_median"] / (TOKENS if shape != "plain" else 1)
                print(f"{'  before (' + args.before + ')':<34} {r['bare_best']:8.2f} "
                      f"{r['before_best']:8.2f} {r['before_added_best']:8.2f} "
                      f"{r['before_added_median']:8.2f} "
                      f"{was if shape != 'plain' else math.nan:9.2f}", flush=True)
            if shape == "plain":
                report.check("plain request: us added (median)", r["added_median"],
                             TARGET_PLAIN_US, ".2f", " us")
            else:
                report.check(f"{shape}: us added per token (median, all / 50)", per,
                             TARGET_CHUNK_US, ".2f", " us")
    if args.http or args.http_only:
        import bench_http
        bench_http.run(report, os.path.abspath(__file__), args.http_seconds, args.http_rounds,
                       TARGET_HTTP_RATIO, args.before, args.decompose)
    print()
    missed = report.print()
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
