#!/usr/bin/env python
"""Error-message cost against message size (issue 14): linear patterns, clipped input.

Why: ``record_error`` is handed ``str(exc)`` of any size. Before issue 14 the normaliser was
quadratic (7 ms at 1k characters, 0.6 s at 10k, 35 s at 100k). Now every pattern starts only at
the start of a run, and messages are clipped to ``MAX_MESSAGE`` characters before any pattern.

Rows (best of ``--reps``, sizes alternated):

  patterns      the credential and normalising patterns on the unclipped text, per size, and
                us per 1k characters: flat when the patterns are linear (what clipping protects
                is then only a constant)
  record_error  ErrorMetricsTracker.record_error with a message of each size: flat, since the
                message is clipped first (target: 1M within 2x of 10k)

    python bench/bench_messages.py
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

from fakeai_metrics import ErrorMetricsTracker
from fakeai_metrics.error_metrics_tracker import _normalize_stored
from fakeai_metrics.keys import scrub_credentials

SIZES = (10_000, 100_000, 1_000_000)
#: runs a failed match used to rescan (the old e-mail pattern on "a@a@…" / "aaaa…"), and text
SHAPES = {"a@ repeated": "a@", "one long word": "a", "prose": "connection reset by peer 42; "}


def best(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    print("patterns on the unclipped text (us per 1k characters; flat = linear)")
    for shape, unit in SHAPES.items():
        texts = {n: (unit * (n // len(unit) + 1))[:n] for n in SIZES}
        cost = {n: best(lambda t=texts[n]: _normalize_stored(scrub_credentials(t)), args.reps)
                for n in SIZES}
        per_k = {n: cost[n] / n * 1e9 for n in SIZES}  # us per 1k chars
        cells = "  ".join(f"{n // 1000:>5}k {per_k[n]:7.2f}" for n in SIZES)
        print(f"  {shape:14} {cells}   1M/10k per char {per_k[SIZES[-1]] / per_k[SIZES[0]]:.2f}")

    print("record_error, whole call (us; clipped first, so flat)")
    tracker = ErrorMetricsTracker()
    cost = {}
    for n in SIZES:
        message = ("a@" * n)[:n]
        cost[n] = best(lambda m=message: tracker.record_error("/v1/chat", 500, "E", m), args.reps)
    cells = "  ".join(f"{n // 1000:>5}k {cost[n] * 1e6:8.1f}" for n in SIZES)
    ratio = cost[SIZES[-1]] / cost[SIZES[0]]
    print(f"  {'a@ repeated':14} {cells}   1M/10k {ratio:.2f} (target <= 2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
