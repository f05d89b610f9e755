"""Sweep benchmark: 24 replays of the first 20,000 Philly jobs, on 1 worker, 2 workers and Ray.

    .venv/bin/python bench/sweep_bench.py [--limit 20000] [--workers 2] [--no-ray]

The sweep is 3 clusters x 4 policies x 2 facility caps (``--clusters``, ``--policies``,
``--power-caps``), invariant checks off as in the other benchmarks. It runs three times over
the same parsed trace, and prints the wall time of each run:

1. one worker: every replay in this process, one after another (the baseline);
2. ``--workers`` spawned worker processes (``ProcessBackend``), each given the trace once: the
   speed-up over (1) (the target on a 2-core machine: at least 1.8x);
3. the same sweep as Ray tasks on a local Ray cluster with ``--workers`` CPUs started here (its
   start is timed apart): its overhead per replay against (2).

Each run's rows are checked to equal the first's (all but ``wall_s``). A shared machine is
noisy: the figures of one run are comparable with each other, less with another day's. The CPU
seconds of runs (1) and (2) (this process and its worker processes) tell the work the pool adds
from what other users' load takes: if they match, the workers did no more work than one
process, and a speed-up short of the worker count is time the machine gave to others.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from steppe.twin.sweep_config import load_checked_trace, sweep_from_inputs  # noqa: E402
from steppe.twin.sweep_run import Backend, InProcessBackend, ProcessBackend, RayBackend, run_sweep  # noqa: E402

PHILLY = ROOT.parent / "shared" / "traces" / "philly" / "philly.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description="24 Philly replays on 1 worker, N workers and Ray; prints the speed-up.")
    ap.add_argument("--trace", default=f"philly:{PHILLY}", help="trace spec (default: the Philly trace)")
    ap.add_argument("--limit", type=int, default=20000, help="first N jobs of the trace (default 20000)")
    ap.add_argument("--clusters", default="100x8:H200,120x8:H200,140x8:H200")
    ap.add_argument("--policies", default="fifo,easy-backfill,multifactor,las")
    ap.add_argument("--power-caps", default="none,1MW")
    ap.add_argument("--workers", type=int, default=2, help="worker processes, and the local Ray cluster's CPUs")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray run")
    args = ap.parse_args()
    inputs = {
        "trace": args.trace,
        "limit": args.limit,
        "clusters": args.clusters,
        "policies": args.policies,
        "power_caps": args.power_caps,
        "check_invariants": False,
    }
    sweep = sweep_from_inputs(inputs)
    n = len(sweep.points())
    t0 = time.perf_counter()
    trace = load_checked_trace(sweep)
    read_s = time.perf_counter() - t0
    print(f"== {n} replays of {len(trace.jobs):,} jobs ({trace.source}); trace read in {read_s:.2f} s")
    print(f"   {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start (a shared machine is noisy)")

    def timed(label: str, backend: Backend) -> tuple[float, list[dict[str, Any]]]:
        t, cpu = time.perf_counter(), cpu_s()
        rows = run_sweep(sweep, trace, backend)
        wall, used = time.perf_counter() - t, cpu_s() - cpu
        busy = sum(row["wall_s"] for row in rows)
        cpu_text = f"CPU {used:7.1f} s" if not isinstance(backend, RayBackend) else "CPU in Ray's workers"
        print(f"{label:>24}: {wall:7.1f} s wall, {cpu_text}, replays' own wall time {busy:7.1f} s")
        return wall, rows

    one_s, baseline = timed("1 worker (this process)", InProcessBackend())
    many_s, rows = timed(f"{args.workers} worker processes", ProcessBackend(args.workers))
    same(baseline, rows, "processes")
    speed_up = one_s / many_s
    print(f"   speed-up {speed_up:.2f}x on {args.workers} workers (efficiency {speed_up / args.workers:.0%})")
    if args.no_ray:
        return
    import ray

    t = time.perf_counter()
    ray.init(address="local", num_cpus=args.workers, include_dashboard=False, logging_level=logging.WARNING)
    print(f"   local Ray cluster started in {time.perf_counter() - t:.1f} s")
    try:
        ray_s, rows = timed(f"Ray, {args.workers} CPUs", RayBackend("local", args.workers))
        same(baseline, rows, "Ray")
    finally:
        ray.shutdown()
    print(f"   Ray's overhead against {args.workers} worker processes: {(ray_s - many_s) / n:+.2f} s per replay "
          f"({ray_s / many_s:.2f}x the wall time); speed-up over 1 worker {one_s / ray_s:.2f}x")  # fmt: skip


def cpu_s() -> float:
    """CPU seconds of this process and its ended children (the pool's workers, once it closed)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def same(baseline: list[dict[str, Any]], rows: list[dict[str, Any]], label: str) -> None:
    strip = [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]
    if strip != [{k: v for k, v in row.items() if k != "wall_s"} for row in baseline]:
        raise SystemExit(f"{label}: the rows differ from one worker's")
    print(f"   {label}: the same {len(rows)} rows as one worker (all but wall_s), in the sweep's order")


if __name__ == "__main__":
    main()
