"""Replay metrics, collected by listening to the state's events, streamed into compact columns.

Per job: wait (first start - submit), job completion time (JCT, end - submit), bounded
slowdown ``max(JCT / max(run, 10 s), 1)`` (Feitelson's threshold of 10 s keeps very short jobs
from dominating). Hub-wide: JCT mean/median/p95/p99, makespan (first submit to last end),
GPU utilization (busy GPU-seconds / (GPUs x makespan)) and its series over time, per-tenant
GPU-hours and share (from the meter's usage records, ``steppe.metering``, read from its sink),
and Jain's fairness index across tenants of their mean bounded
slowdown, ``J = (sum x)^2 / (n sum x^2)``: 1 when every tenant's jobs are slowed alike, 1/n
when one tenant bears all the waiting.

Memory: a finished job's record does not stay. ``on_stop`` appends one flat tuple of what the
job's row needs (ids, names, times; the derived wait, JCT and slowdown are computed later, in
bulk) and, given ``forget``, tells the state to drop the job's record. Every ``CHUNK``
finished jobs the tuples are packed into numpy columns (about 60 bytes a job instead of a
few hundred for a row of Python objects; names become small integer codes into ``names``),
and the busy-GPU step function into float64 and int64 arrays. A year of a million jobs keeps
about 60 MB of figures. E.g. after 3 jobs of tenants ``a, b, a`` are packed, the tenant column
is ``[0, 1, 0]`` with ``names == ["a", "b", ...]``; ``rows`` rebuilds the same 14-column rows
(``JOB_COLUMNS``) a reader or the per-job CSV sees.

>>> round(jain_index([1.0, 1.0, 1.0]), 3), round(jain_index([3.0, 0.0, 0.0]), 3)
(1.0, 0.333)
"""

from __future__ import annotations

import csv
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
CHUNK = 65_536  # finished jobs held as tuples before they are packed into columns
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
# What on_stop appends per finished job (in this order) and the packed column's dtype.
_FIELDS = (
    ("job_id", np.int64),
    ("tenant", np.int32),
    ("project", np.int32),
    ("gpus", np.int32),
    ("gpu_type", np.int32),
    ("submit_s", np.float64),
    ("start_s", np.float64),
    ("end_s", np.float64),
    ("run_s", np.float64),
    ("state", np.int32),
    ("preemptions", np.int32),
)
_NAMED = frozenset({"tenant", "project", "gpu_type", "state"})  # interned into ``names``

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]


def jain_index(values: Sequence[float]) -> float:
    """Jain's fairness index of non-negative values (1.0 for an empty or all-zero list)."""
    arr = np.asarray(values, dtype=float)
    denom = len(arr) * float(np.sum(arr * arr))
    return float(np.sum(arr)) ** 2 / denom if denom > 0 else 1.0


