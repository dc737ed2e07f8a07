"""The HTTP section of bench_asgi.py: bare app vs ours vs prometheus-fastapi-instrumentator.

Three uvicorn servers (one worker each, started as ``bench_asgi.py --serve SIDE PORT``) serve the
same zero-delay FastAPI app; a keep-alive client in this process loads one side at a time for a
few seconds with a fixed number of connections, and the side order rotates each round. req/s and
latency percentiles are from the client; ratios divide by the bare app of the same round, and the
median over rounds is reported (best beside it).

Throughput on a shared two-core machine moves with everything else running; the server's own CPU
time per request (from ``/proc/<pid>/stat``, read around each load phase) moves much less, so it
is reported beside req/s, split into user and system time: its ratio to the bare app's is what
the middleware costs the server.

``--decompose`` adds two sides that split what ours costs: "wrap", a middleware that only
wraps ``receive`` and ``send`` in coroutines, and "no-hub", this middleware on a hub whose calls
do nothing (its own work; ours minus no-hub is the hub's). ``--before PATH`` adds a side,
"before": the middleware as an earlier version of the package exported to PATH
(``git archive REV fakeai_metrics | tar -x -C PATH``) serves the same app, interleaved with the
others, so a change is measured against its baseline in one run.

The client speaks HTTP/1.1 over raw asyncio streams (about 30 lines): a general client such as
httpx costs more CPU per request than the server measured, and on two cores it would cap the
load before the server does.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

SIDES = ("bare", "ours", "instrumentator")
#: ``--decompose``: a middleware that only wraps receive and send, and ours with a hub whose
#: calls do nothing (what the middleware itself costs; ours minus it is the hub's part)
DECOMPOSE = ("wrap", "no-hub")
WORKLOADS = ("stream", "plain")
CONNECTIONS = 8


def build_app(side: str) -> Any:
    import bench_asgi as b

    with_usage, without = b.openai_chunks(True), b.openai_chunks(False)
    app = FastAPI()

    @app.post(b.CHAT)
    async def chat(request: Request) -> Response:
        body = await request.json()
        if not body.get("stream"):
            return Response(b.PLAIN_BODY, media_type="application/json")
        asked = (body.get("stream_options") or {}).get("include_usage") is True
        chunks = with_usage if asked else without

        async def gen() -> Any:
            for chunk in chunks:
                yield chunk

        return StreamingResponse(gen(), media_type="text/event-stream")

    if side in ("ours", "no-hub"):
        from fakeai_metrics import Telemetry
        from fakeai_metrics.asgi.middleware import FakeAIMetricsMiddleware
        telemetry = Telemetry()
        if side == "no-hub":  # the middleware's own work: every hub call does nothing
            for name in ("record_request", "record_failure", "start_stream", "finish_stream",
                         "fail_stream"):
                setattr(telemetry, name, _nothing)
            setattr(telemetry.streaming, "record_token", _nothing)
        app.add_middleware(FakeAIMetricsMiddleware, telemetry=telemetry)
    elif side == "wrap":
        app.add_middleware(_WrapOnly)
    elif side == "instrumentator":
        from prometheus_fastapi_instrumentator import Instrumentator
        Instrumentator().instrument(app)
    return app


def _nothing(*args: Any, **kwargs: Any) -> float:
    return 0.0


class _WrapOnly:
    """A middleware whose receive and send wrappers only await: what wrapping costs."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def wrapped_receive() -> Any:
            return await receive()

        async def wrapped_send(message: Any) -> None:
            await send(message)

        await self.app(scope, wrapped_receive, wrapped_send)


def serve(side: str, port: int) -> None:
    import uvicorn
    uvicorn.run(build_app(side), host="127.0.0.1", port=port, log_level="warning",
                access_log=False, workers=1)


