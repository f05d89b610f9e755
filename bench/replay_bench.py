"""Replay benchmarks: prints figures, asserts nothing (not a timed test).

    .venv/bin/python bench/replay_bench.py            # philly, scale and fidelity
    .venv/bin/python bench/replay_bench.py philly     # full Philly trace, each policy, 80x8:H100
    .venv/bin/python bench/replay_bench.py scale      # a synthetic year on a 65,536-GPU hub
    .venv/bin/python bench/replay_bench.py fidelity   # KTH SP2 under easy-backfill vs the log
    .venv/bin/python bench/replay_bench.py philly fidelity   # several parts, in that order
    .venv/bin/python bench/replay_bench.py ratios     # CPU time per policy / ref_fifo.py's, same run

Each replay runs in a fresh interpreter so its peak memory (max RSS) is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRACES = ROOT.parent / "shared" / "traces"
REF_FIFO = ROOT.parent / "shared" / "tools" / "ref_fifo.py"
RATIO_TARGETS = {"fifo": 3.0, "easy-backfill": 4.0, "multifactor": 6.0, "las": 15.0}
POLICIES = ("fifo", "easy-backfill", "multifactor", "las", "srtf")

# A hub-scale synthetic year that queues: ~1M jobs on 8,192 nodes x 8 H200. Sizes and run times
# are larger than Philly's so that the workload fills a 65,536-GPU hub: mean 29.7 GPUs per job,
# mean run time 16,000 s x exp(1.6^2 / 2) = 57,600 s (before the 14-day cap), 114 jobs/h on
# average -> mean offered load ~0.77 of the GPUs. Arrivals follow working hours and working days
# (rate x (1 + 0.3 cos(day) + 0.6 cos(week)): 1.9x the mean on a weekday afternoon, 0.1x on a
# Sunday night), so the offered load (each job's GPUs over [submit, submit + run]) passes 1.0
# in about 1,200 of the year's 8,760 hours (max 1.19, p95 1.07): jobs wait on weekdays and the
# queue drains at weekends. A plain Poisson year at load 0.7 (no cycles) never passes 0.88 and
# almost no job waits, which measures event throughput only.
SCALE_SPEC = dict(
    jobs=1_000_000,
    arrival_rate_per_h=1_000_000 / 8760,
    tenants=40,
    tenant_skew=1.0,
    gpu_sizes=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    gpu_probs=(0.30, 0.06, 0.08, 0.22, 0.10, 0.08, 0.08, 0.04, 0.03, 0.01),
    median_runtime_s=16000.0,
    runtime_sigma=1.6,
    max_runtime_s=14 * 86400.0,
    diurnal=0.3,
    weekly=0.6,
    seed=7,
)


def _worker(kind: str, policy: str) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from steppe.core.cluster_config import load_cluster
    from steppe.twin.readers import load_trace
    from steppe.twin.readers.synthetic import SyntheticSpec, generate_synthetic
    from steppe.twin.replay import replay

    t0 = time.perf_counter()
    if kind == "philly":
        trace = load_trace(f"philly:{TRACES / 'philly' / 'philly.csv'}")
        cluster = load_cluster("80x8:H100")
    else:
        trace = generate_synthetic(SyntheticSpec(**SCALE_SPEC))  # type: ignore[arg-type]
        cluster = load_cluster("8192x8:H200")
    load_s = time.perf_counter() - t0
    cpu0 = time.process_time()
    result = replay(trace, cluster, policy, check_invariants=False)
    replay_cpu_s = time.process_time() - cpu0
    s = result.summary
    print(
        json.dumps(
            {
                "policy": policy,
                "jobs": s["jobs"],
                "load_s": load_s,
                "replay_s": s["wall_s"],
                "replay_cpu_s": replay_cpu_s,
                "jobs_per_s": s["jobs"] / s["wall_s"],
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "mean_jct_h": s["mean_jct_s"] / 3600,
                "p99_jct_h": s["p99_jct_s"] / 3600,
                "mean_wait_h": s["mean_wait_s"] / 3600,
                "p99_wait_h": s["p99_wait_s"] / 3600,
                "waited": s["waited"],
                "utilization": s["utilization"],
                "preemptions": s["preemptions"],
                "cycles": s["cycles"],
                "digest": result.digest,
            }
        )
    )


def _spawn(kind: str, policy: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, policy], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ref_fifo_cpu_s() -> float:
    """CPU seconds of one whole run of ``ref_fifo.py`` on the Philly trace, 640 GPUs."""
    before = _children_cpu_s()
    subprocess.run(
        [sys.executable, str(REF_FIFO), str(TRACES / "philly" / "philly.csv"), "640"], capture_output=True, check=True
    )
    return _children_cpu_s() - before


def ratios() -> None:
    """Each policy's replay CPU time over ``ref_fifo.py``'s, ref runs interleaved (a shared machine drifts)."""
    print("== CPU time / ref_fifo.py's, full Philly on 80x8:H100 (replay only; whole process in brackets) ==")
    refs = [_ref_fifo_cpu_s()]
    for policy, target in RATIO_TARGETS.items():
        before = _children_cpu_s()
        row = _spawn("philly", policy)
        process_s = _children_cpu_s() - before
        refs.append(_ref_fifo_cpu_s())
        ref = (refs[-2] + refs[-1]) / 2
        print(
            f"{policy:>14}: {row['replay_cpu_s'] / ref:5.1f}x  [{process_s / ref:5.1f}x]  target <= {target:g}x   "
            f"replay {row['replay_cpu_s']:.2f} s CPU, ref_fifo {ref:.2f} s, mean JCT {row['mean_jct_h']:.4f} h, "
            f"digest {str(row['digest'])[:12]}"
        )


def _table(rows: list[dict[str, float]]) -> None:
    cols = (
        "policy",
        "jobs",
        "load_s",
        "replay_s",
        "replay_cpu_s",
        "jobs_per_s",
        "peak_rss_mib",
        "mean_jct_h",
        "p99_jct_h",
        "mean_wait_h",
        "waited",
        "utilization",
        "preemptions",
    )
    print(" | ".join(f"{c:>12}" for c in cols))
    for r in rows:
        print(" | ".join(f"{r[c]:>12,.2f}" if isinstance(r[c], float) else f"{r[c]:>12}" for c in cols))


def philly() -> None:
    print("== Full Philly trace (82,247 jobs) on 80x8:H100 (640 GPUs), invariant checks off ==")
    _table([_spawn("philly", p) for p in POLICIES])


def scale() -> None:
    print("== Synthetic year, ~1M jobs, 8192x8:H200 (65,536 GPUs); waited: share of jobs that waited ==")
    rows = [_spawn("scale", p) for p in ("fifo", "easy-backfill")]
    _table(rows)
    for row in rows:  # the workers' JSON lines, every figure
        print(json.dumps(row))


def fidelity() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from steppe.core.cluster_config import load_cluster
    from steppe.twin.readers import load_trace
    from steppe.twin.readers.swf import read_swf_logged_waits
    from steppe.twin.replay import replay

    path = TRACES / "kth-sp2" / "KTH-SP2-1996-2.1-cln.swf"
    trace = load_trace(f"swf:{path}")
    logged = read_swf_logged_waits(path)
    result = replay(trace, load_cluster("100x1:GENERIC"), "easy-backfill", check_invariants=False)
    rows = result.metrics.rows
    sim_wait = np.array([r[8] for r in rows])
    sim_sd = np.array([r[13] for r in rows])
    runs = {j.job_id: min(j.runtime_s, j.walltime_s) for j in trace.jobs}
    log_wait = np.array([logged[r[0]] for r in rows])
    log_sd = np.array([max((logged[r[0]] + runs[r[0]]) / max(runs[r[0]], 10.0), 1.0) for r in rows])
    print("== KTH SP2 (100 nodes) under easy-backfill: simulated vs logged ==")
    print(f"jobs {len(rows):,}  replay {result.summary['wall_s']:.2f} s")
    print(f"mean wait          simulated {sim_wait.mean() / 3600:8.2f} h   logged {log_wait.mean() / 3600:8.2f} h")
    print(
        f"median wait        simulated {np.median(sim_wait) / 60:8.1f} min logged {np.median(log_wait) / 60:8.1f} min"
    )
    print(f"mean bounded sd    simulated {sim_sd.mean():8.2f}     logged {log_sd.mean():8.2f}")
    print(f"utilization        simulated {result.summary['utilization']:.3f}")


PARTS = {"philly": philly, "scale": scale, "fidelity": fidelity, "ratios": ratios}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="replay_bench.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = "philly, scale, fidelity"
    ap.add_argument(
        "parts", nargs="*", metavar="PART", help=f"what to run, in order: {', '.join(PARTS)} (default: {default})"
    )
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "POLICY"), help=argparse.SUPPRESS)  # one replay, in a child
    args = ap.parse_args(argv)
    if args.worker is not None:
        kind, policy = args.worker
        if kind not in ("philly", "scale") or policy not in POLICIES:
            ap.error(f"--worker takes philly|scale and one of {', '.join(POLICIES)}")
        _worker(kind, policy)
        return
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        ap.error(f"unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    for part in args.parts or ["philly", "scale", "fidelity"]:
        PARTS[part]()


if __name__ == "__main__":
    main()
