"""The ordered scheduling cycle shared by ``fifo``, ``easy-backfill`` and ``multifactor``.

Phases of one cycle:

1. **Order**: walk pending jobs in the policy's priority order (the queue keeps it).
2. **Admit**: admission checks may hold a job with their reason; it does not block others.
3. **Start in order**: start each job whose gang fits, until the first that does not: the
   *head*, held with ``Resources``. Without backfill (strict FIFO, Slurm's builtin scheduler)
   the cycle stops here; every job behind the head waits with ``Priority``.
4. **Reserve**: compute the head's shadow time and extra GPUs (``reservation.reserve``).
5. **Backfill**: start later jobs that fit now and either end (by walltime) before the shadow
   time or use only extra GPUs, so the head is never delayed (EASY, Lifka 1995; Slurm's
   ``sched/backfill``). At most ``depth`` jobs are examined (Slurm's ``bf_max_job_test``),
   and the walk stops as soon as no GPU is free.

Worked example (8 GPUs, FIFO order A B C, 5 GPUs busy until t=100 by job R):
A wants 6 GPUs -> blocked, shadow time 100, extra 8 - 6 = 2.  B wants 2 GPUs for 500 s:
it ends after 100 but fits in the extra 2 -> starts. C wants 1 GPU for 50 s: 1 GPU still
free and it ends at 50 < 100 -> starts. At t=100 A starts on time.

**Memoisation.** If nothing started or stopped since the last cycle (the state's
``generation`` is unchanged), every job examined then would be refused again, so only jobs
that arrived since are examined, against the same reservation. A job that arrived ahead of
the head in queue order triggers a full cycle, and so does ``refresh_s`` elapsing (for
orders that drift with time). The result equals a full cycle's; only the cost differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from steppe.core.job import JobState, PendingReason
from steppe.core.plan import Plan, Reservation
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot
from steppe.scheduling.admission import DEFAULT_CHECKS, AdmissionCheck
from steppe.scheduling.context import CycleContext
from steppe.scheduling.placement import candidate_types
from steppe.scheduling.reservation import reserve


@dataclass
class _Memo:
    generation: int
    computed_s: float
    max_seq: int
    head: JobRecord
    reservation: Reservation | None
    extra: int
    depth_hit: bool


class OrderedCycle:
    """A priority-ordered cycle, with or without EASY backfill."""

    def __init__(
        self,
        *,
        backfill: bool,
        depth: int = 500,
        checks: Sequence[AdmissionCheck] = DEFAULT_CHECKS,
        refresh_s: float | None = None,
    ) -> None:
        if depth < 1:
            raise ValueError("backfill depth must be >= 1")
        self.backfill = backfill
        self.depth = depth
        self.checks = tuple(checks)
        self.refresh_s = refresh_s
        self._memo: _Memo | None = None

    def run(self, snap: Snapshot, now: float) -> Plan:
        memo = self._memo
        if memo is not None and self._memo_usable(memo, snap, now):
            return self._incremental(memo, snap, now)
        return self._full(snap, now)

    # -- phases 1-5 --------------------------------------------------------------------------
    def _full(self, snap: Snapshot, now: float) -> Plan:
        ctx = CycleContext(snap, now, self.checks)
        inv = snap.inventory
        head: JobRecord | None = None
        res: Reservation | None = None
        extra = 0
        examined = 0
        depth_hit = False
        max_seq = max((r.seq for r in snap.arrivals_since_change), default=0)
        single_type = len(inv.types) == 1
        for rec in snap.queue.ordered(now):
            if rec.seq > max_seq:
                max_seq = rec.seq
            examined += 1
            if examined > self.depth:
                depth_hit = True
                break
            if head is not None:
                free = inv.total_free
                if free == 0:
                    break
                if rec.gpus > free:
                    continue  # cannot fit anywhere now; keeps its reason
                if (
                    single_type
                    and res is not None
                    and rec.gpus > extra
                    and now + rec.remaining_limit_s() > res.start_s
                ):
                    continue  # would delay the reservation
            reason = ctx.admit(rec)
            if reason is not None:
                ctx.hold(rec, reason)
                continue
            if head is None:
                if ctx.try_start(rec):
                    continue
                head = rec
                ctx.hold(rec, PendingReason.RESOURCES)
                if not self.backfill:
                    break
                res = reserve(ctx, rec)
                extra = res.extra_gpus if res else 0
                ctx.plan.reservation = res
                continue
            extra = self._backfill_one(ctx, rec, res, extra)
        plan = ctx.close()
        if head is not None and not plan.starts:
            self._memo = _Memo(snap.generation, now, max_seq, head, res, extra, depth_hit)
        else:
            self._memo = None
        return plan

    def _backfill_one(self, ctx: CycleContext, rec: JobRecord, res: Reservation | None, extra: int) -> int:
        """Start ``rec`` if it cannot delay the reservation; returns the extra GPUs left."""
        inv = ctx.snap.inventory
        types = candidate_types(inv, rec.spec.gpu_type)
        if len(types) == 1:
            if inv.free_by_type[types[0]] < rec.gpus:
                return extra
        elif not any(inv.free_by_type[t] >= rec.gpus for t in types):
            return extra
        if res is None or ctx.now + rec.remaining_limit_s() <= res.start_s:
            ctx.try_start(rec)
            return extra
        for t in types:
            if t != res.gpu_type and ctx.try_start(rec, t):
                return extra
        if res.gpu_type in types and rec.gpus <= extra and ctx.try_start(rec, res.gpu_type):
            return extra - rec.gpus
        return extra

    # -- memoised cycle ----------------------------------------------------------------------
    def _memo_usable(self, memo: _Memo, snap: Snapshot, now: float) -> bool:
        if memo.generation != snap.generation or memo.head.state is not JobState.PENDING:
            return False
        return self.refresh_s is None or now - memo.computed_s < self.refresh_s

    def _incremental(self, memo: _Memo, snap: Snapshot, now: float) -> Plan:
        arrivals = [r for r in snap.arrivals_since_change if r.seq > memo.max_seq and r.state is JobState.PENDING]
        if not arrivals:
            return Plan()
        precedes = getattr(snap.queue, "precedes", None)
        if precedes is None or any(precedes(r, memo.head, now) for r in arrivals):
            return self._full(snap, now)
        memo.max_seq = max(r.seq for r in arrivals)
        if not self.backfill or (memo.depth_hit and not self.refresh_s):
            return Plan()
        ctx = CycleContext(snap, now, self.checks)
        extra = memo.extra
        for rec in arrivals:
            if snap.inventory.total_free == 0:
                break
            reason = ctx.admit(rec)
            if reason is not None:
                ctx.hold(rec, reason)
                continue
            extra = self._backfill_one(ctx, rec, memo.reservation, extra)
        plan = ctx.close()
        if plan.starts:
            self._memo = None
        else:
            memo.extra = extra
        return plan
