"""Power benchmark: the full Philly trace on an H200 fleet under a facility cap. Prints figures only.

    .venv/bin/python bench/power_bench.py [--policy easy-backfill] [--nodes 80] [--site astana]

1. a replay without power (the plain twin) and one that only meters energy (no cap): their wall
   times give the cost of the power features;
2. the cap is set so the uncapped run's peak facility power is 1.4x the cap;
3. the same replay under that cap, enforced by holding jobs only, then with per-job GPU capping.
The replay starts on 1 October 2026 at the site, so the winter-evening cap windows (Nov-Feb,
17-21 h local, 70 % of the base cap) fall inside it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from steppe.core.cluster_config import load_cluster  # noqa: E402
from steppe.twin.power import build_power  # noqa: E402
from steppe.twin.readers import load_trace  # noqa: E402
from steppe.twin.replay import replay  # noqa: E402

START = "2026-10-01T00:00"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policy", default="easy-backfill")
    ap.add_argument("--nodes", type=int, default=120)
    ap.add_argument("--site", default="astana")
    ap.add_argument("--ratio", type=float, default=1.4)
    args = ap.parse_args()
    trace = load_trace(f"philly:{ROOT.parent / 'shared' / 'traces' / 'philly' / 'philly.csv'}")
    cluster = load_cluster(f"{args.nodes}x8:H200")
    print(f"== Philly ({len(trace.jobs):,} jobs) on {cluster.name} at {args.site}, policy {args.policy} ==")

    t0 = time.perf_counter()
    replay(trace, cluster, args.policy, check_invariants=False)
    plain_s = time.perf_counter() - t0
    metered = replay(trace, cluster, args.policy, check_invariants=False,
                     power=build_power(cluster, args.site, enforce=False, start=START))
    peak = metered.summary["peak_facility_power_w"]
    cap_w = peak / args.ratio
    metered_s = metered.summary["wall_s"]
    print(f"plain replay {plain_s:.2f} s; with energy metering {metered_s:.2f} s (x{metered_s / plain_s:.2f}); "
          f"uncapped peak {peak / 1e3:,.0f} kW -> cap {cap_w / 1e3:,.0f} kW")
    runs = {"no cap": metered}
    for label, capping in (("cap, hold jobs", False), ("cap, per-job capping", True)):
        power = build_power(cluster, args.site, power_cap_w=cap_w, capping=capping, start=START)
        runs[label] = replay(trace, cluster, args.policy, check_invariants=False, power=power)
    cols = ("mean JCT h", "p99 JCT h", "mean wait h", "makespan d", "IT MWh", "facility MWh", "t CO2e",
            "M KZT", "k USD", "peak kW", "h at cap", "capped jobs", "wall s", "x plain")
    print(f"{'run':>22} | " + " | ".join(f"{c:>11}" for c in cols))
    for label, r in runs.items():
        s = r.summary
        vals = (s["mean_jct_s"] / 3600, s["p99_jct_s"] / 3600, s["mean_wait_s"] / 3600, s["makespan_s"] / 86400,
                s["it_energy_kwh"] / 1e3, s["facility_energy_kwh"] / 1e3, s["carbon_kg"] / 1e3, s["cost_kzt"] / 1e6,
                s["cost_usd"] / 1e3, s["peak_facility_power_w"] / 1e3, s["hours_at_cap"], s["capped_jobs"],
                s["wall_s"], s["wall_s"] / plain_s)
        print(f"{label:>22} | " + " | ".join(f"{v:>11,.2f}" for v in vals))
    hold, cap = runs["cap, hold jobs"].summary, runs["cap, per-job capping"].summary
    gain = 100 * (1 - cap["mean_jct_s"] / hold["mean_jct_s"])
    print(f"per-job capping vs holding at the same cap: mean JCT {gain:+.1f} % shorter; "
          f"cap violations {hold['power_cap_violations']} / {cap['power_cap_violations']}")


if __name__ == "__main__":
    main()
