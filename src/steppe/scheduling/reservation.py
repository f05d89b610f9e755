"""When will a blocked job's GPUs (and power) be free? EASY backfill's shadow time and extras.

Walk running jobs in order of expected end (start + walltime limit), adding the GPUs each
frees in the job's pool (its site's GPUs of its type) and the power it frees, until both the free GPUs and the power
headroom reach what the job needs (its power at the lowest cap it may run at). That end is
the *shadow time*; GPUs and power beyond the need at that moment are *extra* and may be used
by backfill jobs of any length.

Example: 4 GPUs free, the head wants 8; running jobs end at t=100 (2 GPUs) and t=200
(4 GPUs). At t=100 6 are free, at t=200 10: shadow time 200, extra 2.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator

from steppe.core.plan import Reservation
from steppe.core.records import JobRecord
from steppe.scheduling.context import CycleContext
from steppe.scheduling.placement import candidate_pools


def _ends(ctx: CycleContext) -> Iterator[tuple[float, int, int, str, float]]:
    """(expected end, job id, GPUs, pool, power) of running jobs and of jobs started in this cycle."""
    snap = ctx.snap
    if not ctx.started and not ctx.preempted and not ctx.recapped:  # nothing decided yet: the index as it is
        on = snap.running
        return ((end, jid, (r := on[jid]).gpus, r.pool, r.power_w) for end, jid in snap.running_by_end)
    running = (
        (end, jid, snap.running[jid].gpus, snap.running[jid].pool, ctx.power_of(snap.running[jid]))
        for end, jid in snap.running_by_end
        if jid not in ctx.preempted
    )
    started = sorted((end, rec.job_id, rec.gpus, t, p) for end, rec, t, p in ctx.started)
    return heapq.merge(running, started)


def reserve(ctx: CycleContext, rec: JobRecord) -> Reservation | None:
    """The earliest reservation for ``rec`` over the pools it may use, or None if it never fits."""
    inv = ctx.inv
    best: Reservation | None = None
    for t in candidate_pools(inv, rec.spec.gpu_type, ctx.sites_of(rec) if ctx.site_rules_on else None):
        if inv.total_by_pool[t] < rec.gpus:
            continue
        need_w = 0.0
        headroom = math.inf
        site = inv.pool_site[t] if ctx.power_sites else None  # with several sites, power is its site's
        if ctx.power is not None:
            need_w = ctx.power.floor_w(rec, inv.pool_type[t])
            headroom = ctx.power_headroom_w(site)
        free = inv.free_by_pool[t]
        shadow = ctx.now
        if ctx.power is None:  # GPUs only: one plain walk (the common case, once per blocked cycle)
            if free < rec.gpus:
                found = _gpus_free_at(ctx, t, free, rec.gpus)
                if found is None:
                    continue
                shadow, free = found
        elif free < rec.gpus or headroom < need_w:
            for end, _, gpus, pool, power_w in _ends(ctx):
                if pool == t:
                    free += gpus
                if site is None or inv.pool_site[pool] == site:
                    headroom += power_w
                shadow = max(end, ctx.now)
                if free >= rec.gpus and headroom >= need_w:
                    break
            if free < rec.gpus or headroom < need_w:
                continue
        if best is None or shadow < best.start_s:
            best = Reservation(rec.job_id, shadow, t, free - rec.gpus, headroom - need_w)
    return best


def _gpus_free_at(ctx: CycleContext, pool: str, free: int, need: int) -> tuple[float, int] | None:
    """``(shadow time, free GPUs then)``: the first expected end (running jobs, and jobs started
    in this cycle) after which ``need`` GPUs of ``pool`` are free; None if never. The walk of
    ``_ends`` without power, as two plain loops merged by ``(end, job id)``."""
    snap, now, preempted = ctx.snap, ctx.now, ctx.preempted
    running = snap.running
    started = sorted((end, r.job_id, r.gpus, t) for end, r, t, _ in ctx.started) if ctx.started else []
    i, n = 0, len(started)
    for end, job_id in snap.running_by_end:
        while i < n and (started[i][0], started[i][1]) < (end, job_id):
            s_end, _, gpus, t = started[i]
            i += 1
            if t == pool:
                free += gpus
                if free >= need:
                    return max(s_end, now), free
        if preempted and job_id in preempted:
            continue
        r = running[job_id]
        if r.pool == pool:
            free += r.gpus
            if free >= need:
                return max(end, now), free
    for s_end, _, gpus, t in started[i:]:
        if t == pool:
            free += gpus
            if free >= need:
                return max(s_end, now), free
    return None
