"""``las``: Tiresias's discretized two-dimensional least-attained-service, with preemption.

A job's *attained service* is GPUs x seconds run (two dimensions: width and time). Queues
are split at thresholds of attained service (default one threshold, 1 GPU-hour: two
queues). Jobs in a lower queue (less service) come first; within a queue, first come first
served. A running job crossing a threshold is demoted at that instant (a wake-up is
scheduled for it). A waiting job that a higher queue keeps out may preempt running jobs of
lower queues, the longest-served queue first and the latest arrival in it first (the
lowest priority in Tiresias's order); preempted jobs keep their progress (checkpoint and
requeue). **Starvation guard**: a job that has waited ``starve_factor`` times as long as it
last ran (at least ``starve_min_s``) is promoted to the first queue, its service counter reset.

Example (threshold 3600 GPU-s): job L has run 1 GPU for 2 h (queue 1); job N arrives
(queue 0) and no GPU is free: L is preempted, N starts. If L then waits 2 x 2 h, it is
promoted back to queue 0.

Reference: J. Gu et al., "Tiresias: A GPU Cluster Manager for Distributed Deep Learning",
NSDI 2019 (sections 3.2-3.3).
"""

from __future__ import annotations

import bisect
import math
from bisect import bisect_left, insort
from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import Any

from steppe.core.cluster import Cluster
from steppe.core.job import JobState
from steppe.core.plan import Plan
from steppe.core.records import JobRecord
from steppe.core.state import PendingQueue, Snapshot
from steppe.core.usage import DecayedUsage
from steppe.scheduling.admission import DEFAULT_CHECKS, AdmissionCheck
from steppe.scheduling.context import CycleContext
from steppe.scheduling.power import PowerBudget
from steppe.scheduling.preemptive import preemptive_cycle

_record = itemgetter(3)


def _discard(entries: list[Any], entry: tuple[Any, ...]) -> None:
    """Remove ``entry`` from the sorted plain list ``entries`` (a bisection and one ``del``, in C)."""
    del entries[bisect_left(entries, entry)]


