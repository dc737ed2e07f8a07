#!/usr/bin/env python
"""Budget store benchmark: the Redis store on localhost against the in-process store, and during
an outage, in requests per second and microseconds per request.

Two paths per side, each a loop over one process's CostTracker with a hard budget set:

  gateway   ``allows(key)`` then ``record_usage(key, ...)``: one Redis round trip per request
            (allows asks the fleet), the rest in memory
  record    ``record_usage`` only (what the middleware calls): never touches Redis, so the Redis
            store should cost about what the in-process one does

Sides: ``in-process`` (the default store), ``redis`` (a ``redis-server`` this script starts on a
free port of 127.0.0.1, no persistence, stopped at the end), ``outage`` (a Redis store whose
server, a second one, is stopped before timing: the first call fails within the timeout, later
ones answer locally until the probe sees Redis again, which it never does here). Sides are
alternated (A B C, C B A, ...); the best and the median of ``--reps`` rounds are printed, each
round ``--requests`` requests.

    python bench/bench_budget_store.py                 # 5 rounds of 20k requests
    python bench/bench_budget_store.py --reps 3 --requests 5000

Needs ``redis-server`` on PATH and ``pip install 'fakeai-metrics[redis]'``. Run by hand; on a
shared 2-core machine absolute figures move by tens of percent between runs.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

from prometheus_client import CollectorRegistry

from fakeai_metrics import BudgetLimitType, CostTracker, Price
from fakeai_metrics.redis_store import RedisBudgetStore

KEY = "sk-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not on PATH (Debian/Ubuntu: apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", directory],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    store = RedisBudgetStore(url)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            store.client.ping()
            return proc, url
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.05)
    proc.kill()
    sys.exit("redis-server did not start")


def tracker(store: object | None) -> CostTracker:
    t = CostTracker(registry=CollectorRegistry(), prices={"m": Price(1.0, 2.0)},
                    budget_store=store)  # type: ignore[arg-type]
    t.set_budget(KEY, 1e12, limit_type=BudgetLimitType.HARD)
    t.allows(KEY)  # learn the budget (Redis) before timing
    return t


def gateway(t: CostTracker, n: int) -> None:
    allows, record = t.allows, t.record_usage
    for _ in range(n):
        if allows(KEY):
            record(KEY, "m", "/v1/chat/completions", 500, 100)


def record_only(t: CostTracker, n: int) -> None:
    record = t.record_usage
    for _ in range(n):
        record(KEY, "m", "/v1/chat/completions", 500, 100)


def timed(fn: Callable[[CostTracker, int], None], t: CostTracker, n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    fn(t, n)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--requests", type=int, default=20_000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as up_dir, tempfile.TemporaryDirectory() as down_dir:
        up, url = start_redis(up_dir)
        gone, gone_url = start_redis(down_dir)  # the outage side's Redis, stopped before timing
        try:
            sides = {"in-process": tracker(None), "redis": tracker(RedisBudgetStore(url)),
                     "outage": tracker(RedisBudgetStore(gone_url, probe_interval=3600))}
            gone.terminate()
            gone.wait()
            started = time.perf_counter()
            sides["outage"].allows(KEY)  # the one call that waits (refused, or the timeout)
            first_call = time.perf_counter() - started
            results: dict[tuple[str, str], list[float]] = {}
            paths = {"gateway": gateway, "record": record_only}
            for rep in range(args.reps):
                order = list(sides.items())
                for name, fn in (paths.items() if rep % 2 == 0 else reversed(paths.items())):
                    for side, t in (order if rep % 2 == 0 else reversed(order)):
                        results.setdefault((name, side), []).append(timed(fn, t, args.requests))
        finally:
            for proc in (up, gone):
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait()
            for t in sides.values():
                t.budget_store.close()

    n = args.requests
    print(f"budget store bench: {args.reps} rounds x {n} requests, one process, "
          f"Python {sys.version.split()[0]}")
    print(f"{'path':<8} {'store':<11} {'req/s (best)':>13} {'us/req best':>12} "
          f"{'us/req median':>14} {'x in-process':>13}")
    for name in paths:
        base = min(results[(name, "in-process")]) / n
        for side in ("in-process", "redis", "outage"):
            times = results[(name, side)]
            best, median = min(times) / n, statistics.median(times) / n
            print(f"{name:<8} {side:<11} {1 / best:>13,.0f} {best * 1e6:>12.2f} "
                  f"{median * 1e6:>14.2f} {best / base:>12.2f}x")
    print(f"first call after Redis stopped: {first_call * 1e3:.1f} ms "
          f"(then no call waits until the probe sees Redis again)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
