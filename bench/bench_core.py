#!/usr/bin/env python
"""Hot-path benchmark: the project's trackers against bare prometheus_client ("floor"), one run.

Why: a request through the five trackers validates its arguments, updates in-process views
(sliding windows, per-key usage, error patterns, open streams) and exports the catalog. The floor
is the fewest direct prometheus_client calls that export the *same* series for the *same* workload
(see workload.py). Every ratio below divides by a floor measured in the same run, alternated with
the project side, so machine noise moves both.

Sections (all in one run; targets from issues 8, 15 and 16, ``--check`` exits 1 when one is
missed):

  seed API     the five trackers called directly, at each --sizes; us/request and ratio to floor
               (target <= 0.8 at 20k, issue 16), per-request cost largest/20k (<= 1.1),
               RSS growth over the largest run (<= 2 MB)
  Telemetry    the same requests through the hub's one-call paths, against a floor that also
               exports the hub's extra series (reported, no target)
  OTel         the seed API with an OpenTelemetry SDK MeterProvider (InMemoryMetricReader)
               attached (reported: issue 15 restated the target net of the SDK); unattached is
               the seed API row. Then the split: SDK records per request x one record's cost, and
               the project's own OTel work (<= 2 us per request)
  per token    StreamingMetricsTracker.record_token, median us per token (<= 0.5 us), next to
               the floor's Histogram.observe and Telemetry.stream_token
  scrape       generate_latest with 100 models x 2.5k/5k/10k keys' cost series (<= 100 ms at
               ~10k series) and linearity: ms per series at the largest / at the smallest (<= 1.25)
  multiprocess 4 worker processes writing prometheus_client's files, scraped with
               scrape_registry() (MergingCollector), vs one ordinary process holding all their
               requests (<= 2x; the series and values must match); prometheus_client's
               MultiProcessCollector is shown for context. Recording in that mode, one worker at
               a time, against bare prometheus_client in the same mode (<= 1.2x), and one write
               into the files alone, a mirror's against a bare child's

How to run (by hand on a quiet machine; nothing here is a test):

    python bench/bench_core.py                 # everything, best of 3 (a few minutes)
    python bench/bench_core.py --quick         # 2k and 20k, best of 2, smaller scrape/mp (~40 s)
    python bench/bench_core.py --check         # exit 1 when a target is missed
    python bench/bench_core.py --profile       # cProfile of the seed-API side, top 15

Timing is the best of ``--reps`` runs, sides alternated (A B C, C B A, ...), each run on fresh
trackers and a fresh registry; gc stays enabled and is collected before each run. RSS growth is
measured in a fresh child process per side: current RSS (/proc/self/statm, psutil if /proc is
missing, else ru_maxrss) after gc, just before vs just after the run, with the trackers alive.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.metadata
import json
import math
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import prometheus_client
from prometheus_client import Histogram, generate_latest

import scale
import workload as w
from fakeai_metrics import StreamingMetricsTracker, Telemetry

# --- targets ---------------------------------------------------------------------------------
TARGET_RATIO = 0.8          # seed API / floor, us per request at 20k (issue 16)
TARGET_FLAT = 1.1           # seed API us/request at the largest size / at 20k
TARGET_RSS_MB = 2.0         # seed API RSS growth over the largest run
TARGET_TOKEN_US = 0.5       # record_token, median us per token
TARGET_SCRAPE_MS = 100.0    # generate_latest of ~10k series
TARGET_LINEAR = 1.25        # scrape ms per series at the largest size / at the smallest
TARGET_MP_RATIO = 2.0       # multiprocess scrape of 4 workers / single process
TARGET_OTEL_OWN_US = 2.0    # the project's OTel work per request, net of the SDK (issue 15)
TARGET_MP_RECORD_RATIO = 1.2  # recording in multiprocess mode / bare prometheus_client's (issue 15)

SCRIPT = os.path.abspath(__file__)


# --- one timed run of one side ---------------------------------------------------------------

def otel_provider() -> Any:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    return MeterProvider(metric_readers=[InMemoryMetricReader()])


class CountingProvider:
    """An OpenTelemetry API provider whose histograms only count records: how many SDK records a
    workload makes. With ``count=False`` a record is a C-level no-op (a dict store) instead, so
    timing a workload with it gives the project's own OTel work with nothing behind it."""

    def __init__(self, count: bool = True) -> None:
        from opentelemetry.metrics import NoOpHistogram, NoOpMeter
        provider = self
        self.records = 0
        sink: dict[Any, Any] = {}

        class Histogram(NoOpHistogram):
            if count:
                def record(self, amount: Any, attributes: Any = None,
                           context: Any = None) -> None:
                    provider.records += 1
            else:
                record = sink.__setitem__  # type: ignore[assignment]

        class Meter(NoOpMeter):
            def create_histogram(self, name: str, unit: str = "", description: str = "",
                                 **advice: Any) -> Any:
                return Histogram(name)

        self.meter = Meter("counting")

    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        return self.meter


