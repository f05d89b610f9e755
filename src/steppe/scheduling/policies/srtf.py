"""``srtf`` (ORACLE): shortest remaining time first, preemptive, using true run times.

No real scheduler knows how long a job will run; this policy reads the twin's true run time
and so gives a lower-bound reference for mean completion time, not a policy to deploy. The
job with the least remaining time runs first; a waiting job preempts running jobs whose
remaining time is longer than its own, the longest first.

Example: R runs with 5 h left; S (30 min) arrives and no GPU is free: R is preempted, S runs.

Reference: L. Schrage, "A proof of the optimality of the shortest remaining processing time
discipline", Operations Research 16(3), 1968.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sortedcontainers import SortedKeyList

from steppe.core.cluster import Cluster
from steppe.core.plan import Plan
from steppe.core.records import JobRecord
from steppe.core.state import PendingQueue, Snapshot
from steppe.core.usage import DecayedUsage
from steppe.scheduling.admission import DEFAULT_CHECKS, AdmissionCheck
from steppe.scheduling.context import CycleContext
from steppe.scheduling.power import PowerBudget
from steppe.scheduling.preemptive import preemptive_cycle


def _remaining(rec: JobRecord) -> float:
    return max(min(rec.spec.runtime_s, rec.spec.walltime_s) - rec.executed_s, 0.0)


class SrtfQueue:
    """Pending jobs by remaining time; running jobs by true end time."""

    def __init__(self) -> None:
        self._pending: SortedKeyList = SortedKeyList(key=lambda r: (_remaining(r), r.seq))
        self._end_keys: dict[int, tuple[float, int]] = {}
        self._running: SortedKeyList = SortedKeyList(key=lambda r: self._end_keys[r.job_id])

    def add(self, rec: JobRecord, now: float) -> None:
        self._pending.add(rec)

    def remove(self, rec: JobRecord) -> None:
        self._pending.remove(rec)

    def ordered(self, now: float) -> Iterator[JobRecord]:
        return iter(self._pending)

    def on_start(self, rec: JobRecord, now: float) -> None:
        self._end_keys[rec.job_id] = (now + _remaining(rec), rec.seq)
        self._running.add(rec)

    def on_stop(self, rec: JobRecord, now: float) -> None:
        self._running.remove(rec)
        del self._end_keys[rec.job_id]

    def victims(self, rec: JobRecord, now: float) -> Iterator[JobRecord]:
        mine = _remaining(rec)
        for victim in reversed(self._running):
            if self._end_keys[victim.job_id][0] - now <= mine:
                return
            yield victim

    def may_preempt(self, rec: JobRecord, now: float) -> bool:
        running = self._running
        return bool(running) and self._end_keys[running[-1].job_id][0] - now > _remaining(rec)

    def refresh(self, now: float) -> None:
        """Remaining times of running jobs fall at the same rate: their order never changes."""

    def next_wakeup(self, now: float) -> float | None:
        return None

    def __len__(self) -> int:
        return len(self._pending)


class SrtfPolicy:
    name = "srtf"
    oracle = True

    def __init__(
        self, checks: Sequence[AdmissionCheck] = DEFAULT_CHECKS, depth: int = 500, power: PowerBudget | None = None
    ) -> None:
        self.checks = tuple(checks)
        self.power = power
        self.depth = depth
        self._ctx = CycleContext(self.checks, power)
        self._queue = SrtfQueue()

    def new_queue(self, cluster: Cluster, usage: DecayedUsage) -> PendingQueue:
        self._queue = SrtfQueue()
        return self._queue

    def schedule(self, snap: Snapshot, now: float) -> Plan:
        return preemptive_cycle(self._ctx, snap, now, self._queue, self.depth)
