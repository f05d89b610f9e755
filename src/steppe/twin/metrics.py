"""Replay metrics, collected by listening to the state's events, kept as packed numbers.

Per job: wait (first start - submit), job completion time (JCT, end - submit), bounded
slowdown ``max(JCT / max(run, 10 s), 1)`` (Feitelson's threshold of 10 s keeps very short jobs
from dominating). Hub-wide: JCT mean/median/p95/p99, makespan (first submit to last end),
GPU utilization (busy GPU-seconds / (GPUs x makespan)) and its series over time, per-tenant
GPU-hours and share (from the meter's usage records, ``steppe.metering``, read from its sink),
and Jain's fairness index across tenants of their mean bounded
slowdown, ``J = (sum x)^2 / (n sum x^2)``: 1 when every tenant's jobs are slowed alike, 1/n
when one tenant bears all the waiting.

Memory: a finished job's record does not stay. ``on_stop`` appends the job's six numbers to
one ``array('d')`` (id, group, submit, first start, end, run time: 48 bytes, no Python object
per job, nothing for the cyclic collector to walk) and, given ``forget``, tells the state to
drop the record; a read moves the numbers into one float64 table. The group numbers the job's
(tenant, project, GPU type, final state, GPUs, preemptions), of which a hub has a few hundred.
The busy-GPU step function is two more arrays (16 bytes a change). Wait, JCT and slowdown are
computed in bulk when read. E.g. 1-GPU jobs 1 and 2 of tenant ``a`` completing on H100 share
group 0: the array holds ``1, 0, ..., 2, 0, ...`` and ``groups[0] == ("a", "a", "H100",
"COMPLETED", 1, 0)``; ``rows`` rebuilds the 14-column rows (``JOB_COLUMNS``) a reader or the
per-job CSV sees.

>>> round(jain_index([1.0, 1.0, 1.0]), 3), round(jain_index([3.0, 0.0, 0.0]), 3)
(1.0, 0.333)
"""

from __future__ import annotations

import csv
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from steppe.core.cluster import Cluster
from steppe.core.job import TERMINAL_STATES
from steppe.core.records import JobRecord
from steppe.metering import MemorySink

SLOWDOWN_THRESHOLD_S = 10.0
CHUNK = 65_536  # rows built at a time (the per-job CSV of a million jobs never holds them all)
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
FIGURES = ("job_id", "group", "submit_s", "start_s", "end_s", "run_s")  # per job, in order
_INTS = frozenset({"job_id", "group"})
GROUP_PARTS = ("tenant", "project", "gpu_type", "state", "gpus", "preemptions")  # what a group is

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]
Group = tuple[str, str, str, str, int, int]


def jain_index(values: Sequence[float]) -> float:
    """Jain's fairness index of non-negative values (1.0 for an empty or all-zero list)."""
    arr = np.asarray(values, dtype=float)
    denom = len(arr) * float(np.sum(arr * arr))
    return float(np.sum(arr)) ** 2 / denom if denom > 0 else 1.0


