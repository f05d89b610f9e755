"""``multifactor``: Slurm's multifactor priority (age, fair share, job size, QOS) with backfill.

Jobs are ordered by ``steppe.scheduling.priority`` and scheduled by the same EASY cycle as
``easy-backfill``. As in Slurm (``PriorityCalcPeriod``), fair-share factors are recalculated
every ``calc_period_s`` of the weights (5 minutes), and the order is refreshed in full at least
as often (``refresh_s``, the same period unless given) while nothing else changes.

Example: tenants ``a`` and ``b`` with equal weights; ``a`` has run 100 GPU-hours lately,
``b`` none. ``b``'s new job outranks ``a``'s older one because of the fair-share term.

References: Slurm "Multifactor Priority Plugin" and "Classic Fairshare Algorithm" docs.
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
from steppe.scheduling.priority import MultifactorQueue, MultifactorWeights


class MultifactorPolicy:
    name = "multifactor"
    oracle = False

    def __init__(
        self,
        checks: Sequence[AdmissionCheck] = DEFAULT_CHECKS,
        weights: MultifactorWeights | None = None,
        depth: int = 500,
        refresh_s: float | None = None,
        power: PowerBudget | None = None,
    ) -> None:
        self.weights = weights or MultifactorWeights()
        refresh = refresh_s if refresh_s is not None else self.weights.calc_period_s
        self._cycle = OrderedCycle(backfill=True, depth=depth, checks=checks, refresh_s=refresh, power=power)

    def new_queue(self, cluster: Cluster, usage: DecayedUsage) -> PendingQueue:
        return MultifactorQueue(cluster, usage, self.weights)

    def schedule(self, snap: Snapshot, now: float) -> Plan:
        return self._cycle.run(snap, now)
