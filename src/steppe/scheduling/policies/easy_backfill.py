"""``easy-backfill``: FIFO order with EASY backfilling.

The first job that does not fit gets a reservation at its *shadow time* (when running jobs,
by their walltime limits, will have freed enough GPUs). Later jobs may start now if they do
not delay it: they end before the shadow time, or use only GPUs the reserved job will not
need. See ``steppe.scheduling.backfill`` for the worked example.

References: D. Lifka, "The ANL/IBM SP scheduling system", JSSPP 1995; A. Mu'alem and
D. Feitelson, "Utilization, predictability, workloads, and user runtime estimates in
scheduling the IBM SP2 with backfilling", IEEE TPDS 12(6), 2001.
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


class EasyBackfillPolicy:
    name = "easy-backfill"
    oracle = False

    def __init__(
        self, checks: Sequence[AdmissionCheck] = DEFAULT_CHECKS, depth: int = 500, power: PowerBudget | None = None
    ) -> None:
        self._cycle = OrderedCycle(backfill=True, depth=depth, checks=checks, power=power)

    def new_queue(self, cluster: Cluster, usage: DecayedUsage) -> PendingQueue:
        return KeyedQueue(submit_order_key)

    def schedule(self, snap: Snapshot, now: float) -> Plan:
        return self._cycle.run(snap, now)