@dataclass(frozen=True)
class JobFigures:
    """Every finished job's figures as columns, in the order the jobs finished.

    The name columns (``tenant``, ``project``, ``gpu_type``, ``state``) hold codes into ``names``.
    """

    names: list[str]
    cols: dict[str, np.ndarray[Any, Any]]

    def __len__(self) -> int:
        return len(self.cols["job_id"])

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

    def rows(self, order: IntArray | None = None) -> Iterator[tuple[Any, ...]]:
        """The ``JOB_COLUMNS`` rows (Python ints, floats and strings), in ``order`` if given."""
        cols = dict(self.cols, wait_s=self.wait, jct_s=self.jct, bounded_slowdown=self.slowdown)
        names = self.names
        for lo in range(0, len(self), CHUNK):
            part = slice(lo, lo + CHUNK) if order is None else order[lo : lo + CHUNK]
            columns = []
            for name in JOB_COLUMNS:
                values = cols[name][part].tolist()
                columns.append([names[c] for c in values] if name in _NAMED else values)
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
        self.finished = 0
        self._recent: list[tuple[Any, ...]] = []  # finished jobs not yet packed, as _FIELDS tuples
        self._busy_times: list[float] = []  # busy-GPU changes not yet packed
        self._busy_values: list[int] = []
        self._codes: dict[str, int] = {}  # name -> code, in order of first use
        self._chunks: dict[str, list[np.ndarray[Any, Any]]] = {name: [] for name, _ in _FIELDS}
        self._busy_chunks: tuple[list[FloatArray], list[IntArray]] = ([], [])
        self._figures: JobFigures | None = None  # cached until the next finished job

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
        start = rec.first_start_s
        recent = self._recent
        recent.append(
            (
                spec.job_id,
                spec.tenant,
                spec.project,
                spec.gpus,
                rec.gpu_type,
                spec.submit_s,
                now if start is None else start,
                now,
                rec.executed_s,
                state,
                rec.preemptions,
            )
        )
        if len(recent) >= CHUNK:
            self._pack()
        self._figures = None
        if self.forget is not None:
            self.forget(spec.job_id)

    # -- packing -----------------------------------------------------------------------------
    def _code_of(self, name: str) -> int:
        codes = self._codes
        code = codes.get(name)
        if code is None:
            code = codes[name] = len(codes)
        return code

    def _pack(self) -> None:
        """Move the finished jobs held as tuples, and the busy changes, into numpy columns."""
        recent = self._recent
        if recent:
            self.finished += len(recent)
            for (name, dtype), values in zip(_FIELDS, zip(*recent, strict=True), strict=True):
                if name in _NAMED:
                    values = tuple(map(self._code_of, map(str, values)))
                self._chunks[name].append(np.array(values, dtype=dtype))
            recent.clear()
        if self._busy_times:
            self._busy_chunks[0].append(np.array(self._busy_times, dtype=np.float64))
            self._busy_chunks[1].append(np.array(self._busy_values, dtype=np.int64))
            self._busy_times.clear()
            self._busy_values.clear()

    def figures(self) -> JobFigures:
        """Every finished job's figures so far (columns in finishing order)."""
        if self._figures is None:
            self._pack()
            cols = {name: _joined(self._chunks[name], dtype) for name, dtype in _FIELDS}
            for name, col in cols.items():  # one array per column from now on
                self._chunks[name][:] = [col] if len(col) else []
            self._figures = JobFigures(list(self._codes), cols)
        return self._figures

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
        codes = np.bincount(fig.cols["state"], minlength=len(fig.names))
        states = {fig.names[c]: int(k) for c, k in enumerate(codes) if k}
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
            "states": dict(sorted(states.items())),
            "jain_index": jain_index(list(self.tenant_slowdowns().values())),
        }

    def _per_tenant(self, values: FloatArray) -> dict[str, tuple[int, float]]:
        """Per tenant (sorted): jobs and the sum of ``values`` (summed in finishing order)."""
        fig = self.figures()
        tenant = fig.cols["tenant"]
        size = len(fig.names)
        counts = np.bincount(tenant, minlength=size)
        sums = np.bincount(tenant, weights=values, minlength=size)
        used = sorted((fig.names[c], c) for c in range(size) if counts[c])
        return {t: (int(counts[c]), float(sums[c])) for t, c in used}

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
        """(times, busy GPUs from then on): the busy-GPU step function, one entry per change."""
        self._pack()
        times, values = self._busy_chunks
        t, v = _joined(times, np.float64), _joined(values, np.int64)
        times[:] = [t] if len(t) else []
        values[:] = [v] if len(v) else []
        return t, v

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
        ids: IntArray = self.figures().cols["job_id"]
        return ids

    def write_jobs_csv(self, path: Path) -> None:
        """One row per finished job (``JOB_COLUMNS``), by job id, written a chunk at a time."""
        fig = self.figures()
        order: IntArray = np.argsort(fig.cols["job_id"], kind="stable")
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(JOB_COLUMNS)
            writer.writerows(fig.rows(order))


def _joined(chunks: list[np.ndarray[Any, Any]], dtype: type[np.generic]) -> np.ndarray[Any, Any]:
    if not chunks:
        return np.zeros(0, dtype=dtype)
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
