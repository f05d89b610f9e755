"""When will a blocked job's GPUs be free? EASY backfill's shadow time and extra GPUs.

Walk running jobs in order of expected end (start + walltime limit), adding the GPUs each
frees on the job's GPU type, until the free GPUs reach what the job needs. That end is the
*shadow time*; GPUs beyond the need at that moment are *extra* and may be used by backfill
jobs of any length.

Example: 4 GPUs free, the head wants 8; running jobs end at t=100 (2 GPUs) and t=200
(4 GPUs). At t=100 6 are free, at t=200 10: shadow time 200, extra 2.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from steppe.core.plan import Reservation
from steppe.core.records import JobRecord
from steppe.scheduling.context import CycleContext
from steppe.scheduling.placement import candidate_types


def _ends(ctx: CycleContext) -> Iterator[tuple[float, int, str]]:
    """(expected end, GPUs, type) of running jobs and of jobs started earlier in this cycle."""
    snap = ctx.snap
    running = ((end, snap.running[jid].gpus, snap.running[jid].gpu_type) for end, jid in snap.running_by_end)
    started = sorted((end, rec.gpus, t) for end, rec, t in ctx.started)
    return heapq.merge(running, started)


def reserve(ctx: CycleContext, rec: JobRecord) -> Reservation | None:
    """The earliest reservation for ``rec`` over its allowed GPU types, or None if it never fits."""
    inv = ctx.snap.inventory
    best: Reservation | None = None
    for t in candidate_types(inv, rec.spec.gpu_type):
        if inv.total_by_type[t] < rec.gpus:
            continue
        free = inv.free_by_type[t]
        shadow = ctx.now
        if free < rec.gpus:
            for end, gpus, gtype in _ends(ctx):
                if gtype != t:
                    continue
                free += gpus
                shadow = max(end, ctx.now)
                if free >= rec.gpus:
                    break
            if free < rec.gpus:
                continue
        if best is None or shadow < best.start_s:
            best = Reservation(rec.job_id, shadow, t, free - rec.gpus)
    return best