@dataclass(frozen=True)
class JobFigures:
    """Every finished job's figures as columns (``FIGURES``, float64 views of one table), in the
    order the jobs finished; ``ints`` reads an integer column."""

    groups: list[Group]
    cols: dict[str, np.ndarray[Any, Any]]

    def __len__(self) -> int:
        return len(self.cols["job_id"])

    def ints(self, name: str) -> IntArray:
        out: IntArray = self.cols[name].astype(np.int64)
        return out

    @property
    def wait(self) -> FloatArray:
        out: FloatArray = self.cols["start_s"] - self.cols["submit_s"]
        return out

    @property
    def jct(self) -> FloatArray:
        out: FloatArray = self.cols["end_s"] - self.cols["submit_s"]
        return out

    @property
    def slowdown(self) -> FloatArray:
        """Bounded slowdown, ``max(JCT / max(run, 10 s), 1)``."""
        out: FloatArray = np.maximum(self.jct / np.maximum(self.cols["run_s"], SLOWDOWN_THRESHOLD_S), 1.0)
        return out

    def codes(self, part: str) -> tuple[list[Any], IntArray]:
        """(names, each job's code into them) of one part of the group: ``tenant``, ``state`` ..."""
        k = GROUP_PARTS.index(part)
        names = sorted({g[k] for g in self.groups})
        code_of = {name: c for c, name in enumerate(names)}
        by_group = np.array([code_of[g[k]] for g in self.groups], dtype=np.int64)
        per_job: IntArray = by_group[self.ints("group")] if len(by_group) else np.zeros(0, dtype=np.int64)
        return names, per_job

    def rows(self, order: IntArray | None = None) -> Iterator[tuple[Any, ...]]:
        """The ``JOB_COLUMNS`` rows (Python ints, floats and strings), in ``order`` if given."""
        cols = dict(self.cols, wait_s=self.wait, jct_s=self.jct, bounded_slowdown=self.slowdown)
        groups = self.groups
        for lo in range(0, len(self), CHUNK):
            part = slice(lo, lo + CHUNK) if order is None else order[lo : lo + CHUNK]
            of_group = [groups[g] for g in cols["group"][part].astype(np.int64).tolist()]
            columns = []
            for name in JOB_COLUMNS:
                if name in GROUP_PARTS:
                    k = GROUP_PARTS.index(name)
                    columns.append([g[k] for g in of_group])
                elif name in _INTS:
                    columns.append(cols[name][part].astype(np.int64).tolist())
                else:
                    columns.append(cols[name][part].tolist())
            yield from zip(*columns, strict=True)