class LasQueue:
    """Pending and running jobs by (queue level, submit order); demotion and starvation timers.

    Each index is a plain sorted list kept with ``bisect`` (insertions, removals and the first
    entry are C calls; a hub's queue is thousands of entries, so a ``memmove`` is cheaper than a
    sorted container's Python code).
    """

    def __init__(self, thresholds_gpu_s: Sequence[float], starve_factor: float, starve_min_s: float) -> None:
        self.thresholds = sorted(thresholds_gpu_s)
        self.starve_factor = starve_factor
        self.starve_min_s = starve_min_s
        self.service: dict[int, float] = {}  # attained GPU-seconds (since the last promotion), as of last stop
        self.level: dict[int, int] = {}
        # entries (level, submit, seq, rec), sorted as tuples: seq is unique, so records are never compared
        self._pending: list[tuple[int, float, int, JobRecord]] = []
        self._running: list[tuple[int, float, int, JobRecord]] = []
        self._entry: dict[int, tuple[int, float, int, JobRecord]] = {}  # each job's entry in one of them
        self._demotions: list[tuple[float, int]] = []  # (time, job id), sorted
        self._starving: list[tuple[float, int]] = []  # (deadline, job id), sorted
        self._starve_at: dict[int, float] = {}
        self._demote_at: dict[int, float] = {}
        self._records: dict[int, JobRecord] = {}
        self._due_s = math.inf  # the earliest timer (-inf: not known, look at both lists)

    def _enter(self, rec: JobRecord) -> tuple[int, float, int, JobRecord]:
        entry = self._entry[rec.job_id] = (self.level[rec.job_id], rec.spec.submit_s, rec.seq, rec)
        return entry

    def level_of(self, service_gpu_s: float) -> int:
        return bisect.bisect_right(self.thresholds, service_gpu_s)

    # -- pending -----------------------------------------------------------------------------
    def add(self, rec: JobRecord, now: float) -> None:
        jid = rec.job_id
        self._records[jid] = rec
        service = self.service.setdefault(jid, 0.0)
        self.level[jid] = self.level_of(service)
        insort(self._pending, self._enter(rec))
        if self.level[jid] > 0:
            last_run = (rec.end_s or now) - rec.last_start_s
            deadline = now + max(self.starve_factor * last_run, self.starve_min_s)
            self._starve_at[jid] = deadline
            insort(self._starving, (deadline, jid))
            self._timer_added(deadline)

    def remove(self, rec: JobRecord) -> None:
        _discard(self._pending, self._entry.pop(rec.job_id))
        deadline = self._starve_at.pop(rec.job_id, None)
        if deadline is not None:
            _discard(self._starving, (deadline, rec.job_id))
            self._timer_removed(deadline)

    def ordered(self, now: float) -> Iterator[JobRecord]:
        return map(_record, self._pending)

    def __len__(self) -> int:
        return len(self._pending)

    # -- running -----------------------------------------------------------------------------
    def on_start(self, rec: JobRecord, now: float) -> None:
        insort(self._running, self._enter(rec))
        self._schedule_demotion(rec, now)

    def on_stop(self, rec: JobRecord, now: float) -> None:
        jid = rec.job_id
        _discard(self._running, self._entry.pop(jid))
        when = self._demote_at.pop(jid, None)
        if when is not None:
            _discard(self._demotions, (when, jid))
            self._timer_removed(when)
        self.service[jid] += rec.gpus * (now - rec.last_start_s)
        if rec.state is not JobState.PREEMPTED:
            self._forget(jid)

    def victims(self, rec: JobRecord, now: float) -> Iterator[JobRecord]:
        mine = self.level[rec.job_id]
        for level, _, _, victim in reversed(self._running):  # an entry's level is the job's (re-entered on change)
            if level <= mine:
                return
            yield victim

    def may_preempt(self, rec: JobRecord, now: float) -> bool:
        running = self._running
        return bool(running) and running[-1][0] > self.level[rec.job_id]  # the last entry has the highest level

    # -- timers ------------------------------------------------------------------------------
    def refresh(self, now: float) -> None:
        if now < self._due_s:
            return  # no timer is due (the common case: one comparison per cycle)
        while self._demotions and self._demotions[0][0] <= now:
            _, jid = self._demotions.pop(0)
            del self._demote_at[jid]
            rec = self._records[jid]
            _discard(self._running, self._entry[jid])
            self.level[jid] += 1
            insort(self._running, self._enter(rec))
            self._schedule_demotion(rec, now)
        while self._starving and self._starving[0][0] <= now:
            _, jid = self._starving.pop(0)
            del self._starve_at[jid]
            rec = self._records[jid]
            _discard(self._pending, self._entry[jid])
            self.service[jid] = 0.0
            self.level[jid] = 0
            insort(self._pending, self._enter(rec))
        self._due_s = -math.inf

    def next_wakeup(self, now: float) -> float | None:
        if self._due_s == -math.inf:  # unknown since a timer fired or the earliest was removed
            times = [s[0][0] for s in (self._demotions, self._starving) if s]
            self._due_s = min(times) if times else math.inf
        return None if self._due_s == math.inf else self._due_s

    def _timer_added(self, when: float) -> None:
        if when < self._due_s:
            self._due_s = when

    def _timer_removed(self, when: float) -> None:
        if when <= self._due_s:
            self._due_s = -math.inf

    def _schedule_demotion(self, rec: JobRecord, now: float) -> None:
        jid = rec.job_id
        level = self.level[jid]
        if level >= len(self.thresholds):
            return
        served = self.service[jid] + rec.gpus * (now - rec.last_start_s)
        when = now + max(self.thresholds[level] - served, 0.0) / rec.gpus
        self._demote_at[jid] = when
        insort(self._demotions, (when, jid))
        self._timer_added(when)

    def _forget(self, jid: int) -> None:
        self.service.pop(jid, None)
        self.level.pop(jid, None)
        self._records.pop(jid, None)


class LasPolicy:
    name = "las"
    oracle = False

    def __init__(
        self,
        checks: Sequence[AdmissionCheck] = DEFAULT_CHECKS,
        thresholds_gpu_s: Sequence[float] = (3600.0,),
        starve_factor: float = 2.0,
        starve_min_s: float = 600.0,
        depth: int = 500,
        power: PowerBudget | None = None,
    ) -> None:
        self.checks = tuple(checks)
        self.power = power
        self.thresholds = tuple(thresholds_gpu_s)
        self.starve_factor = starve_factor
        self.starve_min_s = starve_min_s
        self.depth = depth
        self._ctx = CycleContext(self.checks, power)
        self._queue = LasQueue(self.thresholds, starve_factor, starve_min_s)

    def new_queue(self, cluster: Cluster, usage: DecayedUsage) -> PendingQueue:
        self._queue = LasQueue(self.thresholds, self.starve_factor, self.starve_min_s)
        return self._queue

    def schedule(self, snap: Snapshot, now: float) -> Plan:
        return preemptive_cycle(self._ctx, snap, now, self._queue, self.depth)
