"""The scratch space of one scheduling cycle: tentative starts, caps, preemptions, the plan so far.

Starts are allocated on the live inventory as the cycle decides (so later placement sees
them) and rolled back in ``close()``; the single writer then commits the plan for real. The
context also keeps the tentative power balance when the hub schedules power
(``steppe.scheduling.power``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from steppe.core.job import PendingReason
from steppe.core.plan import Plan, Recap, Start
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot
from steppe.scheduling.admission import AdmissionCheck
from steppe.scheduling.placement import place
from steppe.scheduling.power import PowerBudget


def timed_checks(checks: Sequence[AdmissionCheck]) -> tuple[AdmissionCheck, ...]:
    """The checks with ``begin_cycle`` or ``next_wakeup`` hooks."""
    return tuple(c for c in checks if hasattr(c, "begin_cycle") or hasattr(c, "next_wakeup"))


class CycleContext:
    """Tentative state of one cycle over a snapshot."""

    def __init__(
        self,
        snap: Snapshot,
        now: float,
        checks: Sequence[AdmissionCheck],
        power: PowerBudget | None = None,
        timed: Sequence[AdmissionCheck] | None = None,
    ) -> None:
        self.snap = snap
        self.now = now
        self.checks = checks
        self.power = power
        self.plan = Plan()
        self.tenant_extra: Counter[str] = Counter()
        self.started: list[tuple[float, JobRecord, str, float]] = []  # (expected end, record, GPU type, power)
        self.recapped: dict[int, tuple[float, float]] = {}
        self.preempted: set[int] = set()
        self.power_extra_w = 0.0
        self.reclaimed_w = 0.0
        self.power_waiting = False
        self.blocked = PendingReason.RESOURCES
        self._it_budget_w = power.it_budget_w(now) if power is not None else math.inf
        self._timed = timed_checks(checks) if timed is None else timed
        for check in self._timed:
            begin = getattr(check, "begin_cycle", None)
            if begin is not None:
                begin(now)
        self._mark = snap.inventory.mark()

    # -- admission ---------------------------------------------------------------------------
    def admit(self, rec: JobRecord) -> PendingReason | None:
        """The first admission check that holds ``rec``, or None."""
        for check in self.checks:
            reason = check.check(rec, self.snap, self.tenant_extra)
            if reason is not None:
                return reason
        return None

    # -- power -------------------------------------------------------------------------------
    def power_headroom_w(self) -> float:
        """IT power still free for jobs, after what this cycle has decided so far."""
        return self._it_budget_w - self.snap.power_draw_w - self.power_extra_w

    def power_potential_w(self) -> float:
        """Headroom plus what capping every full-power job to its floor would free (0 without capping)."""
        reclaim = self.snap.reclaimable_w - self.reclaimed_w if self.power and self.power.capping else 0.0
        return self.power_headroom_w() + reclaim

    def power_of(self, rec: JobRecord) -> float:
        """A running job's added power, as this cycle leaves it."""
        got = self.recapped.get(rec.job_id)
        return got[1] if got is not None else rec.power_w

    def recap(self, rec: JobRecord, cap_fraction: float, power_w: float) -> None:
        if rec.job_id in self.snap.full_power and rec.job_id not in self.recapped:
            self.reclaimed_w += rec.reclaimable_before
        self.power_extra_w += power_w - self.power_of(rec)
        self.recapped[rec.job_id] = (cap_fraction, power_w)
        self.plan.recaps.append(Recap(rec.job_id, cap_fraction, power_w))

    def preempt(self, rec: JobRecord) -> None:
        """Checkpoint-and-requeue a running job: its GPUs and power are free for this cycle."""
        if rec.job_id in self.snap.full_power and rec.job_id not in self.recapped:
            self.reclaimed_w += rec.reclaimable_before
        self.snap.inventory.release(rec.allocation)
        self.power_extra_w -= self.power_of(rec)
        self.tenant_extra[rec.spec.tenant] -= rec.gpus
        self.preempted.add(rec.job_id)
        self.plan.preemptions.append(rec.job_id)

    # -- starts ------------------------------------------------------------------------------
    def try_start(self, rec: JobRecord, gpu_type: str | None = None) -> bool:
        """Place and tentatively start ``rec``; False if its gang or its power does not fit now
        (``blocked`` then says which: ``Resources`` or ``PowerCap``)."""
        inv = self.snap.inventory
        alloc = place(inv, rec.gpus, gpu_type or rec.spec.gpu_type)
        if alloc is None:
            self.blocked = PendingReason.RESOURCES
            return False
        t = inv.node_type[alloc[0][0]]
        cap, power_w, floor_w = 1.0, 0.0, 0.0
        if self.power is not None:
            got = self.power.fit(rec, t, self.power_headroom_w()) or self.power.make_room(self, rec, t)
            if got is None:
                self.blocked = PendingReason.POWER_CAP
                return False
            cap, power_w = got
            floor_w = self.power.floor_w(rec, t)
            self.power_extra_w += power_w
        inv.allocate(alloc)
        self.plan.starts.append(Start(rec.job_id, alloc, cap, power_w, floor_w))
        self.tenant_extra[rec.spec.tenant] += rec.gpus
        self.started.append((self.now + rec.remaining_limit_s(), rec, t, power_w))
        return True

    def hold(self, rec: JobRecord, reason: PendingReason) -> None:
        if reason is PendingReason.POWER_CAP:
            self.power_waiting = True
        if rec.reason is not reason:
            self.plan.reasons[rec.job_id] = reason

    # -- phases around a cycle -----------------------------------------------------------------
    def open(self) -> None:
        """Phase 0: shed power if the cap fell below the draw."""
        if self.power is not None:
            self.power.shed(self)

    def close(self) -> Plan:
        """Last phase: give capped jobs their power back if nobody waits on it; undo the tentative
        allocations and hand back the plan."""
        if self.power is not None:
            if not self.power_waiting:
                self.power.restore(self)
            self.plan.wake_at(self.power.limits.next_change_s(self.now))
        for check in self._timed:
            wake = getattr(check, "next_wakeup", None)
            if wake is not None:
                t = wake(self.now)
                if t is not None:
                    self.plan.wake_at(t)
        self.snap.inventory.rollback_to(self._mark)
        return self.plan