def profile_server(script: str, side: str, workload: str, seconds: float) -> None:
    """cProfile of a uvicorn server run here while a client process loads it: time per request
    in fakeai_metrics (its functions, and the C calls they make) against the whole, and the
    package's costliest functions. cProfile adds its own cost to every call, so the shares are
    what to read, not the absolute times."""
    import cProfile
    import pstats
    import threading

    import uvicorn
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(side), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    done: list[int] = []

    def client() -> None:
        while not server.started:
            time.sleep(0.05)
        out = subprocess.run([sys.executable, script, "--load", workload, str(port),
                              str(seconds)], capture_output=True, text=True, check=True)
        done.append(int(out.stdout.split()[0]))
        server.should_exit = True

    threading.Thread(target=client, daemon=True).start()
    prof = cProfile.Profile()
    prof.enable()
    server.run()
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    n = done[0]
    total = sum(v[2] for v in stats.values())
    ours = {k: v for k, v in stats.items() if "fakeai_metrics" in k[0]}
    own = sum(v[2] for v in ours.values())
    c_calls = sum(cv[2] for k, v in stats.items() if k[0] == "~"
                  for caller, cv in v[4].items() if "fakeai_metrics" in caller[0])
    print(f"{side} {workload}: {n} requests in {seconds:g} s under cProfile; per request "
          f"{total / n * 1e6:.0f} us profiled, of which fakeai_metrics {own / n * 1e6:.0f} us "
          f"+ {c_calls / n * 1e6:.0f} us in the C calls it makes "
          f"({(own + c_calls) / total * 100:.0f} %)")
    for k, v in sorted(ours.items(), key=lambda kv: -kv[1][2])[:12]:
        print(f"  {os.path.basename(k[0])}:{k[2]:<28} {v[1] / n:6.1f} calls/request "
              f"{v[2] / v[1] * 1e6:7.2f} us/call {v[2] / n * 1e6:7.1f} us/request")


def load(workload: str, port: int, seconds: float) -> None:
    """Load a server for ``seconds`` and print the requests completed (``--load``)."""
    n, _, _ = asyncio.run(_load(port, _request(workload == "stream"), seconds))
    print(n)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(stream: bool) -> bytes:
    import bench_asgi as b
    body = b.request_body(stream)
    return (b"POST " + b.CHAT.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nAuthorization: " + b.KEY + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


async def _load(port: int, request: bytes, seconds: float) -> tuple[int, list[float], int]:
    """Requests completed, their latencies and the body bytes of the last one."""
    stop = time.perf_counter() + seconds
    latencies: list[float] = []
    last = [0]

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200 "):
                    raise RuntimeError(f"bench server answered {head[:40]!r}")
                if b"chunked" in head.lower():
                    body = b""
                    while not body.endswith(b"\r\n0\r\n\r\n") and body != b"0\r\n\r\n":
                        body += await reader.read(65536)
                else:
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                last[0] = len(body)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return len(latencies), latencies, last[0]


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _cpu_s(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process ``pid`` so far (Linux)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def run(report: Any, script: str, seconds: float, rounds: int, target: float,
        before: str | None = None, decompose: bool = False) -> None:
    sides = SIDES + (("before",) if before else ()) + (DECOMPOSE if decompose else ())
    ports = {side: _free_port() for side in sides}

    def server(side: str, port: int) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        if side == "before":  # the earlier package first on the path, serving the "ours" app
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [before, env.get("PYTHONPATH")]))
            side = "ours"
        return subprocess.Popen([sys.executable, script, "--serve", side, str(port)], env=env)

    procs = [server(side, port) for side, port in ports.items()]
    pids = {side: p.pid for side, p in zip(ports, procs)}
    try:
        for port in ports.values():
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("a bench server did not start")
                    time.sleep(0.1)
        _measure(report, ports, pids, seconds, rounds, target, sides)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