def sdk_record_us(reps: int, n: int = 20_000) -> float:
    """Best us per SDK Histogram.record with a request's GenAI attributes (4 of them)."""
    from fakeai_metrics import otel
    hist = otel_provider().get_meter("bench").create_histogram("h", unit="{token}")
    attrs = otel._Attrs("openai", otel._otel(otel.c.TOKENS))((w.ENDPOINT, w.MODELS[0],
                                                             otel.c.PROMPT))
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            hist.record(100, attrs)
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


def otel_breakdown(work: w.Work, clock_kind: str, reps: int) -> dict[str, float]:
    """An attached provider's cost split in two: the SDK's records (records per request, counted,
    times one record's cost) and the project's own OTel work: us/request with a provider whose
    records are C-level no-ops minus without a provider, in back-to-back pairs (order
    alternating); the median and the smallest of the pairs' differences."""
    diffs = []
    for rep in range(max(reps, 9)):
        sides = ("seed", "seed+noop") if rep % 2 == 0 else ("seed+noop", "seed")
        us = {side: timed(side, work, clock_kind)["us"] for side in sides}
        diffs.append(us["seed+noop"] - us["seed"])
    counter = CountingProvider()
    cell, clock = w.make_clock(clock_kind)
    w.run_seed(work, w.build_seed(clock, counter), cell)
    return {"records_per_request": counter.records / len(work), "record_us": sdk_record_us(reps),
            "own_us": statistics.median(diffs), "own_us_min": min(diffs),
            "own_calls_us": otel_own_calls_us(work, max(reps, 5))}


def otel_own_calls_us(work: w.Work, reps: int, n: int = 20_000) -> float:
    """The project's own OTel work per request measured call by call: each OTel call the trackers
    make (with a provider whose records are C-level no-ops) timed alone, best of ``reps`` runs of
    ``n`` calls, weighted by how often the workload's mix makes it. Steadier on a busy machine
    than the workload difference, which subtracts two numbers a hundred times larger."""
    cell, clock = w.make_clock("virtual")
    p = w.build_seed(clock, CountingProvider(count=False))
    cost, model, stream = p["cost"]._otel, p["models"]._otel, p["streaming"]._otel
    m, ep = w.MODELS[0], w.ENDPOINT
    calls = {"usage": lambda: cost.usage(ep, m, 120, 80),
             "request": lambda: model.request(ep, m, 0.4, False),
             "request_error": lambda: model.request(ep, m, 0.05, True, "ServiceUnavailable"),
             "completed": lambda: stream.completed(m, 0.2, 0.02)}
    us = {}
    for name, fn in calls.items():
        best = math.inf
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            best = min(best, (time.perf_counter() - t0) / n * 1e6)
        us[name] = best
    loop = min(timeit_loop_us(n) for _ in range(reps))  # the lambda and loop, not the project's
    per_kind = {w.PLAIN: us["usage"] + us["request"] - 2 * loop,
                w.STREAM: us["usage"] + us["completed"] - 2 * loop,
                w.ERROR: us["request_error"] - loop}
    return sum(per_kind[r[0]] for r in work) / len(work)


def timeit_loop_us(n: int) -> float:
    """us per iteration of the timing loop above around a call that does nothing."""
    def nothing() -> None:
        pass
    fn = lambda: nothing()  # noqa: E731 - the same shape as the calls timed
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


