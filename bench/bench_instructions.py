#!/usr/bin/env python
"""Instructions per request of the seed API and the floor, counted by valgrind (callgrind).

Why: on a shared machine the wall-clock ratio of bench_core.py moves by 0.1-0.2x from run to
run; an instruction count does not move with the load (the same run gives the same count to
within ~0.5 %), so it shows what a change to a hot path did. It is a guide, not the target:
time also depends on cache misses and mispredicted branches, which ``--sim`` estimates
(callgrind's cache and branch simulation, slower), and the target stays bench_core.py's
wall-clock ratio.

Each side runs in its own ``valgrind --tool=callgrind`` process: ``--warm`` requests of
workload.py's mix, then ``--requests`` more; a second process runs the warm-up alone, and the
difference of the two totals, divided by ``--requests``, is the cost of one request of the mix
(interpreter start-up, imports and warm-up cancel out). PYTHONHASHSEED is fixed so both
processes hash alike. The four processes run two at a time.

    python bench/bench_instructions.py              # seed API and floor, 3000 requests each
    python bench/bench_instructions.py --sim        # also cache misses, mispredicts, cycles
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
SIDES = ("seed", "floor")
#: callgrind's simulated events, and the cycles each costs in the estimate (valgrind's manual:
#: about 10 for a first-level miss, 100 for a last-level one; ~15 for a mispredicted branch)
CYCLES = {"Ir": 1, "I1mr": 10, "D1mr": 10, "D1mw": 10, "ILmr": 100, "DLmr": 100, "DLmw": 100,
          "Bcm": 15, "Bim": 15}


def child(side: str, warm: int, n: int) -> None:
    """Run ``warm`` then ``n`` requests of the mix on one side (under valgrind)."""
    import gc

    import prometheus_client

    import workload as w
    prometheus_client.disable_created_metrics()
    work = w.make_workload(warm + n)
    cell, clock = w.make_clock("virtual")
    if side == "floor":
        f = w.Floor()
        def run(part: w.Work) -> None:
            w.run_floor(part, f, cell, clock)
    else:
        p = w.build_seed(clock)
        def run(part: w.Work) -> None:
            w.run_seed(part, p, cell)
    run(work[:warm])
    gc.collect()
    if n:
        run(work[warm:])


def events(side: str, warm: int, n: int, sim: bool) -> dict[str, int]:
    """callgrind's event totals of one child process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               *(["--cache-sim=yes", "--branch-sim=yes"] if sim else []),
               sys.executable, os.path.abspath(__file__), "--child", side, str(warm), str(n)]
        done = subprocess.run(cmd, capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": "0"})
        if done.returncode != 0:
            raise SystemExit(f"valgrind failed ({done.returncode}):\n{done.stderr[-2000:]}")
        names: list[str] = []
        totals: list[int] = []
        with open(out) as fh:
            for line in fh:
                if line.startswith("events:"):
                    names = line.split()[1:]
                elif line.startswith(("summary:", "totals:")):
                    totals = [int(x) for x in line.split()[1:]]
        return dict(zip(names, totals))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--warm", type=int, default=1000)
    ap.add_argument("--sim", action="store_true",
                    help="cache and branch simulation: misses, mispredicts, estimated cycles")
    ap.add_argument("--child", nargs=3, metavar=("SIDE", "WARM", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 2
    n = args.requests
    jobs = [(side, count) for side in SIDES for count in (0, n)]
    with ThreadPoolExecutor(2) as pool:
        found = dict(zip(jobs, pool.map(lambda j: events(j[0], args.warm, j[1], args.sim),
                                        jobs)))
    per: dict[str, dict[str, float]] = {}
    for side in SIDES:
        full, warm = found[(side, n)], found[(side, 0)]
        per[side] = {k: (full[k] - warm[k]) / n for k in full}
        if args.sim:
            per[side]["cycles"] = sum(per[side][k] * c for k, c in CYCLES.items())
    print(f"callgrind, {n} requests of the bench mix after {args.warm}, per request:")
    shown = ["Ir"] + (["I1mr", "D1mr", "Bcm", "Bim", "cycles"] if args.sim else [])
    print(f"{'side':<6} | " + " | ".join(f"{k:>9}" for k in shown))
    for side in SIDES:
        print(f"{side:<6} | " + " | ".join(f"{per[side][k]:9.0f}" for k in shown))
    print("seed / floor: " + ", ".join(f"{k} {per['seed'][k] / per['floor'][k]:.3f}"
                                       for k in shown))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    sys.exit(main())
