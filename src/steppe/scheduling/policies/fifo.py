"""``fifo``: strict first-in first-out; the head job blocks the queue.

Slurm's builtin scheduler without backfill: jobs start in submission order; when the first
waiting job does not fit, nothing behind it starts, even if it would fit.

Example: 8 GPUs with 6 busy; queue A (4 GPUs), B (1 GPU). A waits (``Resources``) and so
does B (``Priority``), although 2 GPUs are free.

Reference: Slurm ``SchedulerType=sched/builtin`` (slurm.conf documentation).
"""

from __future__ import annotations

from collections.abc import Sequence

from steppe.core.cluster import Cluster
from steppe.core.plan import Plan
from steppe.core.state import PendingQueue, Snapshot
from steppe.core.usage import DecayedUsage
from steppe.scheduling.admission import DEFAULT_CHECKS, AdmissionCheck
from steppe.scheduling.backfill import OrderedCycle
from steppe.scheduling.power import PowerBudget
from steppe.scheduling.queues import KeyedQueue, submit_order_key


class FifoPolicy:
    name = "fifo"
    oracle = False

    def __init__(self, checks: Sequence[AdmissionCheck] = DEFAULT_CHECKS, power: PowerBudget | None = None) -> None:
        self._cycle = OrderedCycle(backfill=False, checks=checks, power=power)

    def new_queue(self, cluster: Cluster, usage: DecayedUsage) -> PendingQueue:
        return KeyedQueue(submit_order_key)

    def schedule(self, snap: Snapshot, now: float) -> Plan:
        return self._cycle.run(snap, now)
