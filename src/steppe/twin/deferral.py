"""Marking a trace's jobs deferrable, and what deferral saved against running at once.

Traces log no flexibility, so a seeded share of jobs is marked deferrable with a deadline
``submit + max(deadline, walltime)``. A replay is then run twice, with ``run-now`` and with
``lowest-window`` (``steppe.scheduling.deferral``), and the carbon and cost of the deferrable
jobs compared. When the grid is nearly flat (Kazakhstan's is: coal and gas baseload, about
1.6 % solar), the report says the savings are small and why.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from steppe.twin.replay import ReplayResult
from steppe.twin.trace import Trace

FLAT_SPREAD = 0.10  # max/min - 1 of the signal below which the grid counts as nearly flat


def mark_deferrable(trace: Trace, fraction: float, deadline_s: float, seed: int = 0) -> Trace:
    """A copy of ``trace`` with about ``fraction`` of its jobs deferrable (seeded)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"deferrable fraction must be within 0-1, got {fraction}")
    if deadline_s <= 0:
        raise ValueError(f"deadline must be positive, got {deadline_s} s")
    rng = random.Random(seed)
    jobs = [
        replace(j, deferrable=True, deadline_s=j.submit_s + max(deadline_s, j.walltime_s))
        if rng.random() < fraction
        else j
        for j in trace.jobs
    ]
    marked = sum(j.deferrable for j in jobs)
    out = Trace(trace.source, jobs, list(trace.notes), trace.dropped.copy(), trace.adjusted.copy(), trace.tenants)
    out.notes.append(
        f"{marked:,} jobs ({fraction:.0%} drawn, seed {seed}) marked deferrable, deadline "
        f"submit + max({deadline_s / 3600:g} h, walltime)"
    )
    out.adjusted["marked deferrable"] = marked
    return out


def deferral_savings(
    baseline: ReplayResult, deferred: ReplayResult, spread: tuple[float, float], signal: str
) -> dict[str, Any]:
    """Carbon and cost of the deferrable jobs, run-now vs lowest-window, with an honest verdict."""
    if deferred.trace is None:
        raise ValueError("deferral savings need the replayed trace (ReplayResult.trace)")
    finished = set(deferred.metrics.job_ids().tolist())
    ids = {j.job_id for j in deferred.trace.jobs if j.deferrable and j.job_id in finished}
    if baseline.energy is None or deferred.energy is None:
        raise ValueError("deferral savings need replays with a site (energy metering)")

    def total(result: ReplayResult, key: str) -> float:
        assert result.energy is not None
        return sum(result.energy.per_job[j][key] for j in ids if j in result.energy.per_job)

    out: dict[str, Any] = {"deferrable_jobs": len(ids), "signal": signal}
    for key in ("carbon_kg", "cost_kzt"):
        before, after = total(baseline, key), total(deferred, key)
        out[f"{key}_run_now"] = before
        out[f"{key}_lowest_window"] = after
        out[f"{key}_saved"] = before - after
        out[f"{key}_saved_pct"] = 100.0 * (before - after) / before if before else 0.0
    lo, hi = spread
    out["signal_min"], out["signal_max"] = lo, hi
    flat = lo > 0 and hi / lo - 1.0 < FLAT_SPREAD
    saved = out["carbon_kg_saved_pct"] if signal == "carbon" else out["cost_kzt_saved_pct"]
    if flat:
        out["verdict"] = (
            f"The grid is nearly flat here: the {signal} signal spans only {lo:.0f}-{hi:.0f} per kWh "
            f"({100 * (hi / lo - 1):.1f} %) over the replay, so shifting jobs in time saved just {saved:.2f} %. "
            "Cleaner supply or moving work to another region are the larger levers."
        )
    else:
        out["verdict"] = f"Deferring to the lowest window saved {saved:.2f} % of the deferrable jobs' {signal}."
    out["mean_wait_s_run_now"] = baseline.summary["mean_wait_s"]
    out["mean_wait_s_lowest_window"] = deferred.summary["mean_wait_s"]
    return out
