"""Scrape cost as series grow, and prometheus_client's multiprocess mode with several workers.

Scrape scaling: one plain request (the seed API's plain path) for every (model, API key) pair of
``models`` x ``keys``, so ``fakeai_cost_usd_total{api_key, model}`` has models x keys series; the
floor records the same requests with prometheus_client. Both are scraped with ``generate_latest``.

Multiprocess: ``workers`` subprocesses each run the seed workload (a different seed each) with
``PROMETHEUS_MULTIPROC_DIR`` set, so the trackers write through to prometheus_client's files; then
this process scrapes them with ``scrape_registry()`` (``MergingCollector``) and, for context, with
prometheus_client's ``MultiProcessCollector``; both must give the same bytes. The reference is one
ordinary process that ran all those requests itself, scraped with ``generate_latest``: the two
must hold the same series and values (sums to float rounding, since each worker sums its own).
Recording in that mode is timed one worker at a time against bare prometheus_client, and one write
into the files (a mirror's against a bare child's) on its own.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

import workload as w
from fakeai_metrics import catalog as c, multiprocess
from fakeai_metrics.multiprocess import mirrors


def best_time(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    """Shortest of ``reps`` calls in seconds, and the last call's result."""
    best, out = math.inf, None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def pair_workload(models: tuple[str, ...], keys: tuple[str, ...]) -> w.Work:
    """One plain request per (model, key) pair, 1 ms apart."""
    work: w.Work = []
    for i, model in enumerate(models):
        for j, key in enumerate(keys):
            lat_ms = 50.0 + (i * 7 + j * 13) % 900
            work.append((w.PLAIN, len(work) * w.ARRIVAL_S, key, model, 100 + j, 20 + i,
                         lat_ms / 1000.0, lat_ms, 120 + i + j))
    return work


