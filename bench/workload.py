"""The benchmark's workload and its two sides: the project's trackers and the prometheus_client floor.

Workload (seeded, deterministic): 68 % plain requests, 30 % streams of 50 tokens, 2 % errors;
3 API keys x 3 models (gpt-4o, gpt-4o-mini, gpt-3.5-turbo); endpoint /v1/chat/completions.

The project side runs it two ways:

* ``seed``: the five trackers called directly, the seed's API (what FakeAI code calls)

    plain  = metrics.track_request + track_response + track_tokens, cost.record_usage,
             models.track_request, errors.record_success
    error  = errors.record_error + metrics.track_error + models.track_request(error=True)
    stream = streaming.start_stream, 50 x record_token, complete_stream, cost.record_usage,
             errors.record_success

* ``hub``: the same requests through ``Telemetry``'s one-call paths (``record_request``,
  ``start_stream`` / ``stream_token`` / ``finish_stream``, ``record_failure``). The hub also feeds
  the per-endpoint view of streams and failures, so it exports a few more series than ``seed``.

The floor is the fewest direct prometheus_client calls that export the *same* series for the *same*
workload (children made by ``.labels()`` once, up front, and cached in dicts: the realistic best
case); ``Floor(hub=True)`` adds the hub's extra series (and the finish reasons it counts). Both
sides scrape to the same series, which ``compare`` checks.

Clock: by default a virtual clock, ``functools.partial(operator.getitem, cell, 0)`` (a C-level call,
no Python frame), whose value the driver sets before each event (requests arrive 1 ms apart, tokens
at the workload's own offsets). Both sides see identical times, so their histograms must agree
bucket for bucket. ``perf_counter`` uses ``time.perf_counter`` instead (then only counts compare).
"""

from __future__ import annotations

import functools
import math
import operator
import random
import time
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fakeai_metrics import (
    CostTracker,
    ErrorMetricsTracker,
    MetricsTracker,
    ModelMetricsTracker,
    StreamingMetricsTracker,
    Telemetry,
    catalog as c,
    hash_key,
)
from fakeai_metrics.budgets import STORE_OPERATIONS
from fakeai_metrics.pricing import PriceTable
from fakeai_metrics.slo import burn_rate

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
SEED = 20240601

Work = list[tuple]


def make_workload(n: int, seed: int = SEED) -> Work:
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
    work: Work = []
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


def mix(work: Work) -> tuple[int, int, int]:
    """Plain, stream and error requests in ``work``."""
    return tuple(sum(1 for w in work if w[0] == k) for k in (PLAIN, STREAM, ERROR))  # type: ignore


def totals(work: Work) -> tuple[int, int]:
    return len(work), sum(1 for w in work if w[0] == ERROR)


def make_clock(kind: str) -> tuple[list[float], Callable[[], float]]:
    cell = [0.0]
    if kind == "virtual":
        return cell, functools.partial(operator.getitem, cell, 0)
    return cell, time.perf_counter


# --- project: the five trackers on one registry ----------------------------------------------

def build_seed(clock: Callable[[], float], meter_provider: Any = None) -> dict[str, Any]:
    reg = CollectorRegistry()
    kw = dict(registry=reg, clock=clock, meter_provider=meter_provider)
    return dict(registry=reg, metrics=MetricsTracker(**kw), cost=CostTracker(**kw),
                models=ModelMetricsTracker(**kw), errors=ErrorMetricsTracker(**kw),
                streaming=StreamingMetricsTracker(**kw))


def run_seed(work: Work, p: dict[str, Any], cell: list[float]) -> None:
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


def build_hub(clock: Callable[[], float], meter_provider: Any = None) -> dict[str, Any]:
    reg = CollectorRegistry()
    hub = Telemetry(registry=reg, meter_provider=meter_provider, clock=clock, wall_clock=clock)
    return dict(registry=reg, hub=hub)


def run_hub(work: Work, p: dict[str, Any], cell: list[float]) -> None:
    hub = p["hub"]
    record_request, record_failure = hub.record_request, hub.record_failure
    start_stream, stream_token, finish_stream = hub.start_stream, hub.stream_token, hub.finish_stream
    ep = ENDPOINT
    for kind, t, key, model, prompt, completion, x, y, z in work:
        cell[0] = t
        if kind == PLAIN:
            record_request(endpoint=ep, model=model, latency_s=x, prompt_tokens=prompt,
                           completion_tokens=completion, api_key=key)
        elif kind == STREAM:
            first, rest, end = x
            start_stream(y, endpoint=ep, model=model, prompt_tokens=prompt, api_key=key)
            cell[0] = t + first
            stream_token(y)
            for off in rest:
                cell[0] = t + off
                stream_token(y)
            cell[0] = t + end
            finish_stream(y)
        else:
            status, etype, msg = z
            record_failure(endpoint=ep, model=model, status_code=status, error_type=etype,
                           message=msg, latency_s=y, api_key=key)