#: Meter providers a side may name after ``+``.
PROVIDERS: dict[str, Callable[[], Any]] = {"otel": otel_provider, "counting": CountingProvider,
                                           "noop": lambda: CountingProvider(count=False)}


def prepare(side: str, work: w.Work, clock_kind: str) -> tuple[Callable[[], None],
                                                                 Callable[[], bytes]]:
    """Fresh state for ``side``: (run the workload, scrape). Sides: seed, seed+otel,
    seed+counting, seed+noop, hub, floor, floor-hub."""
    cell, clock = w.make_clock(clock_kind)
    if side.startswith("floor"):
        f = w.Floor(hub=side == "floor-hub")
        wt = w.totals(work)
        return (lambda: w.run_floor(work, f, cell, clock)), (lambda: w.scrape_floor(f, wt))
    name, _, provider = side.partition("+")
    build, runner = w.PROJECT[name]
    p = build(clock, PROVIDERS[provider]() if provider else None)
    return (lambda: runner(work, p, cell)), (lambda: generate_latest(p["registry"]))


def timed(side: str, work: w.Work, clock_kind: str) -> dict[str, Any]:
    run, scrape = prepare(side, work, clock_kind)
    gc.collect()
    t0 = time.perf_counter()
    run()
    elapsed = time.perf_counter() - t0
    return {"us": elapsed / len(work) * 1e6, "text": scrape().decode()}


def best_of(sides: list[str], work: w.Work, clock_kind: str, reps: int
            ) -> tuple[dict[str, float], dict[str, str]]:
    """Best us/request of each side over ``reps`` alternated rounds, and each side's scrape."""
    best = {s: math.inf for s in sides}
    texts: dict[str, str] = {}
    for rep in range(reps):
        for side in (sides if rep % 2 == 0 else sides[::-1]):
            r = timed(side, work, clock_kind)
            best[side] = min(best[side], r["us"])
            texts[side] = r["text"]
    return best, texts


# --- RSS -------------------------------------------------------------------------------------

def current_rss_bytes() -> tuple[int, str]:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE"), "current RSS (/proc/self/statm)"
    except OSError:
        pass
    try:
        import psutil  # type: ignore[import-not-found]
        return psutil.Process().memory_info().rss, "current RSS (psutil)"
    except ImportError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "peak RSS (ru_maxrss)"


def rss_child(side: str, n: int, seed: int, clock_kind: str) -> None:
    """Runs in a fresh process: RSS just before vs just after one run, state alive."""
    work = w.make_workload(n, seed)
    run, _ = prepare(side, work, clock_kind)
    gc.collect()
    before, how = current_rss_bytes()
    run()
    gc.collect()
    after, _ = current_rss_bytes()
    print(json.dumps({"mb": (after - before) / 2**20, "how": how}))


def measure_rss(side: str, n: int, seed: int, clock_kind: str) -> tuple[float, str]:
    out = subprocess.run([sys.executable, SCRIPT, "--rss-child", side, str(n), "--seed",
                          str(seed), "--clock", clock_kind], check=True, capture_output=True,
                         text=True)
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return d["mb"], d["how"]


# --- per token -------------------------------------------------------------------------------

