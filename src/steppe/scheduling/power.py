"""Facility power as a consumable: admission, per-job GPU power caps, shedding under a falling cap.

The facility may draw at most ``cap(t)`` watts from the grid. Its draw is

    facility = PUE(t) x (static IT + sum of running jobs' added power)

where *static IT* is what the fleet draws with every GPU idle (hosts and idle GPUs) and a job's
*added power* is what its GPUs draw above idle at its cap. So the IT budget for jobs at ``t`` is
``cap(t) / PUE(t) - static``, and a job may start only if its added power fits the headroom
(pending reason ``PowerCap``). Numbers come from models injected through two small protocols,
so scheduling stays independent of the energy package.

With **capping** on (the ``power-capped`` option), a job that does not fit at full power:

1. starts under a lower GPU cap (steps of 0.05 x TDP, down to ``floor``) if that fits;
2. else running jobs without a cap are capped (oldest first, down to ``floor``) to make room;
3. only then is it held with ``PowerCap``.

Jobs of latency-critical QOS classes are never capped. When no job waits on power, capped
jobs are raised back (oldest first) as far as the headroom allows.

**Shedding.** If the cap drops (or PUE rises) below the current draw, the cycle first caps
running jobs down to ``floor`` (largest first), then checkpoints and requeues preemptible
jobs (latest started first) until the draw fits, all in the same cycle.

Example: cap 1 MW, PUE 1.25, static 200 kW -> IT budget 600 kW. Running jobs add 560 kW;
a job adding 60 kW at full power (40 kW at cap 0.6) does not fit at full power (40 kW free),
but does at cap 0.6: it starts capped and runs about 9 % slower.

**Several sites.** A fleet at several sites has a cap, a PUE and an idle draw per site
(``PowerBudget.sites``): each site's budget is computed as above from its own figures, a job
draws on the budget of the site it is placed at, and capping, shedding and restoring pick
only that site's jobs. Astana's spare power never lets a job start in Almaty.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol

from steppe.core.job import JobSpec
from steppe.core.records import JobRecord
from steppe.core.state import PendingKind

if TYPE_CHECKING:
    from steppe.scheduling.context import CycleContext

CAP_STEP = 0.05


class JobPowerModel(Protocol):
    """Power a job adds above idle, and whether it may be capped."""

    def added_w(self, rec: JobRecord, gpu_type: str, cap_fraction: float) -> float: ...

    def cappable(self, rec: JobRecord) -> bool: ...


class FacilityLimits(Protocol):
    """The facility's cap and PUE over (simulated or wall) time."""

    def cap_w_at(self, t_s: float) -> float: ...

    def pue_at(self, t_s: float) -> float: ...

    def next_change_s(self, t_s: float) -> float: ...


class SiteLimits(NamedTuple):
    """One site's facility cap and PUE over time, and its fleet's idle IT draw (W)."""

    limits: FacilityLimits
    static_it_w: float


class ConstantLimits:
    """A facility whose cap and PUE never change on their own (``FacilityLimits``): a fixed
    contract cap, or a test's facility. Its attributes may be set; the next cycle reads them.

    >>> ConstantLimits(50_000.0).cap_w_at(0.0), ConstantLimits(50_000.0, pue=1.2).pue_at(9.0)
    (50000.0, 1.2)
    """

    def __init__(self, cap_w: float, pue: float = 1.0) -> None:
        self.cap_w, self.pue = cap_w, pue

    def cap_w_at(self, t_s: float) -> float:
        return self.cap_w

    def pue_at(self, t_s: float) -> float:
        return self.pue

    def next_change_s(self, t_s: float) -> float:
        return math.inf


