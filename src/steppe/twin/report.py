"""Write a replay's results: per-job CSV, summary JSON, per-tenant table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from steppe.twin.replay import ReplayResult
from steppe.twin.trace import Trace

ENERGY_KEYS = (
    "it_energy_kwh",
    "facility_energy_kwh",
    "idle_it_energy_kwh",
    "peak_facility_power_w",
    "peak_it_power_w",
    "power_cap_w",
    "min_power_cap_w",
    "hours_at_cap",
    "power_cap_violations",
    "carbon_kg",
    "cost_kzt",
    "cost_usd",
    "mean_pue",
    "capped_jobs",
    "recaps",
    "site",
    "power_scheduling",
)
SCRIPT_KEYS = ("jobs", "mean_jct_s", "p99_jct_s", "mean_wait_s", "utilization", "makespan_s", "jain_index", "wall_s")
SCRIPT_VIEW_KEYS = (
    *SCRIPT_KEYS,
    *ENERGY_KEYS,
    "deferral",
    "median_jct_s",
    "p95_jct_s",
    "mean_bounded_slowdown",
    "preemptions",
    "rejected",
    "unfinished",
    "policy",
    "oracle",
    "cluster",
    "gpus",
    "trace",
    "event_digest",
)
"""What ``steppe simulate --json`` prints of a summary (with ``trace_provenance`` beside it)."""


def script_view(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary's keys scripts rely on (``SCRIPT_VIEW_KEYS``), those it has."""
    return {k: summary[k] for k in SCRIPT_VIEW_KEYS if k in summary}


def trace_provenance(trace: Trace) -> dict[str, Any]:
    """What the reader did to the trace: notes, dropped and adjusted rows (never silent)."""
    return {
        "source": trace.source,
        "jobs": len(trace.jobs),
        "notes": list(trace.notes),
        "dropped": dict(trace.dropped),
        "adjusted": dict(trace.adjusted),
    }


def full_summary(result: ReplayResult, trace: Trace) -> dict[str, Any]:
    """The summary plus per-tenant figures and the trace's provenance."""
    out = dict(result.summary)
    out["tenants"] = result.metrics.tenants()
    out["rejected_by_reason"] = dict(result.rejected)
    out["trace_provenance"] = trace_provenance(trace)
    if result.energy is not None:
        out["tenant_energy"] = result.energy.tenants()
    return out


def write_results(result: ReplayResult, trace: Trace, out_dir: Path) -> list[Path]:
    """``<policy>-jobs.csv`` and ``<policy>-summary.json`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs_path = out_dir / f"{result.policy}-jobs.csv"
    result.metrics.write_jobs_csv(jobs_path)
    summary_path = out_dir / f"{result.policy}-summary.json"
    summary_path.write_text(json.dumps(full_summary(result, trace), indent=2, sort_keys=True) + "\n")
    return [jobs_path, summary_path]