def token_costs(streams: int, reps: int) -> dict[str, float]:
    """Median us per token: blocks of one stream's 49 gaps each, timed with perf_counter_ns;
    the lowest median of ``reps`` rounds (project, floor and hub alternated).

    Clock: time.monotonic, StreamingMetricsTracker's default (a C call, ~40 ns). The first token
    of each stream (its TTFT) is outside the timed block; every timed token is an ITL gap.
    """
    gaps = w.STREAM_TOKENS - 1
    models = w.MODELS
    clock = time.monotonic
    ns = time.perf_counter_ns

    def timed(start: Callable[[str, str], None], token: Callable[[str], None],
              finish: Callable[[str], None]) -> list[float]:
        """ns per gap of each stream: its first token untimed, then ``gaps`` timed tokens."""
        out = []
        for i in range(streams):
            sid = f"s{i}"
            start(sid, models[i % 3])
            token(sid)
            t0 = ns()
            for _ in range(gaps):
                token(sid)
            out.append((ns() - t0) / gaps)
            finish(sid)
        return out

    def project() -> list[float]:
        st = StreamingMetricsTracker(clock=clock)
        return timed(lambda sid, m: st.start_stream(sid, m, 10), st.record_token,
                     st.complete_stream)

    def hub() -> list[float]:
        t = Telemetry(registry=prometheus_client.CollectorRegistry(), clock=clock)
        return timed(lambda sid, m: t.start_stream(sid, endpoint=w.ENDPOINT, model=m,
                                                   prompt_tokens=10),
                     t.stream_token, t.finish_stream)

    def floor() -> list[float]:
        h = Histogram("itl", "itl", ["model"], registry=prometheus_client.CollectorRegistry(),
                      buckets=w.c.ITL.buckets)
        children = [h.labels(m) for m in models]
        out = []
        for i in range(streams):
            child = children[i % 3]
            last = clock()
            t0 = ns()
            for _ in range(gaps):
                now = clock()
                child.observe(now - last)
                last = now
            out.append((ns() - t0) / gaps)
        return out

    best = {"project": math.inf, "floor": math.inf, "hub": math.inf}
    for _ in range(reps):
        for name, fn in (("project", project), ("floor", floor), ("hub", hub)):
            gc.collect()
            best[name] = min(best[name], statistics.median(fn()) / 1000)
    return best


# --- profile ---------------------------------------------------------------------------------

def profile(n: int, seed: int, clock_kind: str, top: int) -> None:
    work = w.make_workload(n, seed)
    run, _ = prepare("seed", work, clock_kind)
    gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    run()
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)
    print(f"cProfile of the seed-API side, {n} requests, clock={clock_kind}; "
          f"total tottime {total:.3f} s (profiler overhead included)")
    print(f"{'ncalls':>9} {'tottime s':>9} {'share':>6} {'cumtime s':>9}  function")
    for (file, line, func), (cc, nc, tt, ct, _) in rows[:top]:
        where = f"{os.path.relpath(file) if file.startswith('/') else file}:{line}({func})"
        if file == "~":
            where = func
        print(f"{nc:>9} {tt:>9.3f} {tt / total:>6.1%} {ct:>9.3f}  {where}")


# --- report ----------------------------------------------------------------------------------