@dataclass
class PowerBudget:
    """Power rules for a cycle; see the module docstring."""

    model: JobPowerModel
    limits: FacilityLimits
    static_it_w: float
    capping: bool = True
    floor: float = 0.6
    sites: dict[str, SiteLimits] = field(default_factory=dict)  # several sites: each its own (else empty)

    def __post_init__(self) -> None:
        if not 0.4 <= self.floor <= 1.0:
            raise ValueError(f"cap floor must be within 0.4-1.0 of TDP, got {self.floor}")
        steps = []
        c = 1.0 - CAP_STEP
        while c >= self.floor - 1e-9:
            steps.append(round(c, 4))
            c -= CAP_STEP
        self.steps: tuple[float, ...] = tuple(steps)
        self._kind_need: dict[PendingKind, float] = {}
        self._ladders: dict[tuple[object, ...], tuple[tuple[float, float], ...]] = {}

    def least_need_w(self, kinds: Iterable[PendingKind], gpu_types: tuple[str, ...]) -> float:
        """The least power any waiting job needs (at its lowest cap, on its cheapest GPU type).

        ``kinds`` are the state's ``pending_kinds``: (workload, GPU type, QOS, GPUs).
        """
        best = math.inf
        for kind in kinds:
            need = self._kind_need.get(kind)
            if need is None:
                spec = JobSpec(
                    0, 0.0, kind.gpus, 1.0, 1.0, "", gpu_type=kind.gpu_type, qos=kind.qos, workload=kind.workload
                )
                probe = JobRecord(spec, 0)
                types = (kind.gpu_type,) if kind.gpu_type in gpu_types else gpu_types
                need = min(self.floor_w(probe, t) for t in types)
                self._kind_need[kind] = need
            best = min(best, need)
        return best

    def it_budget_w(self, now: float) -> float:
        """IT power jobs may add at ``now`` (the whole facility; with several sites, their sum)."""
        if self.sites:
            return sum(self.site_budgets_w(now).values())
        return self.limits.cap_w_at(now) / self.limits.pue_at(now) - self.static_it_w

    def site_budgets_w(self, now: float) -> dict[str, float]:
        """IT power jobs may add at ``now`` at each site (several sites only)."""
        return {s: x.limits.cap_w_at(now) / x.limits.pue_at(now) - x.static_it_w for s, x in self.sites.items()}

    def budget_key(self, now: float) -> float | tuple[float, ...]:
        """What a memoised cycle compares: the budget now, or each site's."""
        if self.sites:
            return tuple(self.site_budgets_w(now).values())
        return self.it_budget_w(now)

    def next_change_s(self, now: float) -> float:
        """When the cap or PUE next changes (at any site)."""
        if self.sites:
            return min(x.limits.next_change_s(now) for x in self.sites.values())
        return self.limits.next_change_s(now)

    def ladder(self, rec: JobRecord, gpu_type: str) -> tuple[tuple[float, float], ...]:
        """(cap, added power) from full power down to the lowest cap ``rec`` may get (memoised by kind)."""
        key = (gpu_type, rec.spec.workload, rec.spec.qos, rec.gpus)
        got = self._ladders.get(key)
        if got is None:
            caps = (1.0, *self.steps) if self.capping and self.model.cappable(rec) else (1.0,)
            got = self._ladders[key] = tuple((c, self.model.added_w(rec, gpu_type, c)) for c in caps)
        return got

    def lowest_cap(self, rec: JobRecord) -> float:
        return self.steps[-1] if self.capping and self.steps and self.model.cappable(rec) else 1.0

    def floor_w(self, rec: JobRecord, gpu_type: str) -> float:
        """What ``rec`` adds at the lowest cap it may get."""
        return self.ladder(rec, gpu_type)[-1][1]

    def fit(self, rec: JobRecord, gpu_type: str, headroom_w: float) -> tuple[float, float] | None:
        """The highest cap at which ``rec`` fits ``headroom_w``: (cap fraction, added power), or None."""
        for c, p in self.ladder(rec, gpu_type):
            if p <= headroom_w:
                return c, p
        return None

    # -- phases run by the cycles ------------------------------------------------------------
    def shed(self, ctx: CycleContext) -> None:
        """Phase 0: get under a cap that dropped below the current draw, within this cycle (at each site)."""
        if self.sites:
            for site in self.sites:
                self._shed(ctx, site)
        else:
            self._shed(ctx, None)

    def _shed(self, ctx: CycleContext, site: str | None) -> None:
        excess = -ctx.power_headroom_w(site)
        if excess <= 1e-6:
            return
        snap = ctx.snap
        here = [r for r in snap.running.values() if site is None or r.site == site]
        if self.capping:
            for rec in sorted(here, key=lambda r: (-r.power_w, r.job_id)):
                if excess <= 1e-6:
                    return
                low, p = self.ladder(rec, rec.gpu_type)[-1]
                if rec.cap_fraction <= low:
                    continue
                excess -= rec.power_w - p
                ctx.recap(rec, low, p)
        for rec in sorted(here, key=lambda r: (-r.last_start_s, -r.job_id)):
            if excess <= 1e-6:
                return
            if rec.spec.preemptible:
                excess -= ctx.power_of(rec)
                ctx.preempt(rec)

    def make_room(
        self, ctx: CycleContext, rec: JobRecord, gpu_type: str, site: str | None = None
    ) -> tuple[float, float] | None:
        """Cap running full-power jobs (oldest first; at ``site`` when the fleet has several) so
        ``rec`` can start there at its lowest cap."""
        if not self.capping:
            return None
        headroom = ctx.power_headroom_w(site)
        need = self.floor_w(rec, gpu_type) - headroom
        if need <= 0:
            return self.fit(rec, gpu_type, headroom)
        if need > ctx.power_potential_w(site) - headroom:
            return None  # capping every full-power job would not free enough
        picks: list[tuple[JobRecord, float, float]] = []
        for run in ctx.snap.full_power.values():
            if run.job_id in ctx.recapped or run.job_id in ctx.preempted or (site is not None and run.site != site):
                continue
            c, p = self.ladder(run, run.gpu_type)[-1]
            if c >= 1.0:
                continue
            picks.append((run, c, p))
            need -= run.power_w - p
            if need <= 0:
                break
        if need > 0:
            return None
        for run, c, p in picks:
            ctx.recap(run, c, p)
        return self.fit(rec, gpu_type, ctx.power_headroom_w(site))

    def restore(self, ctx: CycleContext) -> None:
        """Last phase: when nothing waits on power, raise capped jobs back, oldest first (each
        within its own site's headroom when the fleet has several)."""
        if self.sites:
            left = {site: ctx.power_headroom_w(site) for site in self.sites}
            for rec in ctx.snap.capped.values():
                headroom = left[rec.site]
                if headroom <= 0 or rec.job_id in ctx.recapped or rec.job_id in ctx.preempted:
                    continue
                got = self.fit(rec, rec.gpu_type, headroom + rec.power_w)
                if got is None or got[0] <= rec.cap_fraction:
                    continue
                left[rec.site] = headroom - (got[1] - rec.power_w)
                ctx.recap(rec, got[0], got[1])
            return
        headroom = ctx.power_headroom_w()
        for rec in ctx.snap.capped.values():
            if headroom <= 0:
                return
            if rec.job_id in ctx.recapped or rec.job_id in ctx.preempted:
                continue
            got = self.fit(rec, rec.gpu_type, headroom + rec.power_w)
            if got is None or got[0] <= rec.cap_fraction:
                continue
            headroom -= got[1] - rec.power_w
            ctx.recap(rec, got[0], got[1])
