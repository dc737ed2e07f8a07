"""``fakeai-metrics demo``: a fake OpenAI-compatible server under the middleware, driven by a load
generator over HTTP on 127.0.0.1, with ``/metrics`` on the same port.

Everything a dashboard or alert needs shows up within a minute: streamed and plain chat
completions on three models, a configurable error rate (429s and 500s), three API keys reported
under aliases, two of them with budgets — one (carol) already near its alert threshold, which
she crosses about ten seconds in whatever the machine's speed: her prompts grow with the time
since her previous request, so her spend follows the clock, not the request rate. With ``--slos``
(for example ``fakeai_metrics/examples/latency-slos.yml``, whose TTFT bounds the fake models
miss now and then) every request is also judged against latency SLOs.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from prometheus_client import REGISTRY, CollectorRegistry

from .asgi.middleware import FakeAIMetricsMiddleware, Receive, Scope, Send
from .cost_tracker import BudgetLimitType, BudgetPeriod
from .latency_slo import SLOSource
from .pricing import DEFAULT_PRICES, PriceTable
from .server import asgi_app
from .telemetry import Telemetry

CHAT = "/v1/chat/completions"


@dataclass(frozen=True)
class ModelProfile:
    """How a fake model behaves: median TTFT and inter-token gap (seconds), answer length."""

    ttft: float
    itl: float
    tokens: tuple[int, int]


MODELS = {
    "gpt-4o": ModelProfile(ttft=0.35, itl=0.020, tokens=(20, 80)),
    "gpt-4o-mini": ModelProfile(ttft=0.15, itl=0.008, tokens=(30, 120)),
    "gpt-3.5-turbo": ModelProfile(ttft=0.10, itl=0.006, tokens=(20, 60)),
}
#: key -> (alias, budget limit USD or None, spend already made this period)
KEYS = {
    "sk-demo-alice-0001": ("alice", None, 0.0),
    "sk-demo-bob-0002": ("bob", 100.0, 0.0),
    "sk-demo-carol-0003": ("carol", 5.0, 3.9),  # 78 %: crosses its 80 % threshold ~10 s in
}
CAROL = "sk-demo-carol-0003"
#: carol's prompt spend per second of the demo, on gpt-4o: $0.10 (78 % -> 80 % of $5) in ~8 s,
#: plus her completions and minus her cached prompt tokens.
CAROL_USD_PER_S = 0.012
CAROL_MODEL = "gpt-4o"
_PROMPT_OVERHEAD = 8  # tokens the fake server bills on top of the words (FakeOpenAI)
_CAROL_CATCH_UP_S = 5.0
WORDS = "the quick brown fox jumps over a lazy dog while metrics flow into prometheus".split()


class FakeOpenAI:
    """A minimal OpenAI-compatible ASGI app: chat completions, streamed or not, with errors."""

    def __init__(self, rng: random.Random, error_rate: float) -> None:
        self.rng = rng
        self.error_rate = error_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != CHAT or scope["method"] != "POST":
            await _json(send, 404, {"error": {"type": "not_found", "message": "no such route"}})
            return
        request = json.loads(await read_body(receive) or b"{}")
        model = request.get("model", "gpt-4o-mini")
        profile = MODELS.get(model, MODELS["gpt-4o-mini"])
        prompt = (sum(len(m.get("content", "").split()) for m in request.get("messages", []))
                  + _PROMPT_OVERHEAD)
        if self.rng.random() < self.error_rate:
            await asyncio.sleep(self.rng.uniform(0.005, 0.05))
            status, kind = self.rng.choice([(429, "rate_limit_exceeded"), (500, "server_error")])
            await _json(send, status, {"error": {"type": kind, "message": f"{kind} (demo)",
                                                 "code": kind}})
            return
        n = self.rng.randint(*profile.tokens)
        cached = self.rng.choice([0, 0, prompt // 2])
        usage = {"prompt_tokens": prompt, "completion_tokens": n, "total_tokens": prompt + n,
                 "prompt_tokens_details": {"cached_tokens": cached}}
        ttft = self.rng.lognormvariate(0, 0.4) * profile.ttft
        if not request.get("stream"):
            await asyncio.sleep(ttft + n * profile.itl)
            text = " ".join(self.rng.choice(WORDS) for _ in range(n))
            await _json(send, 200, {"id": "chatcmpl-demo", "object": "chat.completion",
                                    "model": model, "usage": usage,
                                    "choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"role": "assistant",
                                                             "content": text}}]})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        await asyncio.sleep(ttft)
        for i in range(n):
            if i:
                await asyncio.sleep(self.rng.lognormvariate(0, 0.3) * profile.itl)
            chunk = {"id": "chatcmpl-demo", "object": "chat.completion.chunk", "model": model,
                     "choices": [{"index": 0, "delta": {"content": self.rng.choice(WORDS) + " "}}]}
            await send({"type": "http.response.body", "more_body": True,
                        "body": b"data: " + json.dumps(chunk).encode() + b"\n\n"})
        final = {"id": "chatcmpl-demo", "object": "chat.completion.chunk", "model": model,
                 "choices": [], "usage": usage}
        await send({"type": "http.response.body", "more_body": True,
                    "body": b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n"})
        await send({"type": "http.response.body", "body": b""})


async def read_body(receive: Receive) -> bytes:
    """The whole body of an ASGI HTTP request, however many messages it came in."""
    body: bytes = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def build_app(telemetry: Telemetry, registry: CollectorRegistry, rng: random.Random,
              error_rate: float) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The fake API under the middleware, with ``/metrics`` beside it."""
    api = FakeAIMetricsMiddleware(FakeOpenAI(rng, error_rate), telemetry=telemetry)
    metrics = asgi_app(registry)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics":
            await metrics(scope, receive, send)
        else:
            await api(scope, receive, send)

    return app


