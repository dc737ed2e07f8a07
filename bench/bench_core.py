#!/usr/bin/env python
"""Hot-path benchmark: the five trackers ("project") against bare prometheus_client ("floor").

Why: a request through the five trackers validates its arguments, updates in-process views
(sliding windows, per-key usage, error patterns, open streams) and exports the catalog. The floor
is the fewest direct prometheus_client calls that export the *same* catalog for the *same*
workload (children made by ``.labels()`` once, up front, and cached in dicts: the realistic best
case). The ratio project/floor is the price of the trackers' extras; it should stay small,
per-request cost should not grow with the number of requests seen, and memory should stay bounded.

Workload (seeded, deterministic): 68 % plain requests, 30 % streams of 50 tokens, 2 % errors;
3 API keys x 3 models (gpt-4o, gpt-4o-mini, gpt-3.5-turbo); endpoint /v1/chat/completions.

  plain  = metrics.track_request + track_response + track_tokens, cost.record_usage,
           models.track_request, errors.record_success
  error  = errors.record_error + metrics.track_error + models.track_request(error=True)
  stream = streaming.start_stream, 50 x record_token, complete_stream, cost.record_usage,
           errors.record_success

Both sides scrape to the same series (checked after every run: the "match" column). Streams do
not go through MetricsTracker in this workload, so the endpoint_streams_* series are empty on both
sides; ModelMetricsTracker is not told about streams, so request_duration has no stream samples.

Clock: by default a virtual clock, ``functools.partial(operator.getitem, cell, 0)`` (a C-level
call, no Python frame), whose value the driver sets before each event (requests arrive 1 ms
apart, tokens at the workload's own offsets). Both sides see identical times, so their histograms
must agree bucket for bucket. ``--clock perf_counter`` uses ``time.perf_counter`` instead (then
only counts are compared).

How to run (by hand; nothing here is a test):

    python bench/bench_core.py                        # sizes 20000 200000, best of 3
    python bench/bench_core.py --sizes 2000 20000 200000 --reps 5
    python bench/bench_core.py --check                # exit 1 when a target is missed
    python bench/bench_core.py --profile              # cProfile of the project side, top 15

Timing is the best of ``--reps`` runs, project and floor alternated (P F, F P, P F, ...), each run
on fresh trackers and a fresh registry; gc stays enabled and is collected before each run. RSS
growth is measured in a fresh child process per side and size: current RSS (/proc/self/statm,
psutil if /proc is missing, else ru_maxrss) after gc, just before vs just after the run, with the
trackers still alive. Scrape: best of 5 ``generate_latest(registry)`` after the run.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import importlib.metadata
import json
import math
import operator
import os
import platform
import pstats
import random
import resource
import subprocess
import sys
import time
from typing import Any, Callable

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fakeai_metrics import (
    CostTracker,
    ErrorMetricsTracker,
    MetricsTracker,
    ModelMetricsTracker,
    StreamingMetricsTracker,
    catalog as c,
    hash_key,
)
from fakeai_metrics.pricing import DEFAULT_PRICES
from fakeai_metrics.slo import burn_rate

# --- targets (from the issue) ----------------------------------------------------------------
TARGET_RATIO = 1.5   # project / floor, µs per request
TARGET_FLAT = 1.15   # project µs/request at the largest size / at 20k
TARGET_RSS_MB = 5.0  # project RSS growth over a run

# --- workload --------------------------------------------------------------------------------
ENDPOINT = "/v1/chat/completions"
MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo")
API_KEYS = ("sk-bench-alpha-0123456789", "sk-bench-bravo-0123456789", "sk-bench-charlie-012345")
STREAM_TOKENS = 50
P_PLAIN, P_STREAM = 0.68, 0.30  # the rest (2 %) are errors
ARRIVAL_S = 0.001               # virtual seconds between request starts
N_PROFILES = 64                 # distinct token-timing profiles streams draw from
PLAIN, STREAM, ERROR = 0, 1, 2
ERROR_KINDS = ((429, "rate_limit_error", "Rate limit reached for {m}: limit 10000, used {n}"),
               (500, "server_error", "Upstream timeout after {n} ms"))


def make_workload(n: int, seed: int) -> list[tuple]:
    """``n`` requests as 9-tuples ``(kind, t, key, model, prompt, completion, x, y, z)``.

    plain:  x = latency s, y = latency ms, z = total tokens
    stream: x = (first offset, other offsets, completion offset), y = stream id, z = None
    error:  x = latency ms, y = latency s, z = (status, error_type, message)
    A smaller workload with the same seed is a prefix of a larger one.
    """
    rng = random.Random(seed)
    profiles = []
    for _ in range(N_PROFILES):
        t = rng.uniform(0.05, 0.8)  # TTFT
        offsets = [t]
        for _ in range(STREAM_TOKENS - 1):
            t += rng.uniform(0.004, 0.06)  # inter-token gap
            offsets.append(t)
        profiles.append((offsets[0], tuple(offsets[1:]), t + 0.002))
    work: list[tuple] = []
    for i in range(n):
        r = rng.random()
        key = API_KEYS[rng.randrange(len(API_KEYS))]
        model = MODELS[rng.randrange(len(MODELS))]
        t = i * ARRIVAL_S
        prompt = rng.randint(20, 2000)
        if r < P_PLAIN:
            completion = rng.randint(1, 800)
            lat_ms = rng.lognormvariate(math.log(400.0), 0.7)
            work.append((PLAIN, t, key, model, prompt, completion, lat_ms / 1000.0, lat_ms,
                         prompt + completion))
        elif r < P_PLAIN + P_STREAM:
            work.append((STREAM, t, key, model, prompt, STREAM_TOKENS,
                         profiles[rng.randrange(N_PROFILES)], f"stream-{i}", None))
        else:
            status, etype, template = ERROR_KINDS[rng.randrange(len(ERROR_KINDS))]
            lat_ms = rng.lognormvariate(math.log(50.0), 1.0)
            msg = template.format(m=model, n=rng.randint(1, 99999))
            work.append((ERROR, t, key, model, prompt, 0, lat_ms, lat_ms / 1000.0,
                         (status, etype, msg)))
    return work


def make_clock(kind: str) -> tuple[list[float], Callable[[], float]]:
    cell = [0.0]
    if kind == "virtual":
        return cell, functools.partial(operator.getitem, cell, 0)
    return cell, time.perf_counter


# --- project: the five trackers on one registry ----------------------------------------------

def build_project(clock: Callable[[], float]) -> dict[str, Any]:
    reg = CollectorRegistry()
    kw = dict(registry=reg, clock=clock)
    return dict(registry=reg, metrics=MetricsTracker(**kw), cost=CostTracker(**kw),
                models=ModelMetricsTracker(**kw), errors=ErrorMetricsTracker(**kw),
                streaming=StreamingMetricsTracker(**kw))


def run_project(work: list[tuple], p: dict[str, Any], cell: list[float]) -> None:
    mt, ct, mo, et, st = p["metrics"], p["cost"], p["models"], p["errors"], p["streaming"]
    ep = ENDPOINT
    for kind, t, key, model, prompt, completion, x, y, z in work:
        cell[0] = t
        if kind == PLAIN:
            mt.track_request(ep)
            mt.track_response(ep, x)
            mt.track_tokens(ep, z)
            ct.record_usage(key, model, ep, prompt, completion)
            mo.track_request(model, ep, prompt, completion, latency_ms=y)
            et.record_success(ep, model)
        elif kind == STREAM:
            first, rest, end = x
            st.start_stream(y, model, prompt)
            cell[0] = t + first
            st.record_token(y)
            for off in rest:
                cell[0] = t + off
                st.record_token(y)
            cell[0] = t + end
            st.complete_stream(y)
            ct.record_usage(key, model, ep, prompt, completion)
            et.record_success(ep, model)
        else:
            status, etype, msg = z
            et.record_error(ep, status, etype, msg, model=model, api_key=key)
            mt.track_error(ep)
            mo.track_request(model, ep, prompt, 0, latency_ms=x, error=True)


def scrape_project(p: dict[str, Any], work_totals: tuple[int, int]) -> bytes:
    return generate_latest(p["registry"])


# --- floor: direct prometheus_client calls, children cached up front -------------------------

class Floor:
    """prometheus_client metrics made from the catalog specs, and their cached children."""

    def __init__(self) -> None:
        self.registry = reg = CollectorRegistry()
        m: dict[str, Any] = {}
        for spec in c.CATALOG:
            name, labels = spec.full_name(), spec.labels
            if spec.kind == "counter":
                m[spec.name] = Counter(name, spec.help, labels, registry=reg)
            elif spec.kind == "gauge":
                m[spec.name] = Gauge(name, spec.help, labels, registry=reg)
            else:
                m[spec.name] = Histogram(name, spec.help, labels, registry=reg,
                                         buckets=spec.buckets)
        self.m = m

        def per_model(spec: c.MetricSpec, *before: str, after: tuple[str, ...] = ()) -> dict:
            return {mod: m[spec.name].labels(*before, mod, *after) for mod in MODELS}

        self.ep_req = m[c.ENDPOINT_REQUESTS.name].labels(ENDPOINT)
        self.ep_lat = m[c.ENDPOINT_LATENCY.name].labels(ENDPOINT)
        self.ep_tok = m[c.ENDPOINT_TOKENS.name].labels(ENDPOINT)
        self.ep_err = m[c.ENDPOINT_ERRORS.name].labels(ENDPOINT)
        self.cost = {k: {mod: m[c.COST.name].labels(hash_key(k), mod) for mod in MODELS}
                     for k in API_KEYS}
        self.price = {mod: (DEFAULT_PRICES[mod].input, DEFAULT_PRICES[mod].output)
                      for mod in MODELS}
        self.tok_prompt = per_model(c.TOKENS, after=("prompt",))
        self.tok_completion = per_model(c.TOKENS, after=("completion",))
        self.duration = per_model(c.REQUEST_DURATION, ENDPOINT)
        self.req_ok = per_model(c.REQUESTS, ENDPOINT, after=("success",))
        self.req_err = per_model(c.REQUESTS, ENDPOINT, after=("error",))
        self.errors = {etype: m[c.ERRORS.name].labels(ENDPOINT, etype, str(status))
                       for status, etype, _ in ERROR_KINDS}
        self.ttft = per_model(c.TTFT)
        self.itl = per_model(c.ITL)
        self.tpot = per_model(c.TPOT)
        self.tps = per_model(c.TPS)
        self.active = per_model(c.STREAMS_ACTIVE)
        self.done = per_model(c.STREAMS, after=("completed",))
        self.slo_name, self.objective = "availability", 0.999
        m[c.SLO_OBJECTIVE.name].labels(self.slo_name).set(self.objective)
        self.burn = {w: m[c.SLO_BURN_RATE.name].labels(self.slo_name, w)
                     for w in c.BURN_RATE_WINDOWS}


def build_floor(clock: Callable[[], float]) -> Floor:
    return Floor()


def run_floor(work: list[tuple], f: Floor, cell: list[float], clock: Callable[[], float]) -> None:
    ep_req, ep_lat, ep_tok, ep_err = f.ep_req, f.ep_lat, f.ep_tok, f.ep_err
    cost, price, tok_p, tok_c = f.cost, f.price, f.tok_prompt, f.tok_completion
    duration, req_ok, req_err, errors = f.duration, f.req_ok, f.req_err, f.errors
    ttft, itl, tpot, tps, active, done = f.ttft, f.itl, f.tpot, f.tps, f.active, f.done
    n_gaps = STREAM_TOKENS - 1
    for kind, t, key, model, prompt, completion, x, y, z in work:
        cell[0] = t
        if kind == PLAIN:
            ep_req.inc()
            ep_lat.observe(x)
            ep_tok.inc(z)
            pin, pout = price[model]
            cost[key][model].inc((prompt * pin + completion * pout) / 1_000_000)
            tok_p[model].inc(prompt)
            tok_c[model].inc(completion)
            duration[model].observe(x)
            req_ok[model].inc()
        elif kind == STREAM:
            first_off, rest, end = x
            start = clock()
            active[model].inc()
            cell[0] = t + first_off
            first = last = clock()
            ttft[model].observe(first - start)
            h = itl[model]
            for off in rest:
                cell[0] = t + off
                now = clock()
                h.observe(now - last)
                last = now
            cell[0] = t + end
            now = clock()
            active[model].dec()
            done[model].inc()
            tps[model].observe(STREAM_TOKENS / (now - start))
            tpot[model].observe((last - first) / n_gaps)
            pin, pout = price[model]
            cost[key][model].inc((prompt * pin + completion * pout) / 1_000_000)
            tok_p[model].inc(prompt)
            tok_c[model].inc(completion)
            req_ok[model].inc()
        else:
            req_err[model].inc()
            errors[z[1]].inc()
            ep_err.inc()
            duration[model].observe(y)


def scrape_floor(f: Floor, work_totals: tuple[int, int]) -> bytes:
    total, errs = work_totals  # what the floor would read off its own counters
    for g in f.burn.values():
        g.set(burn_rate(errs, total, f.objective))
    return generate_latest(f.registry)


# --- measuring -------------------------------------------------------------------------------

def totals(work: list[tuple]) -> tuple[int, int]:
    return len(work), sum(1 for w in work if w[0] == ERROR)


def run_side(side: str, work: list[tuple], clock_kind: str) -> dict[str, Any]:
    cell, clock = make_clock(clock_kind)
    gc.collect()
    if side == "project":
        state: Any = build_project(clock)
        t0 = time.perf_counter()
        run_project(work, state, cell)
        elapsed = time.perf_counter() - t0
        scrape: Callable[..., bytes] = scrape_project
    else:
        state = build_floor(clock)
        t0 = time.perf_counter()
        run_floor(work, state, cell, clock)
        elapsed = time.perf_counter() - t0
        scrape = scrape_floor
    wt = totals(work)
    best, text = math.inf, b""
    for _ in range(5):
        s0 = time.perf_counter()
        text = scrape(state, wt)
        best = min(best, time.perf_counter() - s0)
    return {"us": elapsed / len(work) * 1e6, "scrape_ms": best * 1e3, "bytes": len(text),
            "text": text.decode()}


STREAM_HISTS = {c.TTFT.full_name(), c.ITL.full_name(), c.TPOT.full_name(), c.TPS.full_name()}


def samples(text: str) -> dict[tuple, float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(fam.name, s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def compare(project_text: str, floor_text: str, clock_kind: str) -> list[str]:
    """Differences between the two scrapes; series only the floor has must be zero."""
    p, f = samples(project_text), samples(floor_text)
    diffs = []
    for k, pv in p.items():
        fam, name = k[0], k[1]
        if k not in f:
            diffs.append(f"only in project: {name}{dict(k[2])} = {pv}")
            continue
        if fam == c.SLO_BURN_RATE.full_name():
            continue  # windowed in the project, whole-run in the floor
        if clock_kind != "virtual" and fam in STREAM_HISTS and not name.endswith("_count"):
            continue  # real clocks differ between the sides
        fv = f[k]
        if not math.isclose(pv, fv, rel_tol=1e-9, abs_tol=1e-12):
            diffs.append(f"{name}{dict(k[2])}: project {pv!r} != floor {fv!r}")
    for k, fv in f.items():
        if k not in p and fv != 0:
            diffs.append(f"only in floor: {k[1]}{dict(k[2])} = {fv}")
    return diffs


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
    """Runs in a fresh process: RSS just before vs just after one run, trackers alive."""
    work = make_workload(n, seed)
    cell, clock = make_clock(clock_kind)
    state: Any = build_project(clock) if side == "project" else build_floor(clock)
    gc.collect()
    before, how = current_rss_bytes()
    if side == "project":
        run_project(work, state, cell)
    else:
        run_floor(work, state, cell, clock)
    gc.collect()
    after, _ = current_rss_bytes()
    print(json.dumps({"mb": (after - before) / 2**20, "how": how}))


def measure_rss(side: str, n: int, seed: int, clock_kind: str) -> tuple[float, str]:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss-child", side, str(n),
                          "--seed", str(seed), "--clock", clock_kind],
                         check=True, capture_output=True, text=True)
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return d["mb"], d["how"]


def profile(n: int, seed: int, clock_kind: str, top: int) -> None:
    work = make_workload(n, seed)
    cell, clock = make_clock(clock_kind)
    p = build_project(clock)
    gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    run_project(work, p, cell)
    prof.disable()
    st = pstats.Stats(prof)
    stats = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)
    print(f"cProfile of the project side, {n} requests, clock={clock_kind}; "
          f"total tottime {total:.3f} s (profiler overhead included)")
    print(f"{'ncalls':>9} {'tottime s':>9} {'share':>6} {'cumtime s':>9}  function")
    for (file, line, func), (cc, nc, tt, ct, _) in rows[:top]:
        where = f"{os.path.relpath(file) if file.startswith('/') else file}:{line}({func})"
        if file == "~":
            where = func
        print(f"{nc:>9} {tt:>9.3f} {tt / total:>6.1%} {ct:>9.3f}  {where}")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000],
                    help="requests per run (default: 20000 200000)")
    ap.add_argument("--reps", type=int, default=3, help="runs per side and size; best is kept")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--clock", choices=("virtual", "perf_counter"), default="virtual")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--no-rss", action="store_true", help="skip the RSS child processes")
    ap.add_argument("--profile", action="store_true",
                    help="only cProfile the project side (--profile-size requests) and exit")
    ap.add_argument("--profile-size", type=int, default=20_000)
    ap.add_argument("--profile-top", type=int, default=15)
    ap.add_argument("--rss-child", nargs=2, metavar=("SIDE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    prometheus_client.disable_created_metrics()  # the project exports no *_created series
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]), args.seed, args.clock)
        return 0
    if args.profile:
        profile(args.profile_size, args.seed, args.clock, args.profile_top)
        return 0

    sizes = sorted(set(args.sizes))
    print(f"python {platform.python_version()}, prometheus_client {_version('prometheus_client')}, "
          f"fakeai-metrics {_version('fakeai-metrics')}, {os.cpu_count()} CPUs, seed {args.seed}")
    if args.clock == "virtual":
        print("clock: virtual, functools.partial(operator.getitem, cell, 0); the driver sets "
              f"cell[0] per event (arrivals {ARRIVAL_S * 1e3:g} ms apart)")
    else:
        print("clock: time.perf_counter")
    print(f"timing: best of {args.reps}, project/floor alternated, fresh trackers and registry "
          "per run; scrape: best of 5 generate_latest")
    results: dict[int, dict[str, Any]] = {}
    rss_how = ""
    for n in sizes:
        work = make_workload(n, args.seed)
        mix = [sum(1 for w in work if w[0] == k) for k in (PLAIN, STREAM, ERROR)]
        best: dict[str, dict[str, Any]] = {}
        diffs: list[str] = []
        for rep in range(args.reps):
            order = ("project", "floor") if rep % 2 == 0 else ("floor", "project")
            runs = {side: run_side(side, work, args.clock) for side in order}
            diffs = diffs or compare(runs["project"]["text"], runs["floor"]["text"], args.clock)
            for side, r in runs.items():
                scrape_ms = min(r["scrape_ms"], best.get(side, r)["scrape_ms"])
                if side not in best or r["us"] < best[side]["us"]:
                    best[side] = r
                best[side]["scrape_ms"] = scrape_ms
        res = {"mix": mix, "best": best, "diffs": diffs}
        if not args.no_rss:
            res["rss_project"], rss_how = measure_rss("project", n, args.seed, args.clock)
            res["rss_floor"], _ = measure_rss("floor", n, args.seed, args.clock)
        results[n] = res
        print(f"  done {n}: mix plain/stream/error = {mix[0]}/{mix[1]}/{mix[2]}", flush=True)

    if rss_how:
        print(f"RSS: {rss_how}, fresh child process per side and size, after gc, "
              "before vs after the run with trackers alive")
    print()
    head = (f"{'requests':>9} | {'project us/req':>14} | {'floor us/req':>12} | "
            f"{'proj/floor':>10} | {'proj RSS+ MB':>12} | {'floor RSS+ MB':>13} | "
            f"{'proj scrape ms':>14} | {'proj bytes':>10} | {'floor scrape ms':>15} | "
            f"{'floor bytes':>11} | match")
    print(head)
    print("-" * len(head))
    for n, r in results.items():
        p, f = r["best"]["project"], r["best"]["floor"]
        rp = f"{r['rss_project']:12.2f}" if "rss_project" in r else f"{'-':>12}"
        rf = f"{r['rss_floor']:13.2f}" if "rss_floor" in r else f"{'-':>13}"
        match = "yes" if not r["diffs"] else f"NO ({len(r['diffs'])})"
        print(f"{n:>9} | {p['us']:14.2f} | {f['us']:12.2f} | {p['us'] / f['us']:10.2f} | "
              f"{rp} | {rf} | {p['scrape_ms']:14.3f} | {p['bytes']:10} | "
              f"{f['scrape_ms']:15.3f} | {f['bytes']:11} | {match}")
    for n, r in results.items():
        for d in r["diffs"][:5]:
            print(f"  mismatch @{n}: {d}")

    # --- targets ---
    largest = sizes[-1]
    base = next((s for s in sizes if s >= 20_000 and s < largest), sizes[0])
    checks = []
    for n, r in results.items():
        if n >= 20_000 or n == largest:
            ratio = r["best"]["project"]["us"] / r["best"]["floor"]["us"]
            checks.append((f"project/floor @{n}", ratio, TARGET_RATIO, ""))
    if base != largest:
        flat = results[largest]["best"]["project"]["us"] / results[base]["best"]["project"]["us"]
        checks.append((f"flat project {largest}/{base}", flat, TARGET_FLAT, ""))
    for n, r in results.items():
        if "rss_project" in r and (n >= 20_000 or n == largest):
            checks.append((f"project RSS growth @{n}", r["rss_project"], TARGET_RSS_MB, " MB"))
    print()
    print(f"{'target':<30} {'value':>10} {'limit':>8}  result")
    missed = 0
    for name, value, limit, unit in checks:
        ok = value <= limit
        missed += not ok
        value_s, limit_s = format(value, ".2f") + unit, "<= " + format(limit, "g") + unit
        print(f"{name:<30} {value_s:>10} {limit_s:>8}  {'ok' if ok else 'MISSED'}")
    mismatched = any(r["diffs"] for r in results.values())
    if mismatched:
        print("catalog mismatch between project and floor: the comparison is not like for like")
    if args.check and (missed or mismatched):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
