"""The preemptive cycle shared by ``las`` and ``srtf``.

Phases of one cycle:

1. **Refresh** the queue's priorities that moved with time (LAS demotions and starvation
   promotions).
2. **Order**: walk pending jobs in priority order; admission checks may hold a job.
3. **Start** each job whose gang fits.
4. **Preempt** for a job that does not fit: take running jobs of strictly lower priority,
   lowest first (the queue's ``victims``), on one GPU type, until enough GPUs would be free;
   if they suffice, checkpoint-and-requeue them and start the job, else hold it with
   ``Resources`` and go on (the cycle is work-conserving). Once no GPU is free and the job
   found no victims, no later (lower-priority) job can do better and the walk stops.
   A later job's victims are a subset of an earlier job's (they must rank strictly below it),
   and free GPUs plus victims' GPUs only shrink within a cycle (a start takes GPUs, a
   preemption moves a victim's GPUs to free); so once a job of ``g`` GPUs found too few
   (without power scheduling, where GPUs alone decide), every later job of the same GPU type
   request and at least ``g`` GPUs is held with ``Resources`` without trying again.
5. **Wake-up**: ask to run again when the next priority change is due.

Example: 4 GPUs, all held by job R (4 GPUs, lower priority). Job P (2 GPUs) arrives: R is
preempted and requeued with its progress kept; P starts on 2 GPUs; 2 stay free for the
next job in order (R itself no longer fits them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from steppe.core.job import PendingReason
from steppe.core.plan import Plan
from steppe.core.records import JobRecord
from steppe.core.state import PendingQueue, Snapshot
from steppe.scheduling.context import CycleContext
from steppe.scheduling.placement import candidate_pools

_NEVER = 1 << 62


class PreemptiveQueue(PendingQueue, Protocol):
    """A pending queue that also ranks running jobs as preemption victims.

    ``victims(rec)`` are running jobs of strictly lower priority than ``rec``, lowest first; so
    a job later in ``ordered`` never has a victim an earlier one lacked.
    """

    def refresh(self, now: float) -> None: ...

    def victims(self, rec: JobRecord, now: float) -> Iterator[JobRecord]: ...

    def may_preempt(self, rec: JobRecord, now: float) -> bool:
        """False when no running job ranks strictly below ``rec`` (``victims`` would yield nothing);
        one comparison, so the cycle skips the walk for most jobs."""
        ...

    def next_wakeup(self, now: float) -> float | None: ...


def preemptive_cycle(ctx: CycleContext, snap: Snapshot, now: float, queue: PreemptiveQueue, depth: int) -> Plan:
    """One cycle over ``snap`` (see the module docstring); ``ctx`` holds the checks, the power
    rules and the cycle's trials (never the state's)."""
    queue.refresh(now)
    ctx.begin(snap, now)
    ctx.open()
    inv = ctx.inv
    taken = ctx.preempted
    # GPU type -> fewest GPUs found short (not with power, nor where jobs of one type may be kept to other sites)
    short: dict[str | None, int] | None = {} if ctx.power is None and not ctx.site_rules_on else None
    for examined, rec in enumerate(queue.ordered(now)):
        if examined >= depth:
            break
        reason = ctx.admit(rec)
        if reason is not None:
            ctx.hold(rec, reason)
            continue
        gpu_type = rec.spec.gpu_type
        if short is not None and short.get(gpu_type, _NEVER) <= rec.gpus:
            ctx.hold(rec, PendingReason.RESOURCES)  # an earlier job with more victims and fewer GPUs failed
        else:
            if rec.gpus <= inv.total_free:
                if ctx.try_start(rec):
                    continue
                blocked = ctx.blocked
            else:
                blocked = PendingReason.RESOURCES  # as a try would say: no placement (and no side effect)
            # without victims, and without power (where another GPU type may draw less), a
            # preemption walk could only repeat the failed try
            if (short is None or queue.may_preempt(rec, now)) and _preempt_for(ctx, queue, rec, taken):
                continue
            ctx.hold(rec, blocked)
            if short is not None and rec.gpus < short.get(gpu_type, _NEVER):
                short[gpu_type] = rec.gpus
        if inv.total_free == 0 and (
            not queue.may_preempt(rec, now) or next(_eligible(queue.victims(rec, now), taken), None) is None
        ):
            break
    wake = queue.next_wakeup(now)
    if wake is not None:
        ctx.plan.wake_at(wake)
    return ctx.close()


def _eligible(victims: Iterator[JobRecord], taken: set[int]) -> Iterator[JobRecord]:
    return (v for v in victims if v.spec.preemptible and v.job_id not in taken)


def _preempt_for(ctx: CycleContext, queue: PreemptiveQueue, rec: JobRecord, taken: set[int]) -> bool:
    inv = ctx.inv
    for t in candidate_pools(inv, rec.spec.gpu_type, ctx.sites_of(rec) if ctx.site_rules_on else None):
        if inv.total_by_pool[t] < rec.gpus:
            continue
        free = inv.free_by_pool[t]
        site = inv.pool_site[t] if ctx.power_sites else None  # with several sites, power is its site's
        headroom, need_w = ctx.power_headroom_w(site), 0.0
        if ctx.power is not None:
            need_w = ctx.power.floor_w(rec, inv.pool_type[t])
        picked: list[JobRecord] = []
        for victim in _eligible(queue.victims(rec, ctx.now), taken):
            if site is not None and victim.site != site:
                continue  # another site's job frees neither GPUs of this pool nor power at its site
            if victim.pool != t and free >= rec.gpus:
                continue  # GPUs suffice; only power is short, and any type frees power
            if victim.pool == t:
                free += victim.gpus
            picked.append(victim)
            headroom += ctx.power_of(victim)
            if free >= rec.gpus and headroom >= need_w:
                break
        if free < rec.gpus or headroom < need_w:
            continue
        for victim in picked:
            ctx.preempt(victim)
        if ctx.try_start(rec, t):
            return True
    return False
