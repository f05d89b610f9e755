"""The ordered scheduling cycle shared by ``fifo``, ``easy-backfill`` and ``multifactor``.

Phases of one cycle:

0. **Shed** power if the facility cap fell below the draw (``steppe.scheduling.power``).
1. **Order**: walk pending jobs in the policy's priority order (the queue keeps it).
2. **Admit**: admission checks may hold a job with their reason; it does not block others.
3. **Start in order**: start each job whose gang fits, until the first that does not: the
   *head*, held with ``Resources``. Without backfill (strict FIFO, Slurm's builtin scheduler)
   the cycle stops here; every job behind the head waits with ``Priority``. A head that has GPUs
   but no power waits with ``PowerCap``.
4. **Reserve**: compute the head's shadow time and extra GPUs (``reservation.reserve``).
5. **Backfill**: start later jobs that fit now and either end (by walltime) before the shadow
   time or use only extra GPUs (and extra power), so the head is never delayed (EASY, Lifka 1995; Slurm's
   ``sched/backfill``). At most ``depth`` jobs are examined (Slurm's ``bf_max_job_test``),
   and the walk stops as soon as no GPU is free.

Worked example (8 GPUs, FIFO order A B C, 5 GPUs busy until t=100 by job R):
A wants 6 GPUs -> blocked, shadow time 100, extra 8 - 6 = 2.  B wants 2 GPUs for 500 s:
it ends after 100 but fits in the extra 2 -> starts. C wants 1 GPU for 50 s: 1 GPU still
free and it ends at 50 < 100 -> starts. At t=100 A starts on time.

**Memoisation.** If nothing started or stopped since the last cycle (the state's
``generation`` is unchanged) and no input of an admission check changed (their
``admission_epoch``: approvals, allocations, the date) and no check's wake-up time (a deferral
begin time) has passed, every job examined then would be refused again, so only jobs that
arrived since are examined, against the same reservation. A job that arrived ahead of the head
in queue order triggers a full cycle, and so does ``refresh_s`` elapsing (for orders that drift
with time). A cycle that found no head because admission checks held every job it examined
(a hub whose projects await review) is memoised too: arrivals that the checks hold again are
all there is to decide; one they admit, one ahead of the last job examined when the depth was
reached, or more arrivals than the depth leaves room for triggers a full cycle. Such a memo is
trusted for at most ``HELD_REFRESH_S`` (1 s; ``refresh_s`` if shorter): some checks' inputs
drift without an epoch (a project's GPU-hours being used up turns ``QOSGrpGRES`` into
``AssocGrpGRESMinutes``), and a held job's reason should follow within a second. Example: 500
jobs wait with ``AwaitingReview``; a new one of an unapproved project costs one admission
check, not 501. The result equals a full cycle's (a property test checks it); only the cost differs.

A cycle that fails part-way leaves the inventory as it found it: its tentative allocations
are rolled back and its memo dropped before the error propagates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from steppe.core.job import JobState, PendingReason
from steppe.core.plan import Plan, Reservation
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot
from steppe.scheduling.admission import DEFAULT_CHECKS, AdmissionCheck, admission_epoch, epoch_checks
from steppe.scheduling.context import CycleContext, timed_checks
from steppe.scheduling.placement import candidate_types
from steppe.scheduling.power import PowerBudget
from steppe.scheduling.reservation import reserve

HELD_REFRESH_S = 1.0  # how long a memo of a cycle whose checks held every job is trusted


@dataclass
class _Spare:
    """What backfill jobs that outlast the shadow time may still use."""

    gpus: int
    power_w: float


@dataclass
class _Memo:
    generation: int
    computed_s: float
    power_budget_w: float
    max_seq: int
    head: JobRecord | None  # None: admission checks held every job examined
    reservation: Reservation | None
    spare: _Spare
    depth_hit: bool
    epochs: tuple[object, ...]
    valid_until_s: float
    examined: int = 0  # jobs examined (for a memo without a head)
    last: JobRecord | None = None  # the last job examined
    queued: int = 0  # pending jobs then (one cancelled since: a full cycle may examine one more)


class OrderedCycle:
    """A priority-ordered cycle, with or without EASY backfill."""

    def __init__(
        self,
        *,
        backfill: bool,
        depth: int = 500,
        checks: Sequence[AdmissionCheck] = DEFAULT_CHECKS,
        refresh_s: float | None = None,
        power: PowerBudget | None = None,
    ) -> None:
        if depth < 1:
            raise ValueError("backfill depth must be >= 1")
        self.backfill = backfill
        self.depth = depth
        self.checks = tuple(checks)
        self._timed = timed_checks(self.checks)
        self._epoch_checks = epoch_checks(self.checks)
        self.refresh_s = refresh_s
        self.power = power
        self._memo: _Memo | None = None

    def run(self, snap: Snapshot, now: float) -> Plan:
        mark = snap.inventory.mark()
        try:
            memo = self._memo
            if memo is not None and self._memo_usable(memo, snap, now):
                return self._incremental(memo, snap, now)
            return self._full(snap, now)
        except BaseException:  # a failing check or policy: leave no tentative allocation behind
            snap.inventory.rollback_to(mark)
            self._memo = None
            raise

    # -- phases 1-5 --------------------------------------------------------------------------
    def _full(self, snap: Snapshot, now: float) -> Plan:
        ctx = CycleContext(snap, now, self.checks, self.power, self._timed)
        ctx.open()
        inv = snap.inventory
        head: JobRecord | None = None
        res: Reservation | None = None
        spare = _Spare(0, 0.0)
        examined = 0
        depth_hit = False
        max_seq = max((r.seq for r in snap.arrivals_since_change), default=0)
        single_type = len(inv.types) == 1
        power = self.power
        res_start = math.inf
        last_decided, potential_w = -1, math.inf
        power_short: dict[tuple[object, ...], float] = {}  # power only falls within a cycle
        min_job_w = power.least_need_w(snap.pending_kinds, inv.types) if power is not None else -math.inf
        last: JobRecord | None = None
        for rec in snap.queue.ordered(now):
            if rec.seq > max_seq:
                max_seq = rec.seq
            examined += 1
            if examined > self.depth:
                depth_hit = True
                break
            last = rec
            if head is not None:
                free = inv.total_free
                if free == 0:
                    break
                if power is not None:
                    decided = len(ctx.plan.starts) + len(ctx.plan.recaps)
                    if decided != last_decided:  # the power potential changes only with decisions
                        last_decided, potential_w = decided, ctx.power_potential_w()
                    if potential_w < min_job_w:
                        break
                if rec.gpus > free:
                    continue  # cannot fit anywhere now; keeps its reason
                if res is not None and now + rec.spec.walltime_s - rec.executed_s > res_start:
                    if spare.power_w < min_job_w or (single_type and rec.gpus > spare.gpus):
                        continue  # would delay the reservation's GPUs or power
                    if power is not None and power.floor_w(rec, res.gpu_type) > spare.power_w:
                        continue  # would delay the reservation's power
            reason = ctx.admit(rec)
            if reason is not None:
                ctx.hold(rec, reason)
                continue
            if head is None:
                if ctx.try_start(rec):
                    continue
                head = rec
                ctx.hold(rec, ctx.blocked)
                if not self.backfill:
                    break
                res = reserve(ctx, rec)
                res_start = res.start_s if res else math.inf
                spare = _Spare(res.extra_gpus, res.extra_power_w) if res else _Spare(0, 0.0)
                ctx.plan.reservation = res
                continue
            kind = (rec.spec.workload, rec.spec.gpu_type, rec.spec.qos)
            if power_short.get(kind, math.inf) <= rec.gpus:
                continue  # a job of this kind and no more GPUs already lacked power in this cycle
            started = len(ctx.plan.starts)
            ctx.blocked = PendingReason.RESOURCES
            self._backfill_one(ctx, rec, res, spare)
            if len(ctx.plan.starts) == started and ctx.blocked is PendingReason.POWER_CAP:
                power_short[kind] = min(power_short.get(kind, math.inf), rec.gpus)
        plan = ctx.close()
        if not plan.starts and not plan.recaps and not plan.preemptions:
            budget = self.power.it_budget_w(now) if self.power else 0.0
            epochs = admission_epoch(self._epoch_checks, now) if self._epoch_checks else ()
            valid_until = plan.wakeup_s if plan.wakeup_s is not None else math.inf
            if head is None:
                valid_until = min(valid_until, now + min(HELD_REFRESH_S, self.refresh_s or HELD_REFRESH_S))
            self._memo = _Memo(snap.generation, now, budget, max_seq, head, res, spare, depth_hit, epochs, valid_until,
                               min(examined, self.depth), last, len(snap.queue))  # fmt: skip
        else:
            self._memo = None
        return plan

    def _backfill_one(self, ctx: CycleContext, rec: JobRecord, res: Reservation | None, spare: _Spare) -> None:
        """Start ``rec`` if it cannot delay the reservation, updating what is spare."""
        inv = ctx.snap.inventory
        types = candidate_types(inv, rec.spec.gpu_type)
        if len(types) == 1:
            if inv.free_by_type[types[0]] < rec.gpus:
                return
        elif not any(inv.free_by_type[t] >= rec.gpus for t in types):
            return
        if res is None or ctx.now + rec.remaining_limit_s() <= res.start_s:
            ctx.try_start(rec)
            return
        # It outlasts the shadow time: it may use only GPUs and power the reserved job will not need.
        before_w = ctx.power_extra_w
        for t in types:
            if t != res.gpu_type and self._within(spare, 0, ctx, rec, t) and ctx.try_start(rec, t):
                spare.power_w -= ctx.power_extra_w - before_w
                return
        if (
            res.gpu_type in types
            and self._within(spare, rec.gpus, ctx, rec, res.gpu_type)
            and ctx.try_start(rec, res.gpu_type)
        ):
            spare.gpus -= rec.gpus
            spare.power_w -= ctx.power_extra_w - before_w

    @staticmethod
    def _within(spare: _Spare, gpus: int, ctx: CycleContext, rec: JobRecord, gpu_type: str) -> bool:
        if gpus > spare.gpus:
            return False
        if ctx.power is None:
            return True
        return ctx.power.floor_w(rec, gpu_type) <= spare.power_w

    # -- memoised cycle ----------------------------------------------------------------------
    def _memo_usable(self, memo: _Memo, snap: Snapshot, now: float) -> bool:
        if memo.generation != snap.generation or (memo.head is not None and memo.head.state is not JobState.PENDING):
            return False
        if now >= memo.valid_until_s:  # a held job's begin time (or another wake-up) has come
            return False
        if self._epoch_checks and admission_epoch(self._epoch_checks, now) != memo.epochs:
            return False
        if self.power is not None and self.power.it_budget_w(now) != memo.power_budget_w:
            return False
        return self.refresh_s is None or now - memo.computed_s < self.refresh_s

    def _incremental(self, memo: _Memo, snap: Snapshot, now: float) -> Plan:
        arrivals = [r for r in snap.arrivals_since_change if r.seq > memo.max_seq and r.state is JobState.PENDING]
        if memo.head is None:
            return self._incremental_held(memo, snap, now, arrivals)
        precedes = getattr(snap.queue, "precedes", None)
        if arrivals and (precedes is None or any(precedes(r, memo.head, now) for r in arrivals)):
            return self._full(snap, now)
        if not arrivals and self.power is None and not self._timed:
            return Plan()  # nothing to decide and no wake-up to ask for
        ctx = CycleContext(snap, now, self.checks, self.power, self._timed)
        ctx.power_waiting = True  # a full cycle found jobs waiting; leave capped jobs as they are
        if not arrivals:
            return ctx.close()  # nothing to decide; still ask for the wake-ups that are due
        memo.max_seq = max(r.seq for r in arrivals)
        if not self.backfill or (memo.depth_hit and not self.refresh_s):
            return ctx.close()
        spare = _Spare(memo.spare.gpus, memo.spare.power_w)
        for rec in arrivals:
            if snap.inventory.total_free == 0:
                break
            reason = ctx.admit(rec)
            if reason is not None:
                ctx.hold(rec, reason)
                continue
            self._backfill_one(ctx, rec, memo.reservation, spare)
        plan = ctx.close()
        if plan.starts or plan.recaps:
            self._memo = None
        else:
            memo.spare = spare
            if plan.wakeup_s is not None:  # an arrival held until a time (a begin time): look again then
                memo.valid_until_s = min(memo.valid_until_s, plan.wakeup_s)
        return plan

    def _incremental_held(self, memo: _Memo, snap: Snapshot, now: float, arrivals: list[JobRecord]) -> Plan:
        """The memoised cycle when the full one found no head: checks held every job it examined."""
        if len(snap.queue) != memo.queued + len(arrivals):  # a pending job left without a new generation (a cancel)
            return self._full(snap, now)
        if not arrivals and self.power is None and not self._timed:
            return Plan()
        new = arrivals
        if memo.depth_hit:  # the full cycle stopped at the depth: arrivals behind its last job stay unexamined
            precedes = getattr(snap.queue, "precedes", None)
            last = memo.last
            if arrivals and (precedes is None or last is None or any(precedes(r, last, now) for r in arrivals)):
                return self._full(snap, now)
            arrivals = []
        elif memo.examined + len(arrivals) > self.depth:
            return self._full(snap, now)
        ctx = CycleContext(snap, now, self.checks, self.power, self._timed)
        ctx.power_waiting = True  # nothing changed since the full cycle: leave capped jobs as they are
        held: list[tuple[JobRecord, PendingReason]] = []
        for rec in arrivals:
            reason = ctx.admit(rec)
            if reason is None:  # it may start or become the head: decide everything again
                return self._full(snap, now)
            held.append((rec, reason))
        for rec, reason in held:
            ctx.hold(rec, reason)
        plan = ctx.close()
        if new:
            memo.max_seq = max(r.seq for r in new)
            memo.examined += len(arrivals)
            memo.queued += len(new)
        if plan.wakeup_s is not None:  # an arrival held until a time (a begin time): look again then
            memo.valid_until_s = min(memo.valid_until_s, plan.wakeup_s)
        return plan