#: project workloads by name: (build(clock, meter_provider), run(work, state, cell))
PROJECT = {"seed": (build_seed, run_seed), "hub": (build_hub, run_hub)}


# --- floor: direct prometheus_client calls, children cached up front -------------------------

class _OnFirstUse(dict):
    """Children made when first asked for, so only the series a workload touches exist."""

    def __init__(self, make: Callable[[Any], Any]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self.make(key)
        return value


class Floor:
    """prometheus_client metrics made from the catalog specs, and their cached children.

    ``hub=True``: also the series ``Telemetry`` adds (endpoint view of streams and failures).
    ``models`` and ``keys``: the label values children are made for, all up front (the timed
    sections), or with ``lazy=True`` on first use (the scrape section, where a child made up
    front but never used would export a zero series the project does not have).
    """

    def __init__(self, hub: bool = False, models: tuple[str, ...] = MODELS,
                 keys: tuple[str, ...] = API_KEYS, lazy: bool = False) -> None:
        self.hub = hub
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
        for kind in ("model", "endpoint", "api_key", "error_type"):  # LabelLimits' zero series
            m[c.LABEL_OVERFLOW.name].labels(kind)
        for operation in STORE_OPERATIONS:  # CostTracker's zero series of store failures
            m[c.BUDGET_STORE_ERRORS.name].labels(operation)

        def children(labels: Callable[[Any], Any], values: tuple[str, ...]) -> dict:
            return _OnFirstUse(labels) if lazy else {x: labels(x) for x in values}

        def per_model(spec: c.MetricSpec, *before: str, after: tuple[str, ...] = ()) -> dict:
            return children(lambda mod: m[spec.name].labels(*before, mod, *after), models)

        self.ep_req = m[c.ENDPOINT_REQUESTS.name].labels(ENDPOINT)
        self.ep_lat = m[c.ENDPOINT_LATENCY.name].labels(ENDPOINT)
        self.ep_tok = m[c.ENDPOINT_TOKENS.name].labels(ENDPOINT)
        self.ep_err = m[c.ENDPOINT_ERRORS.name].labels(ENDPOINT)
        self.ep_active = m[c.ENDPOINT_STREAMS_ACTIVE.name].labels(ENDPOINT)
        self.ep_done = m[c.ENDPOINT_STREAMS.name].labels(ENDPOINT, "completed")
        self.cost = children(lambda k: per_model(c.COST, hash_key(k)), keys)
        prices = {mod: PriceTable().price(mod)[0] for mod in models}  # set-up, not timed
        self.price = {mod: (p.input, p.output) for mod, p in prices.items()}
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
        self.finished = per_model(c.FINISH_REASONS_TOTAL, after=("stop",))
        self.slo_name, self.objective = "availability", 0.999
        m[c.SLO_OBJECTIVE.name].labels(self.slo_name).set(self.objective)
        self.burn = {w: m[c.SLO_BURN_RATE.name].labels(self.slo_name, w)
                     for w in c.BURN_RATE_WINDOWS}


def run_floor(work: Work, f: Floor, cell: list[float], clock: Callable[[], float]) -> None:
    ep_req, ep_lat, ep_tok, ep_err = f.ep_req, f.ep_lat, f.ep_tok, f.ep_err
    ep_active, ep_done, hub = f.ep_active, f.ep_done, f.hub
    cost, price, tok_p, tok_c = f.cost, f.price, f.tok_prompt, f.tok_completion
    duration, req_ok, req_err, errors = f.duration, f.req_ok, f.req_err, f.errors
    ttft, itl, tpot, tps, active, done = f.ttft, f.itl, f.tpot, f.tps, f.active, f.done
    finished = f.finished
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
            duration[model].observe(x * 1000.0 / 1000.0 if hub else x)
            req_ok[model].inc()
        elif kind == STREAM:
            first_off, rest, end = x
            start = clock()
            active[model].inc()
            if hub:
                ep_req.inc()
                ep_active.inc()
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
            if hub:
                ep_active.dec()
                ep_done.inc()
                ep_lat.observe(now - start)
                ep_tok.inc(prompt + completion)
                duration[model].observe((now - start) * 1000.0 / 1000.0)
                finished[model].inc()
            pin, pout = price[model]
            cost[key][model].inc((prompt * pin + completion * pout) / 1_000_000)
            tok_p[model].inc(prompt)
            tok_c[model].inc(completion)
            req_ok[model].inc()
        else:
            req_err[model].inc()
            errors[z[1]].inc()
            ep_err.inc()
            if hub:
                ep_req.inc()
            duration[model].observe(y * 1000.0 / 1000.0 if hub else y)


def scrape_floor(f: Floor, work_totals: tuple[int, int]) -> bytes:
    total, errs = work_totals  # what the floor would read off its own counters
    for g in f.burn.values():
        g.set(burn_rate(errs, total, f.objective))
    return generate_latest(f.registry)


# --- comparing the two scrapes ---------------------------------------------------------------

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
