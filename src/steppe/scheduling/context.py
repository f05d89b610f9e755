"""The scratch space of one scheduling cycle: tentative starts, tenant deltas, the plan so far.

Starts are allocated on the live inventory as the cycle decides (so later placement sees
them) and rolled back in ``close()``; the single writer then commits the plan for real.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from steppe.core.job import PendingReason
from steppe.core.plan import Plan, Start
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot
from steppe.scheduling.admission import AdmissionCheck
from steppe.scheduling.placement import place


class CycleContext:
    """Tentative state of one cycle over a snapshot."""

    def __init__(self, snap: Snapshot, now: float, checks: Sequence[AdmissionCheck]) -> None:
        self.snap = snap
        self.now = now
        self.checks = checks
        self.plan = Plan()
        self.tenant_extra: Counter[str] = Counter()
        self.started: list[tuple[float, JobRecord, str]] = []  # (expected end, record, GPU type)
        self._mark = snap.inventory.mark()

    def admit(self, rec: JobRecord) -> PendingReason | None:
        """The first admission check that holds ``rec``, or None."""
        for check in self.checks:
            reason = check.check(rec, self.snap, self.tenant_extra)
            if reason is not None:
                return reason
        return None

    def try_start(self, rec: JobRecord, gpu_type: str | None = None, cap_fraction: float = 1.0) -> bool:
        """Place and tentatively start ``rec``; False if its gang does not fit now."""
        inv = self.snap.inventory
        alloc = place(inv, rec.gpus, gpu_type or rec.spec.gpu_type)
        if alloc is None:
            return False
        inv.allocate(alloc)
        self.plan.starts.append(Start(rec.job_id, alloc, cap_fraction))
        self.tenant_extra[rec.spec.tenant] += rec.gpus
        t = inv.node_type[alloc[0][0]]
        self.started.append((self.now + rec.remaining_limit_s(), rec, t))
        return True

    def hold(self, rec: JobRecord, reason: PendingReason) -> None:
        if rec.reason is not reason:
            self.plan.reasons[rec.job_id] = reason

    def close(self) -> Plan:
        """Undo the tentative allocations and hand back the plan."""
        self.snap.inventory.rollback_to(self._mark)
        return self.plan