def setup_keys(telemetry: Telemetry) -> None:
    for key, (alias, limit, spent) in KEYS.items():
        telemetry.alias_key(key, alias)
        if limit is not None:
            telemetry.cost.set_budget(key, limit, period=BudgetPeriod.MONTHLY,
                                      limit_type=BudgetLimitType.SOFT, alert_threshold=0.8)
        if spent:  # spend made before the demo started, billed at gpt-4o's input price
            telemetry.cost.record_usage(key, "gpt-4o", CHAT, int(spent / 5.0 * 1_000_000), 0)


def carol_prompt_words(since_last_s: float) -> int:
    """Words of a carol prompt that bill ``CAROL_USD_PER_S`` for the seconds since her previous
    request (at most ``_CAROL_CATCH_UP_S`` of them), at her model's input price."""
    seconds = min(max(since_last_s, 0.0), _CAROL_CATCH_UP_S)
    tokens = CAROL_USD_PER_S * seconds / DEFAULT_PRICES[CAROL_MODEL].input * 1_000_000
    return max(1, round(tokens) - _PROMPT_OVERHEAD)


async def load(base_url: str, rps: float, rng: random.Random, stop: asyncio.Event) -> None:
    """Open-loop arrivals at ``rps`` (exponential gaps), at most 200 requests in flight."""
    import httpx

    limit = asyncio.Semaphore(200)
    tasks: set[asyncio.Task[None]] = set()
    clock = asyncio.get_running_loop().time
    carol_last = [clock()]
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        async def one() -> None:
            async with limit:
                key = rng.choice(list(KEYS))
                model = rng.choice(list(MODELS))
                words = rng.randint(5, 60)
                if key == CAROL:  # her spend follows the clock (see the module docstring)
                    now = clock()
                    model, words = CAROL_MODEL, carol_prompt_words(now - carol_last[0])
                    carol_last[0] = now
                body = {"model": model, "stream": rng.random() < 0.6,
                        "messages": [{"role": "user", "content": " ".join(
                            rng.choice(WORDS) for _ in range(words))}],
                        "stream_options": {"include_usage": True}}
                headers = {"Authorization": f"Bearer {key}"}
                try:
                    async with client.stream("POST", CHAT, json=body, headers=headers) as r:
                        async for _ in r.aiter_bytes():
                            pass
                except httpx.HTTPError:
                    pass

        while not stop.is_set():
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            try:
                await asyncio.wait_for(stop.wait(), rng.expovariate(rps))
            except asyncio.TimeoutError:
                pass
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def status_line(telemetry: Telemetry, started: float) -> str:
    errors = telemetry.errors.get_metrics()
    stream = telemetry.streaming.get_metrics()
    tokens = sum(m["rate"] for m in telemetry.metrics.get_metrics()["tokens"].values())
    burn = telemetry.errors.get_burn_rates()["5m"]
    line = (f"{time.monotonic() - started:6.0f}s  requests {errors['total_requests']:>6}  "
            f"errors {errors['total_errors']:>4}  tokens/s {tokens:7.0f}  "
            f"p50 TTFT {stream.p50_ttft:5.0f} ms  spend ${telemetry.cost.get_total_cost():8.4f}  "
            f"burn(5m) {burn:5.1f}x")
    for slo in telemetry.goodput.slos:
        s = telemetry.slo_status(slo.name)
        line += f"  {slo.name} good {s.good_ratio:6.1%} ({s.goodput_per_second:.1f}/s)"
    return line


async def run(port: int = 9464, addr: str = "127.0.0.1", rps: float = 20.0,
              duration: float = 0.0, seed: int | None = None, error_rate: float = 0.02,
              registry: CollectorRegistry = REGISTRY, out: Any = sys.stdout,
              slos: SLOSource | None = None, budget_store: str | None = None,
              prices: PriceTable | None = None) -> Telemetry:
    """Serve the fake API and ``/metrics`` on ``addr:port`` and drive it until stopped.

    ``slos``: latency SLOs (or a spec file) to judge every request against; the status line
    then shows each one's good ratio and goodput over the last five minutes. ``budget_store``
    (a ``redis://`` URL) shares the budgets with other demos on that Redis. ``prices``
    (default: FakeAI's table) prices its requests."""
    import uvicorn

    rng = random.Random(seed)
    telemetry = Telemetry(registry=registry, slos=slos, budget_store=budget_store, prices=prices)
    setup_keys(telemetry)
    app = build_app(telemetry, registry, rng, error_rate)
    server = uvicorn.Server(uvicorn.Config(app, host=addr, port=port, log_level="warning",
                                           lifespan="off"))
    stop = asyncio.Event()
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # re-raise the startup failure
            raise SystemExit(f"could not serve on {addr}:{port}")
        await asyncio.sleep(0.05)
    print(f"fakeai-metrics demo: fake OpenAI API and metrics on http://{addr}:{port}\n"
          f"  scrape:  http://{addr}:{port}/metrics   (Prometheus: grafana/prometheus.yml)\n"
          f"  load:    {rps:g} requests/s, {error_rate:.0%} errors; Ctrl-C stops", file=out)
    started = time.monotonic()
    driver = asyncio.create_task(load(f"http://{addr}:{port}", rps, rng, stop))
    try:
        while not serving.done():
            await asyncio.sleep(1.0)
            print("\r" + status_line(telemetry, started), end="", file=out, flush=True)
            if duration and time.monotonic() - started >= duration:
                break
    finally:
        stop.set()
        await driver
        server.should_exit = True
        await serving
        telemetry.close()
        print("\nstopped.", file=out)
    return telemetry