def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Report:
    """Collects target checks; prints them as one table."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, bool]] = []

    def check(self, name: str, value: float, limit: float, fmt: str, unit: str = "",
              at_most: bool = True) -> None:
        """A target ``value <= limit`` (``at_most=False``: ``value >= limit``)."""
        self.rows.append((name, format(value, fmt) + unit,
                          ("<= " if at_most else ">= ") + format(limit, "g") + unit,
                          value <= limit if at_most else value >= limit))

    def must(self, name: str, ok: bool, detail: str) -> None:
        self.rows.append((name, detail, "", ok))

    def print(self) -> int:
        width = max([44] + [len(name) for name, *_ in self.rows])
        print(f"{'target':<{width}} {'value':>11} {'limit':>11}  result")
        print("-" * (width + 32))
        for name, value, limit, ok in self.rows:
            print(f"{name:<{width}} {value:>11} {limit:>11}  {'ok' if ok else 'MISSED'}")
        return sum(not ok for *_, ok in self.rows)


def semconv_records(work: w.Work) -> float:
    """SDK records per request the GenAI semconv instruments need for ``work``: a request's
    duration and, for a success, its input and output token usage; a stream its TTFT, TPOT and
    token usage (the seed API's stream calls carry no request duration)."""
    need = {w.PLAIN: 3, w.STREAM: 4, w.ERROR: 1}
    return sum(need[r[0]] for r in work) / len(work)


def otel_section(report: Report, work: w.Work, clock_kind: str, reps: int,
                 seed_us: float | None = None, floor_us: float | None = None) -> None:
    """Issue 15's OTel target: the project's own work per request with a provider attached, net
    of the SDK's records (<= 2 us), and no more SDK records than the semconv instruments need."""
    ob = otel_breakdown(work, clock_kind, reps)
    sdk_us = ob["records_per_request"] * ob["record_us"]
    need = semconv_records(work)
    print(f"\nOTel @{len(work)}, opentelemetry-sdk {_version('opentelemetry-sdk')}: "
          f"{ob['records_per_request']:.2f} SDK Histogram.record per request (the semconv "
          f"instruments need {need:.2f}) x {ob['record_us']:.2f} us each = {sdk_us:.1f} "
          f"us/request; the project's own OTel work {ob['own_calls_us']:.2f} us/request timed "
          f"call by call, {ob['own_us']:.2f} as the workload's difference (median of paired "
          f"runs; smallest {ob['own_us_min']:.2f})")
    if seed_us is not None and floor_us is not None:
        print(f"  with this SDK 'OTel attached / floor' is at least (seed API + SDK records) / "
              f"floor = {(seed_us + sdk_us) / floor_us:.2f}x")
    report.check("OTel: project's own work per request, net of SDK", ob["own_calls_us"],
                 TARGET_OTEL_OWN_US, ".2f", " us")
    report.check("OTel: SDK records per request / semconv need", ob["records_per_request"] /
                 need, 1.0, ".2f", "x")


def multiprocess_section(report: Report, quick: bool, seed: int) -> None:
    """prometheus_client's multiprocess mode: scrape of 4 workers, and recording per request
    against bare prometheus_client in the same mode (issue 15: <= 1.2x)."""
    mp = scale.multiprocess_scrape(SCRIPT, workers=4, n_per_worker=2_000 if quick else 5_000,
                                   seed=seed, reps=25)
    print(f"\nmultiprocess: {mp['workers']} workers x {mp['requests'] // mp['workers']} "
          f"requests ({mp['files']} files): scrape {mp['mp_ms']:.2f} ms, {mp['mp_bytes']} bytes; "
          f"one ordinary process with all {mp['requests']}: {mp['single_ms']:.2f} ms, "
          f"{mp['single_bytes']} bytes; one worker in multiprocess mode with all of them: "
          f"{mp['mp_one_ms']:.2f} ms; prometheus_client's MultiProcessCollector on the same "
          f"files: {mp['mp_prometheus_client_ms']:.2f} ms "
          f"({mp['mp_prometheus_client_ms'] / mp['single_ms']:.2f}x)")
    for d in mp["diffs"][:5]:
        print(f"  mismatch multiprocess vs one process: {d}")
    report.check(f"multiprocess scrape {mp['workers']} workers / single", mp["mp_ms"] /
                 mp["single_ms"], TARGET_MP_RATIO, ".2f", "x")
    report.must("multiprocess scrape matches one process", not mp["diffs"],
                "yes" if not mp["diffs"] else f"NO ({len(mp['diffs'])})")
    n = 2_000 if quick else 5_000
    rec = scale.multiprocess_recording(SCRIPT, n, seed, reps=3 if quick else 7)
    ratio = rec["project_median"] / rec["floor_median"]
    print(f"multiprocess recording, one worker at a time, {n} requests of the bench mix, "
          f"alternated, best / median: seed API {rec['project_best']:.1f} / "
          f"{rec['project_median']:.1f} us/req, bare prometheus_client in multiprocess mode "
          f"{rec['floor_best']:.1f} / {rec['floor_median']:.1f} us/req; ratio of medians "
          f"{ratio:.2f}x, of bests {rec['project_best'] / rec['floor_best']:.2f}x")
    report.check("multiprocess recording / bare prometheus_client", ratio,
                 TARGET_MP_RECORD_RATIO, ".2f", "x")
    us = scale.mirror_write_us(reps=5)
    print(f"one write into the files, best of 5 x 50k: an inter-token gap "
          f"{us['mirror_observe']:.2f} us as the mirror writes it, {us['child_observe']:.2f} us by "
          f"a bare prometheus_client child's observe; a cost increment through MirroredCounter.inc"
          f" {us['mirror_inc']:.2f} us (its in-process value too), {us['child_inc']:.2f} us by the "
          f"child's inc")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", help="requests per run (default: 2000 "
                    "20000 200000; --quick: 2000 20000)")
    ap.add_argument("--reps", type=int, help="runs per side; best is kept (default 3, quick 2)")
    ap.add_argument("--quick", action="store_true",
                    help="fewer sizes and reps, smaller scrape and multiprocess sections")
    ap.add_argument("--seed", type=int, default=w.SEED)
    ap.add_argument("--clock", choices=("virtual", "perf_counter"), default="virtual")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--no-rss", action="store_true", help="skip the RSS child processes")
    ap.add_argument("--profile", action="store_true",
                    help="only cProfile the seed-API side (--profile-size requests) and exit")
    ap.add_argument("--sdk-record", action="store_true",
                    help="only print us per OpenTelemetry SDK Histogram.record (installed SDK)")
    ap.add_argument("--profile-size", type=int, default=20_000)
    ap.add_argument("--profile-top", type=int, default=15)
    ap.add_argument("--rss-child", nargs=2, metavar=("SIDE", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--mp-worker", type=int, metavar="N", help=argparse.SUPPRESS)
    ap.add_argument("--mp-floor-worker", type=int, metavar="N", help=argparse.SUPPRESS)
    ap.add_argument("--otel-only", action="store_true", help="only the OTel cost split")
    ap.add_argument("--mp-only", action="store_true",
                    help="only the multiprocess sections (scrape and recording)")
    args = ap.parse_args(argv)

    prometheus_client.disable_created_metrics()  # the project exports no *_created series
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]), args.seed, args.clock)
        return 0
    if args.mp_worker:
        scale.mp_worker(args.mp_worker, args.seed)
        return 0
    if args.mp_floor_worker:
        scale.mp_floor_worker(args.mp_floor_worker, args.seed)
        return 0
    if args.profile:
        profile(args.profile_size, args.seed, args.clock, args.profile_top)
        return 0
    if args.sdk_record:
        print(f"opentelemetry-sdk {_version('opentelemetry-sdk')}: "
              f"{sdk_record_us(reps=5):.2f} us per Histogram.record (best of 5)")
        return 0

    quick = args.quick
    sizes = sorted(set(args.sizes or ([2_000, 20_000] if quick else [2_000, 20_000, 200_000])))
    reps = args.reps or (2 if quick else 3)
    mid = 20_000 if 20_000 in sizes else sizes[-1]  # where Telemetry and OTel run
    started = time.perf_counter()
    print(f"python {platform.python_version()}, prometheus_client {_version('prometheus_client')}"
          f", opentelemetry-sdk {_version('opentelemetry-sdk')}, fakeai-metrics "
          f"{_version('fakeai-metrics')}; {os.cpu_count()} CPUs ({_cpu()}), "
          f"{platform.system()} {platform.release()}; seed {args.seed}")
    print(f"clock: {args.clock}; timing: best of {reps}, sides alternated, fresh state per run")
    report = Report()
    if args.mp_only or args.otel_only:
        if args.otel_only:
            otel_section(report, w.make_workload(20_000, args.seed), args.clock, reps)
        if args.mp_only:
            multiprocess_section(report, quick, args.seed)
        return 1 if report.print() and args.check else 0

    # --- workloads: seed API (and OTel at `mid`), Telemetry at `mid` ---
    rows = []
    results: dict[int, dict[str, float]] = {}
    for n in sizes:
        work = w.make_workload(n, args.seed)
        sides = ["seed", "floor"] + (["seed+otel"] if n == mid else [])
        best, texts = best_of(sides, work, args.clock, reps)
        results[n] = best
        for side in sides[::2]:
            diffs = w.compare(texts[side], texts["floor"], args.clock)
            rows.append((side, n, best[side], best["floor"], diffs))
        if n == mid:
            hbest, htexts = best_of(["hub", "floor-hub"], work, args.clock, reps)
            diffs = w.compare(htexts["hub"], htexts["floor-hub"], args.clock)
            rows.append(("hub", n, hbest["hub"], hbest["floor-hub"], diffs))
        print(f"  done {n}: mix plain/stream/error = {'/'.join(map(str, w.mix(work)))}",
              flush=True)
    labels = {"seed": "seed API (five trackers)", "seed+otel": "seed API + OTel MeterProvider",
              "hub": "Telemetry one-call paths"}
    print()
    head = (f"{'workload':<30} | {'requests':>8} | {'project us/req':>14} | "
            f"{'floor us/req':>12} | {'ratio':>5} | match")
    print(head)
    print("-" * len(head))
    for side, n, p_us, f_us, diffs in rows:
        match = "yes" if not diffs else f"NO ({len(diffs)})"
        print(f"{labels[side]:<30} | {n:>8} | {p_us:14.2f} | {f_us:12.2f} | "
              f"{p_us / f_us:5.2f} | {match}")
    for side, n, _, _, diffs in rows:
        for d in diffs[:5]:
            print(f"  mismatch {side} @{n}: {d}")

    if mid in results:
        r = results[mid]
        report.check(f"seed API / floor @{mid}", r["seed"] / r["floor"], TARGET_RATIO, ".2f", "x")
    if mid in results:
        otel_section(report, w.make_workload(mid, args.seed), args.clock, reps,
                     results[mid]["seed"], results[mid]["floor"])
    largest = sizes[-1]
    if largest > mid:
        report.check(f"seed API us/req {largest} / {mid}",
                     results[largest]["seed"] / results[mid]["seed"], TARGET_FLAT, ".2f")
    if not args.no_rss:
        rss, how = measure_rss("seed", largest, args.seed, args.clock)
        rss_floor, _ = measure_rss("floor", largest, args.seed, args.clock)
        print(f"\nRSS growth over {largest} requests ({how}, fresh child, after gc, state "
              f"alive): seed API {rss:.2f} MB, floor {rss_floor:.2f} MB")
        report.check(f"RSS growth over {largest} requests", rss, TARGET_RSS_MB, ".2f", " MB")
    report.must("scrapes match the floor (series and values)", not any(r[4] for r in rows),
                "yes" if not any(r[4] for r in rows) else "NO")

    # --- per token ---
    tok = token_costs(streams=1000, reps=5 if quick else 9)  # ~0.1 s a rep: many cheap reps
    print(f"\nper token, median us over blocks of {w.STREAM_TOKENS - 1} gaps (clock "
          f"time.monotonic): record_token {tok['project']:.3f}, prometheus_client "
          f"Histogram.observe (floor) {tok['floor']:.3f}, Telemetry.stream_token "
          f"{tok['hub']:.3f}")
    report.check("record_token median us", tok["project"], TARGET_TOKEN_US, ".3f")

    # --- scrape scaling ---
    key_counts = [25, 100] if quick else [25, 50, 100]
    srows = scale.scrape_scaling(100, key_counts, reps=3 if quick else 5)
    print("\nscrape: generate_latest, best of 3-5; one plain request per (model, key), 100 models")
    head = (f"{'cost series':>11} | {'samples':>7} | {'project ms':>10} | {'floor ms':>8} | "
            f"{'ratio':>5} | {'project bytes':>13} | {'floor bytes':>11} | match")
    print(head)
    print("-" * len(head))
    for r in srows:
        print(f"{r['cost_series']:>11} | {r['samples']:>7} | {r['project_ms']:10.2f} | "
              f"{r['floor_ms']:8.2f} | {r['project_ms'] / r['floor_ms']:5.2f} | "
              f"{r['project_bytes']:>13} | {r['floor_bytes']:>11} | "
              f"{'yes' if not r['diffs'] else 'NO'}")
    lo, hi = srows[0], srows[-1]
    report.check(f"scrape ms, {hi['samples']} samples", hi["project_ms"], TARGET_SCRAPE_MS,
                 ".1f", "")
    per_series = (hi["project_ms"] / hi["samples"]) / (lo["project_ms"] / lo["samples"])
    report.check(f"scrape ms/sample {hi['samples']} vs {lo['samples']}", per_series,
                 TARGET_LINEAR, ".2f")
    report.must("scrape-scaling series match the floor", not any(r["diffs"] for r in srows),
                "yes" if not any(r["diffs"] for r in srows) else "NO")

    multiprocess_section(report, quick, args.seed)

    print(f"\nbench time {time.perf_counter() - started:.0f} s\n")
    missed = report.print()
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