def _measure(report: Any, ports: dict[str, int], pids: dict[str, int], seconds: float,
             rounds: int, target: float, sides: tuple[str, ...]) -> None:
    import uvicorn
    print(f"\nover HTTP: uvicorn {uvicorn.__version__} (one worker each, "
          f"{'httptools' if _has('httptools') else 'h11'}, "
          f"{'uvloop' if _has('uvloop') else 'asyncio'}), FastAPI, {CONNECTIONS} keep-alive "
          f"connections, {seconds:g} s per side per round, {rounds} rounds, side order rotating")
    rows: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}  # server CPU us per request
    user: dict[tuple[str, str], list[float]] = {}  # of which user time
    sizes: dict[tuple[str, str], int] = {}
    for workload in WORKLOADS:
        request = _request(workload == "stream")
        for side in sides:  # warm each server (first series, imports)
            asyncio.run(_load(ports[side], request, 0.3))
        for r in range(rounds):
            order = sides[r % len(sides):] + sides[:r % len(sides)]
            for side in order:
                u0, s0 = _cpu_s(pids[side])
                n, lat, size = asyncio.run(_load(ports[side], request, seconds))
                u1, s1 = _cpu_s(pids[side])
                cpu.setdefault((workload, side), []).append((u1 - u0 + s1 - s0) / n * 1e6)
                user.setdefault((workload, side), []).append((u1 - u0) / n * 1e6)
                sizes[(workload, side)] = size
                rows.setdefault((workload, side), []).append(
                    (n / seconds, _percentile(lat, 0.5) * 1e3, _percentile(lat, 0.99) * 1e3))
    print(f"{'workload':<8} {'side':<15} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'req/s / bare':>13} {'(best)':>7} {'p50 / bare':>11} {'p99 / bare':>11} "
          f"{'server CPU us/req':>18} {'(user)':>7} {'/ bare':>7}")
    for workload in WORKLOADS:
        bare = rows[(workload, "bare")]
        for side in sides:
            mine = rows[(workload, side)]
            rps = [m[0] / b[0] for m, b in zip(mine, bare)]
            p50 = [m[1] / b[1] for m, b in zip(mine, bare)]
            p99 = [m[2] / b[2] for m, b in zip(mine, bare)]
            print(f"{workload:<8} {side:<15} {statistics.median(m[0] for m in mine):8.0f} "
                  f"{statistics.median(m[1] for m in mine):7.2f} "
                  f"{statistics.median(m[2] for m in mine):7.2f} "
                  f"{statistics.median(rps):13.2f} {max(rps):7.2f} "
                  f"{statistics.median(p50):11.2f} {statistics.median(p99):11.2f} "
                  f"{statistics.median(cpu[(workload, side)]):18.0f} "
                  f"{statistics.median(user[(workload, side)]):7.0f} "
                  f"{bare_cpu_ratio(cpu, workload, side):7.2f}")
            rows[(workload, side + "/ratio")] = [(x, 0, 0) for x in rps]
        if "before" in sides:
            now_rps = statistics.median(m[0] / b[0] for m, b in zip(rows[(workload, "ours")],
                                                                    rows[(workload, "before")]))
            now_cpu = statistics.median(m / b for m, b in zip(cpu[(workload, "ours")],
                                                              cpu[(workload, "before")]))
            print(f"{workload:<8} ours / before (median of rounds): req/s {now_rps:.2f}x, "
                  f"server CPU per request {now_cpu:.2f}x")
        ours = statistics.median(x[0] for x in rows[(workload, "ours/ratio")])
        inst = statistics.median(x[0] for x in rows[(workload, "instrumentator/ratio")])
        report.check(f"HTTP {workload}: req/s ours / bare (median)", ours, target, ".2f", "x",
                     at_most=False)
        report.must(f"HTTP {workload}: ours above the instrumentator", ours > inst,
                    f"{ours:.2f} vs {inst:.2f}")
        report.check(f"HTTP {workload}: bare / ours server CPU per request", 1 /
                     bare_cpu_ratio(cpu, workload, "ours"), target, ".2f", "x", at_most=False)
        same = sizes[(workload, "ours")] == sizes[(workload, "bare")]
        report.must(f"HTTP {workload}: client gets the bare app's body size", same,
                    f"{sizes[(workload, 'ours')]} B" if same else "NO")


def bare_cpu_ratio(cpu: dict[tuple[str, str], list[float]], workload: str, side: str) -> float:
    """Median over rounds of a side's server CPU per request / the bare app's."""
    return statistics.median(m / b for m, b in zip(cpu[(workload, side)],
                                                   cpu[(workload, "bare")]))


def _has(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False
