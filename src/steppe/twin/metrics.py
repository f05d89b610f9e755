"""Replay metrics, collected by listening to the state's events.

Per job: wait (first start - submit), job completion time (JCT, end - submit), bounded
slowdown ``max(JCT / max(run, 10 s), 1)`` (Feitelson's threshold of 10 s keeps very short jobs
from dominating). Hub-wide: JCT mean/median/p95/p99, makespan (first submit to last end),
GPU utilization (busy GPU-seconds / (GPUs x makespan)) and its series over time, per-tenant
GPU-hours and share (from the meter's usage records, ``steppe.metering``, read from its sink),
and Jain's fairness index across tenants of their mean bounded
slowdown, ``J = (sum x)^2 / (n sum x^2)``: 1 when every tenant's jobs are slowed alike, 1/n
when one tenant bears all the waiting.

>>> round(jain_index([1.0, 1.0, 1.0]), 3), round(jain_index([3.0, 0.0, 0.0]), 3)
(1.0, 0.333)
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steppe.core.cluster import Cluster
from steppe.core.job import TERMINAL_STATES
from steppe.core.records import JobRecord
from steppe.metering import MemorySink

SLOWDOWN_THRESHOLD_S = 10.0
JOB_COLUMNS = (
    "job_id",
    "tenant",
    "project",
    "gpus",
    "gpu_type",
    "submit_s",
    "start_s",
    "end_s",
    "wait_s",
    "jct_s",
    "run_s",
    "state",
    "preemptions",
    "bounded_slowdown",
)


def jain_index(values: Sequence[float]) -> float:
    """Jain's fairness index of non-negative values (1.0 for an empty or all-zero list)."""
    arr = np.asarray(values, dtype=float)
    denom = len(arr) * float(np.sum(arr * arr))
    return float(np.sum(arr)) ** 2 / denom if denom > 0 else 1.0


class MetricsCollector:
    """A state listener that records what the summary and plots need."""

    def __init__(self, cluster: Cluster, usage: MemorySink | None = None) -> None:
        self.cluster = cluster
        self.usage = usage if usage is not None else MemorySink()  # the meter's records: GPU-seconds per tenant
        self.rows: list[tuple[Any, ...]] = []
        self.busy = 0
        self.busy_times: list[float] = []
        self.busy_values: list[int] = []
        self.first_submit: float | None = None
        self.preemptions = 0

    def on_submit(self, rec: JobRecord, now: float) -> None:
        if self.first_submit is None:
            self.first_submit = now

    def on_start(self, rec: JobRecord, now: float) -> None:
        self.busy += rec.gpus
        self.busy_times.append(now)
        self.busy_values.append(self.busy)

    def on_stop(self, rec: JobRecord, now: float) -> None:
        if rec.allocation:
            self.busy -= rec.gpus
            self.busy_times.append(now)
            self.busy_values.append(self.busy)
        if rec.state not in TERMINAL_STATES:
            self.preemptions += 1
            return
        spec = rec.spec
        start = rec.first_start_s if rec.first_start_s is not None else now
        jct = now - spec.submit_s
        run = rec.executed_s
        slowdown = max(jct / max(run, SLOWDOWN_THRESHOLD_S), 1.0)
        self.rows.append(
            (
                spec.job_id,
                spec.tenant,
                spec.project,
                spec.gpus,
                rec.gpu_type,
                spec.submit_s,
                start,
                now,
                start - spec.submit_s,
                jct,
                run,
                rec.state.value,
                rec.preemptions,
                slowdown,
            )
        )

    # -- results -----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Hub-wide figures (times in seconds)."""
        n = len(self.rows)
        if n == 0:
            return {"jobs": 0}
        cols = list(zip(*self.rows, strict=True))
        jct = np.asarray(cols[9], dtype=float)
        wait = np.asarray(cols[8], dtype=float)
        slow = np.asarray(cols[13], dtype=float)
        ends = np.asarray(cols[7], dtype=float)
        first = self.first_submit or 0.0
        makespan = float(ends.max() - first)
        busy_gpu_s = float(sum(self.usage.tenant_gpu_s.values()))
        total = self.cluster.total_gpus
        states = Counter(cols[11])
        return {
            "jobs": n,
            "mean_jct_s": float(jct.mean()),
            "median_jct_s": float(np.median(jct)),
            "p95_jct_s": float(np.percentile(jct, 95)),
            "p99_jct_s": float(np.percentile(jct, 99)),
            "mean_wait_s": float(wait.mean()),
            "p99_wait_s": float(np.percentile(wait, 99)),
            "mean_bounded_slowdown": float(slow.mean()),
            "utilization": busy_gpu_s / (total * makespan) if makespan > 0 else 0.0,
            "makespan_s": makespan,
            "gpu_hours": busy_gpu_s / 3600.0,
            "preemptions": self.preemptions,
            "states": dict(sorted(states.items())),
            "jain_index": jain_index(list(self.tenant_slowdowns().values())),
        }

    def tenant_slowdowns(self) -> dict[str, float]:
        sums: defaultdict[str, float] = defaultdict(float)
        counts: Counter[str] = Counter()
        for row in self.rows:
            sums[row[1]] += row[13]
            counts[row[1]] += 1
        return {t: sums[t] / counts[t] for t in sorted(counts)}

    def tenants(self) -> list[dict[str, Any]]:
        """Per-tenant jobs, GPU-hours, share of all GPU-hours, mean wait and slowdown."""
        gpu_s = self.usage.tenant_gpu_s
        total = sum(gpu_s.values()) or 1.0
        waits: defaultdict[str, float] = defaultdict(float)
        counts: Counter[str] = Counter()
        for row in self.rows:
            waits[row[1]] += row[8]
            counts[row[1]] += 1
        slowdowns = self.tenant_slowdowns()
        return [
            {
                "tenant": t,
                "jobs": counts[t],
                "gpu_hours": gpu_s.get(t, 0.0) / 3600.0,
                "share": gpu_s.get(t, 0.0) / total,
                "weight": self.cluster.tenant(t).weight,
                "mean_wait_s": waits[t] / counts[t],
                "mean_bounded_slowdown": slowdowns[t],
            }
            for t in sorted(counts)
        ]

    def utilization_series(self, bin_s: float = 3600.0) -> tuple[np.ndarray, np.ndarray]:
        """(bin start times, mean utilization in each bin) of the busy-GPU step function."""
        if not self.busy_times:
            return np.zeros(0), np.zeros(0)
        t = np.asarray(self.busy_times)
        v = np.asarray(self.busy_values, dtype=float)
        start, end = float(self.first_submit or t[0]), float(t[-1])
        edges = np.arange(start, end + bin_s, bin_s)
        # cumulative busy GPU-seconds at each change, then at each bin edge
        seg = np.diff(t, append=t[-1]) * v
        cum = np.concatenate(([0.0], np.cumsum(seg)))
        idx = np.searchsorted(t, edges, side="right") - 1
        before = np.where(idx >= 0, cum[np.clip(idx, 0, None)], 0.0)
        level = np.where(idx >= 0, v[np.clip(idx, 0, None)], 0.0)
        at_edge = before + level * (edges - np.where(idx >= 0, t[np.clip(idx, 0, None)], edges))
        util = np.diff(at_edge) / (bin_s * self.cluster.total_gpus)
        return edges[:-1], util

    def jct_values(self) -> np.ndarray:
        return np.asarray([row[9] for row in self.rows], dtype=float)

    def write_jobs_csv(self, path: Path) -> None:
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(JOB_COLUMNS)
            writer.writerows(sorted(self.rows))