class MetricsCollector:
    """A state listener that keeps what the summary, the per-job CSV and the plots need.

    ``forget(job_id)`` is called once a finished job's figures are taken (``HubState.forget``
    in a replay: the record is dropped); put the collector after the listeners that still
    read the state's records in their ``on_stop``.
    """

    def __init__(
        self, cluster: Cluster, usage: MemorySink | None = None, forget: Callable[[int], None] | None = None
    ) -> None:
        self.cluster = cluster
        self.usage = usage if usage is not None else MemorySink()  # the meter's records: GPU-seconds per tenant
        self.forget = forget
        self.busy = 0
        self.first_submit: float | None = None
        self.preemptions = 0
        self._figures = array("d")  # len(FIGURES) numbers per job finished since the last read
        self._add = self._figures.append
        self._table = np.zeros((0, len(FIGURES)))  # the jobs finished before the last read
        self._group_of: dict[Group, int] = {}
        self._busy_times = array("d")  # the busy-GPU step function: (time, busy GPUs from then on)
        self._busy_values = array("q")
        self._cache: JobFigures | None = None

    def on_submit(self, rec: JobRecord, now: float) -> None:
        if self.first_submit is None:
            self.first_submit = now

    def on_start(self, rec: JobRecord, now: float) -> None:
        self.busy += rec.gpus
        self._busy_times.append(now)
        self._busy_values.append(self.busy)

    def on_stop(self, rec: JobRecord, now: float) -> None:
        if rec.allocation:
            self.busy -= rec.gpus
            self._busy_times.append(now)
            self._busy_values.append(self.busy)
        state = rec.state
        if state not in TERMINAL_STATES:
            self.preemptions += 1
            return
        spec = rec.spec
        key = (spec.tenant, spec.project, rec.gpu_type, state._value_, spec.gpus, rec.preemptions)  # _value_: no call
        group = self._group_of.get(key)
        if group is None:
            group = self._group_of[key] = len(self._group_of)
        start = rec.first_start_s
        add = self._add
        add(spec.job_id)
        add(group)
        add(spec.submit_s)
        add(now if start is None else start)
        add(now)
        add(rec.executed_s)
        if self.forget is not None:
            self.forget(spec.job_id)

    def figures(self) -> JobFigures:
        """Every finished job's figures so far (kept until more jobs finish).

        The numbers appended since the last read move into the table (one copy in memory).
        """
        cached = self._cache
        if cached is None or len(self._figures):
            if len(self._figures):
                recent = np.array(self._figures, dtype=np.float64).reshape(-1, len(FIGURES))
                self._table = np.concatenate((self._table, recent)) if len(self._table) else recent
                self._figures = array("d")
                self._add = self._figures.append
            table = self._table
            cols = {name: table[:, k] for k, name in enumerate(FIGURES)}
            self._cache = cached = JobFigures(list(self._group_of), cols)
        return cached

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        """Every finished job's ``JOB_COLUMNS`` row, in finishing order (built on each call)."""
        return list(self.figures().rows())

    # -- results -----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Hub-wide figures (times in seconds)."""
        fig = self.figures()
        n = len(fig)
        if n == 0:
            return {"jobs": 0}
        jct, wait, slow = fig.jct, fig.wait, fig.slowdown
        first = self.first_submit or 0.0
        makespan = float(fig.cols["end_s"].max() - first)
        busy_gpu_s = float(sum(self.usage.tenant_gpu_s.values()))
        total = self.cluster.total_gpus
        names, codes = fig.codes("state")
        states = {names[c]: int(k) for c, k in enumerate(np.bincount(codes, minlength=len(names))) if k}
        return {
            "jobs": n,
            "mean_jct_s": float(jct.mean()),
            "median_jct_s": float(np.median(jct)),
            "p95_jct_s": float(np.percentile(jct, 95)),
            "p99_jct_s": float(np.percentile(jct, 99)),
            "mean_wait_s": float(wait.mean()),
            "p99_wait_s": float(np.percentile(wait, 99)),
            "waited": float(np.count_nonzero(wait > 0) / n),
            "mean_bounded_slowdown": float(slow.mean()),
            "utilization": busy_gpu_s / (total * makespan) if makespan > 0 else 0.0,
            "makespan_s": makespan,
            "gpu_hours": busy_gpu_s / 3600.0,
            "preemptions": self.preemptions,
            "states": states,
            "jain_index": jain_index(list(self.tenant_slowdowns().values())),
        }

    def _per_tenant(self, values: FloatArray) -> dict[str, tuple[int, float]]:
        """Per tenant (sorted): jobs and the sum of ``values`` (summed in finishing order)."""
        names, codes = self.figures().codes("tenant")
        counts = np.bincount(codes, minlength=len(names))
        sums = np.bincount(codes, weights=values, minlength=len(names))
        return {t: (int(counts[c]), float(sums[c])) for c, t in enumerate(names) if counts[c]}

    def tenant_slowdowns(self) -> dict[str, float]:
        return {t: s / k for t, (k, s) in self._per_tenant(self.figures().slowdown).items()}

    def tenants(self) -> list[dict[str, Any]]:
        """Per-tenant jobs, GPU-hours, share of all GPU-hours, mean wait and slowdown."""
        gpu_s = self.usage.tenant_gpu_s
        total = sum(gpu_s.values()) or 1.0
        waits = self._per_tenant(self.figures().wait)
        slowdowns = self.tenant_slowdowns()
        return [
            {
                "tenant": t,
                "jobs": k,
                "gpu_hours": gpu_s.get(t, 0.0) / 3600.0,
                "share": gpu_s.get(t, 0.0) / total,
                "weight": self.cluster.tenant(t).weight,
                "mean_wait_s": w / k,
                "mean_bounded_slowdown": slowdowns[t],
            }
            for t, (k, w) in waits.items()
        ]

    def busy_series(self) -> tuple[FloatArray, IntArray]:
        """(times, busy GPUs from then on): the busy-GPU step function, one entry per change (copies)."""
        return np.array(self._busy_times, dtype=np.float64), np.array(self._busy_values, dtype=np.int64)

    def utilization_series(self, bin_s: float = 3600.0) -> tuple[np.ndarray, np.ndarray]:
        """(bin start times, mean utilization in each bin) of the busy-GPU step function."""
        t, busy = self.busy_series()
        if not len(t):
            return np.zeros(0), np.zeros(0)
        v = busy.astype(float)
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

    def jct_values(self) -> FloatArray:
        return self.figures().jct

    def job_ids(self) -> IntArray:
        """The finished jobs' ids, in finishing order."""
        return self.figures().ints("job_id")

    def write_jobs_csv(self, path: Path) -> None:
        """One row per finished job (``JOB_COLUMNS``), by job id, written a chunk at a time."""
        fig = self.figures()
        order: IntArray = np.argsort(fig.cols["job_id"], kind="stable")  # ids are exact in float64
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(JOB_COLUMNS)
            writer.writerows(fig.rows(order))
