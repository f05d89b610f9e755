"""The scratch space of a scheduling cycle: trial starts, caps, preemptions, the plan so far.

A cycle reads the hub's state (a ``Snapshot``) and never writes it. What it decides as it goes
lives here: trial allocations and trial preemptions on an ``InventoryOverlay`` (GPUs taken or
freed per node, over the untouched inventory, so later placements see earlier ones), GPUs per
tenant started this cycle, the tentative power balance when the hub schedules power
(``steppe.scheduling.power``), and the plan. The single writer then commits the plan for real.
A cycle that raises part-way leaves the state exactly as it was: its trials were only ever here.

One context serves every cycle of a policy: ``begin`` empties it, so a cycle allocates no
scratch dicts or counters of its own (only its ``Plan``, which it hands back).

Example: 8 free GPUs; a cycle starts job A (6 GPUs) on node 0: the overlay records
``taken = {0: 6}`` and placement now sees 2 free; the inventory still says 8 until the writer
applies the plan.

In a hub at several sites, the checks that know where a job may run (residency, its approval,
the engines that answer) each say which sites (``sites_for(rec)``); ``sites_of`` intersects
them, and placement looks only at those sites' pools. A one-site hub asks nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

from steppe.core.inventory import Allocation, InventoryOverlay
from steppe.core.job import PendingReason
from steppe.core.plan import Plan, Recap, Start
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot
from steppe.scheduling.admission import AdmissionCheck
from steppe.scheduling.placement import candidate_pools, place, place_in
from steppe.scheduling.power import PowerBudget

_new_start = tuple.__new__  # a named tuple made without its Python-level ``__new__``


def timed_checks(checks: Sequence[AdmissionCheck]) -> tuple[AdmissionCheck, ...]:
    """The checks with ``begin_cycle`` or ``next_wakeup`` hooks."""
    return tuple(c for c in checks if hasattr(c, "begin_cycle") or hasattr(c, "next_wakeup"))


class CycleContext:
    """Tentative state of one cycle over a snapshot; reused from cycle to cycle (``begin``)."""

    snap: Snapshot
    inv: InventoryOverlay

    def __init__(
        self,
        checks: Sequence[AdmissionCheck],
        power: PowerBudget | None = None,
    ) -> None:
        self.checks = tuple(checks)
        self.power = power
        self.now = 0.0
        self.plan = Plan()
        self.tenant_extra: Counter[str] = Counter()
        self.started: list[tuple[float, JobRecord, str, float]] = []  # (expected end, record, pool, power)
        self._site_rules: tuple[Callable[[JobRecord], frozenset[str] | None], ...] = tuple(
            c.sites_for for c in self.checks if hasattr(c, "sites_for")
        )
        self.site_rules_on = False  # the fleet names sites: placement asks ``sites_of``
        self.recapped: dict[int, tuple[float, float]] = {}
        self.preempted: set[int] = set()
        self.power_extra_w = 0.0
        self.reclaimed_w = 0.0
        self.power_waiting = False
        self.blocked = PendingReason.RESOURCES
        self._it_budget_w = math.inf
        # a fleet at several sites: budget, this cycle's extra power and reclaimed power per site
        self.power_sites = power is not None and bool(power.sites)
        self._site_budget_w: dict[str, float] = {}
        self.site_extra_w: dict[str, float] = {}
        self.site_reclaimed_w: dict[str, float] = {}
        self._timed = timed_checks(self.checks)
        self._begins = tuple(c.begin_cycle for c in self._timed if hasattr(c, "begin_cycle"))
        self._wakes = tuple(c.next_wakeup for c in self._timed if hasattr(c, "next_wakeup"))
        self._base: object = None

    def begin(self, snap: Snapshot, now: float) -> None:
        """Start a cycle over ``snap`` at ``now``: no trials, an empty plan."""
        base = snap.inventory
        if base is not self._base:
            self._base = base
            self.inv = InventoryOverlay(base)
            self.site_rules_on = bool(self._site_rules) and any(base.pool_site.values())
        else:
            inv = self.inv  # as ``inv.reset()``, inlined: once per cycle
            if inv.taken:
                inv.taken.clear()
            inv.free_by_pool.update(base.free_by_pool)
            inv.total_free = base.total_free
        self.snap = snap
        self.now = now
        self.plan = Plan()
        if self.tenant_extra:
            self.tenant_extra.clear()
        if self.started:
            self.started.clear()
        if self.recapped:
            self.recapped.clear()
        if self.preempted:
            self.preempted.clear()
        self.blocked = PendingReason.RESOURCES
        self.power_extra_w = 0.0
        self.reclaimed_w = 0.0
        self.power_waiting = False
        power = self.power
        if power is not None:
            if self.power_sites:
                self._site_budget_w = power.site_budgets_w(now)
                self._it_budget_w = sum(self._site_budget_w.values())
                extra, reclaimed = self.site_extra_w, self.site_reclaimed_w  # emptied in place
                for site in self._site_budget_w:
                    extra[site] = reclaimed[site] = 0.0
            else:
                self._it_budget_w = power.it_budget_w(now)
        for begin in self._begins:
            begin(now)

    # -- admission ---------------------------------------------------------------------------
    def admit(self, rec: JobRecord) -> PendingReason | None:
        """The first admission check that holds ``rec``, or None."""
        snap, extra = self.snap, self.tenant_extra
        for check in self.checks:
            reason = check.check(rec, snap, extra)
            if reason is not None:
                return reason
        return None

    def sites_of(self, rec: JobRecord) -> frozenset[str] | None:
        """The sites ``rec`` may run at, per every check that restricts them (None: any site)."""
        allowed: frozenset[str] | None = None
        for rule in self._site_rules:
            got = rule(rec)
            if got is not None:
                allowed = got if allowed is None else allowed & got
        return allowed

    # -- power -------------------------------------------------------------------------------
    def power_headroom_w(self, site: str | None = None) -> float:
        """IT power still free for jobs (at ``site``, in a fleet at several sites), after what this
        cycle has decided so far."""
        if site is not None and self.power_sites:
            return self._site_budget_w[site] - self.snap.site_draw_w[site] - self.site_extra_w[site]
        return self._it_budget_w - self.snap.power_draw_w - self.power_extra_w

    def power_potential_w(self, site: str | None = None) -> float:
        """Headroom plus what capping every full-power job to its floor would free (0 without
        capping); at ``site``, or with several sites and none named, the most at any one site."""
        capping = self.power is not None and self.power.capping
        if self.power_sites:
            if site is None:
                return max(self.power_potential_w(s) for s in self._site_budget_w)
            reclaim = self.snap.site_reclaimable_w[site] - self.site_reclaimed_w[site] if capping else 0.0
            return self.power_headroom_w(site) + reclaim
        reclaim = self.snap.reclaimable_w - self.reclaimed_w if capping else 0.0
        return self.power_headroom_w() + reclaim

    def power_of(self, rec: JobRecord) -> float:
        """A running job's added power, as this cycle leaves it."""
        got = self.recapped.get(rec.job_id)
        return got[1] if got is not None else rec.power_w

    def recap(self, rec: JobRecord, cap_fraction: float, power_w: float) -> None:
        if rec.job_id in self.snap.full_power and rec.job_id not in self.recapped:
            self.reclaimed_w += rec.reclaimable_before
            if self.power_sites:
                self.site_reclaimed_w[rec.site] += rec.reclaimable_before
        if self.power_sites:
            self.site_extra_w[rec.site] += power_w - self.power_of(rec)
        self.power_extra_w += power_w - self.power_of(rec)
        self.recapped[rec.job_id] = (cap_fraction, power_w)
        self.plan.recaps.append(Recap(rec.job_id, cap_fraction, power_w))

    def preempt(self, rec: JobRecord) -> None:
        """Checkpoint-and-requeue a running job: its GPUs and power are free for this cycle."""
        if rec.job_id in self.snap.full_power and rec.job_id not in self.recapped:
            self.reclaimed_w += rec.reclaimable_before
            if self.power_sites:
                self.site_reclaimed_w[rec.site] += rec.reclaimable_before
        self.inv.release(rec.allocation)
        if self.power_sites:
            self.site_extra_w[rec.site] -= self.power_of(rec)
        self.power_extra_w -= self.power_of(rec)
        self.tenant_extra[rec.spec.tenant] -= rec.gpus
        self.preempted.add(rec.job_id)
        self.plan.preemptions.append(rec.job_id)

    # -- starts ------------------------------------------------------------------------------
    def try_start(self, rec: JobRecord, pool: str | None = None) -> bool:
        """Place (in ``pool``, or in any pool it may use) and tentatively start ``rec``; False if
        its gang or its power does not fit now (``blocked`` then says which: ``Resources`` or
        ``PowerCap``)."""
        inv = self.inv
        if pool is not None:
            alloc = place_in(inv, pool, rec.gpus)
        elif self.site_rules_on:
            alloc = place(inv, rec.gpus, rec.spec.gpu_type, self.sites_of(rec))
        else:
            alloc = place(inv, rec.gpus, rec.spec.gpu_type)
        if alloc is None:
            self.blocked = PendingReason.RESOURCES
            return False
        first = alloc[0][0]
        t = inv.node_type[first]
        if self.power is None:
            start = _new_start(Start, (rec.job_id, alloc, 1.0, 0.0, 0.0))  # ``Start(job_id, alloc)``, made in C
            power_w = 0.0
        else:
            site: str | None
            if self.power_sites and pool is None:  # several sites: where its power fits best
                alloc, got, t = self._power_at_sites(rec, alloc, t)
                first = alloc[0][0]
                site = inv.pool_site[inv.node_pool[first]]
            else:
                site = inv.pool_site[inv.node_pool[first]] if self.power_sites else None
                got = self.power.fit(rec, t, self.power_headroom_w(site)) or self.power.make_room(self, rec, t, site)
            if got is None:
                self.blocked = PendingReason.POWER_CAP
                return False
            cap, power_w = got
            start = Start(rec.job_id, alloc, cap, power_w, self.power.floor_w(rec, t))
            self.power_extra_w += power_w
            if site is not None:
                self.site_extra_w[site] += power_w
        inv.allocate(alloc)
        self.plan.starts.append(start)
        extra, tenant = self.tenant_extra, rec.spec.tenant
        extra[tenant] = extra.get(tenant, 0) + rec.gpus
        limit_s = rec.spec.walltime_s - rec.executed_s  # as ``rec.remaining_limit_s()``
        self.started.append((self.now + (limit_s if limit_s > 0.0 else 0.0), rec, inv.node_pool[first], power_w))
        return True

    def _power_at_sites(
        self, rec: JobRecord, alloc: Allocation, gpu_type: str
    ) -> tuple[Allocation, tuple[float, float] | None, str]:
        """With several sites, where the job's power fits best, in this order: the placement
        ``alloc`` at full power; the first other pool it may use (pool order) where its gang fits
        at full power; the placement under a GPU cap; another pool under a cap; then, capping
        running jobs to make room, the placement's site and the others. A job runs capped, or caps
        others, only while no site has the power to run it at full power. Returns the allocation,
        (cap, power) or None, and the GPU type."""
        inv, power = self.inv, self.power
        assert power is not None
        placed = inv.node_pool[alloc[0][0]]
        got = power.fit(rec, gpu_type, self.power_headroom_w(inv.pool_site[placed]))
        if got is not None and got[0] >= 1.0:
            return alloc, got, gpu_type
        capped_here = got
        others = [
            (p, a)
            for p in candidate_pools(inv, rec.spec.gpu_type, self.sites_of(rec) if self.site_rules_on else None)
            if p != placed and (a := place_in(inv, p, rec.gpus)) is not None
        ]
        fits = [(p, a, power.fit(rec, inv.pool_type[p], self.power_headroom_w(inv.pool_site[p]))) for p, a in others]
        for p, a, fit in fits:
            if fit is not None and fit[0] >= 1.0:
                return a, fit, inv.pool_type[p]
        if capped_here is not None:
            return alloc, capped_here, gpu_type
        for p, a, fit in fits:
            if fit is not None:
                return a, fit, inv.pool_type[p]
        for p, a in ((placed, alloc), *others):
            got = power.make_room(self, rec, inv.pool_type[p], inv.pool_site[p])
            if got is not None:
                return a, got, inv.pool_type[p]
        return alloc, None, gpu_type

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
        """Last phase: give capped jobs their power back if nobody waits on it, ask for the
        wake-ups that are due, and hand back the plan (the trials stay here, never applied)."""
        plan = self.plan
        if self.power is not None:
            if not self.power_waiting:
                self.power.restore(self)
            plan.wake_at(self.power.next_change_s(self.now))
        now = self.now
        for wake in self._wakes:
            t = wake(now)
            if t is not None:
                plan.wake_at(t)
        return plan