def series_names(n_models: int, n_keys: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    # "gpt-4o-1000" resolves to gpt-4o's price (a version suffix), so no model is unpriced
    return (tuple(f"gpt-4o-{1000 + i}" for i in range(n_models)),
            tuple(f"sk-scale-{j:05d}-0123456789" for j in range(n_keys)))


def scrape_scaling(n_models: int, key_counts: list[int], reps: int) -> list[dict[str, Any]]:
    """Scrape time and size of project and floor at n_models x each key count."""
    rows = []
    for n_keys in key_counts:
        models, keys = series_names(n_models, n_keys)
        work = pair_workload(models, keys)
        cell, clock = w.make_clock("virtual")
        project = w.build_seed(clock)
        w.run_seed(work, project, cell)
        floor = w.Floor(models=models, keys=keys, lazy=True)
        w.run_floor(work, floor, cell, clock)
        p_s, p_text = best_time(lambda: generate_latest(project["registry"]), reps)
        f_s, f_text = best_time(lambda: w.scrape_floor(floor, w.totals(work)), reps)
        lines = sum(1 for ln in p_text.splitlines() if ln and not ln.startswith(b"#"))
        diffs = w.compare(p_text.decode(), f_text.decode(), "virtual")
        rows.append({"cost_series": n_models * n_keys, "samples": lines,
                     "project_ms": p_s * 1e3, "floor_ms": f_s * 1e3,
                     "project_bytes": len(p_text), "floor_bytes": len(f_text), "diffs": diffs})
    return rows


# --- multiprocess ----------------------------------------------------------------------------

def mp_worker(n: int, seed: int) -> None:
    """Runs in a worker process with PROMETHEUS_MULTIPROC_DIR set: the seed workload, then exit."""
    assert multiprocess.enabled(), "PROMETHEUS_MULTIPROC_DIR not set"
    work = w.make_workload(n, seed)
    cell, clock = w.make_clock("virtual")
    project = w.build_seed(clock)
    assert project["cost"].multiprocess
    t0 = time.perf_counter()
    w.run_seed(work, project, cell)
    print(f"{(time.perf_counter() - t0) / n * 1e6:.3f}")  # us per request, for the report


def mp_floor_worker(n: int, seed: int) -> None:
    """``mp_worker`` for the floor: the same requests as bare prometheus_client metrics, which
    in multiprocess mode write every value to their memory-mapped files."""
    assert multiprocess.enabled(), "PROMETHEUS_MULTIPROC_DIR not set"
    work = w.make_workload(n, seed)
    cell, clock = w.make_clock("virtual")
    floor = w.Floor()
    t0 = time.perf_counter()
    w.run_floor(work, floor, cell, clock)
    print(f"{(time.perf_counter() - t0) / n * 1e6:.3f}")


@contextlib.contextmanager
def _multiprocess_values(path: str) -> Iterator[None]:
    """prometheus_client metrics made inside write memory-mapped files in ``path``, as in a
    worker started with ``PROMETHEUS_MULTIPROC_DIR`` (its default process identifier)."""
    old_env, old_class = os.environ.get("PROMETHEUS_MULTIPROC_DIR"), values.ValueClass
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    values.ValueClass = values.MultiProcessValue()
    try:
        yield
    finally:
        values.ValueClass = old_class
        if old_env is None:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = old_env


def mirror_write_us(reps: int, n: int = 50_000) -> dict[str, float]:
    """Best us per write into prometheus_client's files: an inter-token gap as the streaming hot
    path writes it (``mirror_of(key).observe``), a cost increment through ``MirroredCounter.inc``
    (its in-process value too), each against a bare prometheus_client child's."""
    with tempfile.TemporaryDirectory(prefix="fakeai-bench-mpw-") as tmp, \
            _multiprocess_values(tmp):
        itl = mirrors.MirroredHistogram(c.ITL, "bench")
        cost = mirrors.MirroredCounter(c.COST, "bench")
        key = (w.API_KEYS[0], w.MODELS[0])
        calls = {"mirror_observe": itl.mirror_of((w.MODELS[0],)).observe,
                 "child_observe": Histogram("floor_itl", c.ITL.help, c.ITL.labels, registry=None,
                                            buckets=c.ITL.buckets).labels(w.MODELS[0]).observe,
                 "mirror_inc": lambda x: cost.inc(key, x),
                 "child_inc": Counter("floor_cost", c.COST.help, c.COST.labels,
                                      registry=None).labels(*key).inc}
        out = {}
        for name, call in calls.items():
            best = math.inf
            for _ in range(reps):
                t0 = time.perf_counter()
                for _ in range(n):
                    call(0.02)
                best = min(best, time.perf_counter() - t0)
            out[name] = best / n * 1e6
    return out


def multiprocess_recording(script: str, n: int, seed: int, reps: int) -> dict[str, float]:
    """us per request recording in multiprocess mode, the project's trackers vs bare
    prometheus_client (the floor), one worker process at a time, sides alternated; best and
    median of ``reps`` rounds."""
    times: dict[str, list[float]] = {"project": [], "floor": []}
    flags = {"project": "--mp-worker", "floor": "--mp-floor-worker"}
    for rep in range(reps):
        for side in (("project", "floor") if rep % 2 == 0 else ("floor", "project")):
            with tempfile.TemporaryDirectory(prefix="fakeai-bench-mprec-") as tmp:
                out = subprocess.run([sys.executable, script, flags[side], str(n), "--seed",
                                      str(seed)], env={**os.environ,
                                                       "PROMETHEUS_MULTIPROC_DIR": tmp},
                                     check=True, capture_output=True, text=True)
            times[side].append(float(out.stdout.strip().splitlines()[-1]))
    return {f"{side}_{stat}": fn(ts) for side, ts in times.items()
            for stat, fn in (("best", min), ("median", statistics.median))}


def multiprocess_scrape(script: str, workers: int, n_per_worker: int, seed: int,
                        reps: int) -> dict[str, Any]:
    """Scrape time of ``workers`` workers' files vs one ordinary process holding all requests
    (and, for context, one worker in multiprocess mode holding them all)."""
    mp_s, mp_text, files, record_us, pc_s = _scrape_workers(script, [n_per_worker] * workers,
                                                            seed, reps)
    one_s, _, _, _, _ = _scrape_workers(script, [n_per_worker * workers], seed, reps)
    cell, clock = w.make_clock("virtual")
    single = w.build_seed(clock)
    for i in range(workers):
        w.run_seed(w.make_workload(n_per_worker, seed + i), single, cell)
    sp_s, sp_text = best_time(lambda: generate_latest(single["registry"]), reps)
    # the burn rate is per-process state, not exported in this mode (multiprocess/__init__.py)
    diffs = [d for d in w.compare(mp_text.decode(), sp_text.decode(), "virtual")
             if c.SLO_BURN_RATE.full_name() not in d]
    return {"workers": workers, "requests": workers * n_per_worker, "files": files,
            "mp_ms": mp_s * 1e3, "mp_bytes": len(mp_text), "diffs": diffs,
            "mp_one_ms": one_s * 1e3, "mp_prometheus_client_ms": pc_s * 1e3,
            "single_ms": sp_s * 1e3, "single_bytes": len(sp_text), "mp_record_us": record_us}


def _scrape_workers(script: str, sizes: list[int], seed: int, reps: int
                    ) -> tuple[float, bytes, int, float, float]:
    """One worker process per size, then a multiprocess scrape of their files: (best seconds,
    the exposition, files, mean us/request recording in a worker, best seconds of
    prometheus_client's ``MultiProcessCollector`` on the same files)."""
    with tempfile.TemporaryDirectory(prefix="fakeai-bench-mp-") as tmp:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": tmp}
        procs = [subprocess.Popen([sys.executable, script, "--mp-worker", str(n),
                                   "--seed", str(seed + i)], env=env, stdout=subprocess.PIPE,
                                  text=True) for i, n in enumerate(sizes)]
        record_us = []
        for p in procs:
            out, _ = p.communicate(timeout=600)
            if p.returncode != 0:
                raise RuntimeError(f"multiprocess worker failed with exit code {p.returncode}")
            record_us.append(float(out.strip().splitlines()[-1]))
        old = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tmp
        try:
            registry = multiprocess.scrape_registry()
            reference = CollectorRegistry()
            MultiProcessCollector(reference)
            pc_s, pc_text = best_time(lambda: generate_latest(reference), reps)
            mp_s, mp_text = best_time(lambda: generate_latest(registry), reps)
            if mp_text != pc_text:
                raise RuntimeError("MergingCollector and MultiProcessCollector disagree")
        finally:
            if old is None:
                del os.environ["PROMETHEUS_MULTIPROC_DIR"]
            else:
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = old
        files = len(os.listdir(tmp))
    return mp_s, mp_text, files, sum(record_us) / len(record_us), pc_s
