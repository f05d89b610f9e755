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
arrived since are examined, against the same reservation, and they count toward ``depth`` as in
a full cycle (more than it has room for call for one). A job that arrived ahead of the head
in queue order triggers a full cycle, and so does ``refresh_s`` elapsing or the order's inputs
being recalculated (orders that drift with time: multifactor's fair share, ``order_epoch``).
A cycle that found no head because a check held every job it examined (a queue awaiting review)
is memoised too: then only arrivals are checked, and one that no check holds calls for a full
cycle. If that cycle stopped at ``depth`` jobs, an arrival behind the last job it examined is
not examined at all (a full cycle would not reach it either), so a queue of thousands awaiting
review costs nothing per submission; an arrival ahead of it calls for a full cycle. The result
equals a full cycle's (a property test checks it); only the cost differs.

A cycle never writes the state: its trial allocations live on the cycle context's overlay
(``steppe.scheduling.context``), so one that fails part-way leaves the state as it found it;
its memo is dropped before the error propagates.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cmp_to_key
from itertools import islice

from steppe.core.job import JobState, PendingReason
from steppe.core.plan import Plan, Reservation
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot
from steppe.scheduling.admission import DEFAULT_CHECKS, AdmissionCheck, admission_epoch, epoch_checks
from steppe.scheduling.context import CycleContext, timed_checks
from steppe.scheduling.placement import candidate_pools
from steppe.scheduling.power import PowerBudget
from steppe.scheduling.reservation import reserve


@dataclass
class _Spare:
    """What backfill jobs that outlast the shadow time may still use."""

    gpus: int
    power_w: float


_NO_SPARE = _Spare(0, 0.0)  # without a reservation nothing is spare (and nothing changes it)


@dataclass
class _Memo:
    generation: int
    computed_s: float
    power_budget_w: float | tuple[float, ...]  # the IT budget (per site, with several sites)
    max_seq: int
    head: JobRecord | None  # None: every job the cycle examined was held by a check (none blocked)
    reservation: Reservation | None
    spare: _Spare
    depth_hit: bool
    epochs: tuple[object, ...]
    valid_until_s: float
    seen: int  # arrivals (``arrivals_since_change``) already looked at
    last: JobRecord | None  # the last job examined, when the walk stopped at ``depth``
    room: float  # how many arrivals a full cycle would still examine (inf: the walk ran out of GPUs or power)
    order: float | None  # the queue's ``order_epoch`` (orders that drift with time), else None


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
        self._ctx = CycleContext(self.checks, power)
        self._epoch_checks = epoch_checks(self.checks)
        self.refresh_s = refresh_s
        self.power = power
        self._memo: _Memo | None = None
        self._plain = power is None and not self._timed  # no power to shed, no wake-up: no jobs, no decision

    def run(self, snap: Snapshot, now: float) -> Plan:
        if self._plain and not len(snap.queue):  # nothing waits, no power to shed, no wake-up to ask for
            self._memo = None
            return Plan()
        try:
            memo = self._memo
            if memo is not None and self._memo_usable(memo, snap, now):
                return self._incremental(memo, snap, now)
            return self._full(snap, now)
        except BaseException:  # a failing check or policy: its trials die with the overlay; forget the memo
            self._memo = None
            raise

    # -- phases 1-5 --------------------------------------------------------------------------
    def _full(self, snap: Snapshot, now: float) -> Plan:
        ctx = self._ctx
        # the external inputs, read before the cycle reads them: one that changes meanwhile
        # (an engine coming back) then differs from the memo's, and the next cycle is full
        epochs = admission_epoch(self._epoch_checks, now) if self._epoch_checks else ()
        ctx.begin(snap, now)
        ctx.open()
        head: JobRecord | None = None
        res: Reservation | None = None
        spare = _NO_SPARE  # replaced (never changed) once a reservation is made
        stopped = False  # the walk ended before running out of depth
        power = self.power
        ordered = snap.queue.ordered(now)
        walk = islice(ordered, self.depth)
        rec = None
        for rec in walk:  # phases 2-3: admit and start in order, up to the head
            reason = ctx.admit(rec)
            if reason is not None:
                ctx.hold(rec, reason)
                continue
            if ctx.try_start(rec):
                continue
            head = rec
            ctx.hold(rec, ctx.blocked)
            if not self.backfill:
                stopped = True
                break
            res = reserve(ctx, rec)  # phase 4
            if res is not None:
                spare = _Spare(res.extra_gpus, res.extra_power_w)
            ctx.plan.reservation = res
            break
        if head is not None and self.backfill:
            stopped = self._backfill_walk(ctx, walk, res, spare)
        plan = ctx.close()
        if not plan.starts and not plan.recaps and not plan.preemptions:
            depth_hit = not stopped and next(ordered, None) is not None
            if head is None and (not len(snap.queue) or (depth_hit and not hasattr(snap.queue, "precedes"))):
                self._memo = None  # none waits, or jobs never looked at may come before arrivals
                return plan
            budget = power.budget_key(now) if power else 0.0
            valid_until = plan.wakeup_s if plan.wakeup_s is not None else math.inf
            max_seq = snap.last_seq  # every job that exists now has been seen (or cannot precede the head)
            seen = len(snap.arrivals_since_change)
            last = rec if head is None and depth_hit else None
            room = math.inf if stopped else 0 if depth_hit else self.depth - len(snap.queue)  # the walk saw them all
            order = self._order_epoch(snap, now)
            self._memo = _Memo(
                snap.generation, now, budget, max_seq, head, res, spare, depth_hit, epochs, valid_until, seen, last,
                room, order,
            )
        else:
            self._memo = None
        return plan

    def _backfill_walk(
        self, ctx: CycleContext, walk: Iterator[JobRecord], res: Reservation | None, spare: _Spare
    ) -> bool:
        """Phase 5 over the rest of the walk; True when it stopped early (no GPU or power left)."""
        inv, now, power = ctx.inv, ctx.now, self.power
        single_pool = len(inv.pools) == 1
        by_site = ctx.power_sites  # the reservation's spare power is its site's: other sites' jobs leave it
        restricted = by_site and ctx.site_rules_on  # jobs of one kind may be kept to different sites
        res_start = res.start_s if res is not None else math.inf
        last_decided, potential_w = -1, math.inf
        power_short: dict[tuple[object, ...], float] = {}  # power only falls within a cycle
        min_job_w = power.least_need_w(ctx.snap.pending_kinds, inv.gpu_types) if power is not None else -math.inf
        for rec in walk:
            free = inv.total_free
            if free == 0:
                return True
            if power is not None:
                decided = len(ctx.plan.starts) + len(ctx.plan.recaps)
                if decided != last_decided:  # the power potential changes only with decisions
                    last_decided, potential_w = decided, ctx.power_potential_w()
                if potential_w < min_job_w:
                    return True
            if rec.gpus > free:
                continue  # cannot fit anywhere now; keeps its reason
            if res is not None and now + rec.spec.walltime_s - rec.executed_s > res_start:
                if (spare.power_w < min_job_w and not by_site) or (single_pool and rec.gpus > spare.gpus):
                    continue  # would delay the reservation's GPUs or power
                if power is not None and not by_site and power.floor_w(rec, inv.pool_type[res.pool]) > spare.power_w:
                    continue  # would delay the reservation's power
            reason = ctx.admit(rec)
            if reason is not None:
                ctx.hold(rec, reason)
                continue
            kind = (rec.spec.workload, rec.spec.gpu_type, rec.spec.qos)
            if power_short.get(kind, math.inf) <= rec.gpus:
                continue  # a job of this kind and no more GPUs already lacked power in this cycle
            started = len(ctx.plan.starts)
            ctx.blocked = PendingReason.RESOURCES
            self._backfill_one(ctx, rec, res, spare)
            if len(ctx.plan.starts) == started and ctx.blocked is PendingReason.POWER_CAP and not restricted:
                power_short[kind] = min(power_short.get(kind, math.inf), rec.gpus)
        return False

    def _backfill_one(self, ctx: CycleContext, rec: JobRecord, res: Reservation | None, spare: _Spare) -> None:
        """Start ``rec`` if it cannot delay the reservation, updating what is spare."""
        inv = ctx.inv
        pools = candidate_pools(inv, rec.spec.gpu_type, ctx.sites_of(rec) if ctx.site_rules_on else None)
        if len(pools) == 1:
            if inv.free_by_pool[pools[0]] < rec.gpus:
                return
        elif not any(inv.free_by_pool[t] >= rec.gpus for t in pools):
            return
        if res is None or ctx.now + rec.remaining_limit_s() <= res.start_s:
            ctx.try_start(rec)
            return
        # It outlasts the shadow time: it may use only GPUs and power the reserved job will not need.
        before_w = self._power_at(ctx, res.pool)
        for t in pools:
            if t != res.pool and self._within(spare, 0, ctx, rec, t, res.pool) and ctx.try_start(rec, t):
                spare.power_w -= self._power_at(ctx, res.pool) - before_w
                return
        if (
            res.pool in pools
            and self._within(spare, rec.gpus, ctx, rec, res.pool, res.pool)
            and ctx.try_start(rec, res.pool)
        ):
            spare.gpus -= rec.gpus
            spare.power_w -= self._power_at(ctx, res.pool) - before_w

    @staticmethod
    def _power_at(ctx: CycleContext, pool: str) -> float:
        """Power this cycle has added so far where ``pool`` draws (its site's, with several sites)."""
        return ctx.site_extra_w[ctx.inv.pool_site[pool]] if ctx.power_sites else ctx.power_extra_w

    @staticmethod
    def _within(spare: _Spare, gpus: int, ctx: CycleContext, rec: JobRecord, pool: str, reserved: str) -> bool:
        if gpus > spare.gpus:
            return False
        if ctx.power is None:
            return True
        if ctx.power_sites and ctx.inv.pool_site[pool] != ctx.inv.pool_site[reserved]:
            return True  # another site's power: the reserved job does not need it
        return ctx.power.floor_w(rec, ctx.inv.pool_type[pool]) <= spare.power_w

    # -- memoised cycle ----------------------------------------------------------------------
    def _memo_usable(self, memo: _Memo, snap: Snapshot, now: float) -> bool:
        if memo.generation != snap.generation:
            return False
        if memo.head is not None and memo.head.state is not JobState.PENDING:
            return False
        if now >= memo.valid_until_s:  # a held job's begin time (or another wake-up) has come
            return False
        if self._epoch_checks and admission_epoch(self._epoch_checks, now) != memo.epochs:
            return False
        if self.power is not None and self.power.budget_key(now) != memo.power_budget_w:
            return False
        if self.refresh_s is None:
            return True
        return now - memo.computed_s < self.refresh_s and self._order_epoch(snap, now) == memo.order

    def _order_epoch(self, snap: Snapshot, now: float) -> float | None:
        """For an order that drifts with time (``refresh_s``): when the inputs it uses at ``now`` were
        calculated (multifactor's fair-share factors, ``MultifactorQueue.order_epoch``); None otherwise."""
        if self.refresh_s is None:
            return None
        order_epoch = getattr(snap.queue, "order_epoch", None)
        return order_epoch(now) if order_epoch is not None else None

    def _incremental(self, memo: _Memo, snap: Snapshot, now: float) -> Plan:
        arrived = snap.arrivals_since_change  # only grows while the generation stands
        seen = memo.seen
        if len(arrived) < seen:
            return self._full(snap, now)
        memo.seen = len(arrived)
        arrivals = [r for r in arrived[seen:] if r.seq > memo.max_seq and r.state is JobState.PENDING]
        if memo.head is None:
            return self._held_arrivals(memo, snap, now, arrivals)
        precedes = getattr(snap.queue, "precedes", None)
        if arrivals and (precedes is None or any(precedes(r, memo.head, now) for r in arrivals)):
            return self._full(snap, now)
        if arrivals:
            memo.max_seq = max(r.seq for r in arrivals)
            if precedes is not None and len(arrivals) > 1:  # walk them in the queue's order, as a full cycle
                arrivals.sort(key=cmp_to_key(lambda a, b: -1 if precedes(a, b, now) else 1))
        decides = bool(arrivals) and self.backfill and not (memo.depth_hit and not self.refresh_s)
        if decides and not memo.depth_hit:  # a full cycle examines arrivals only up to the depth
            if len(arrivals) > memo.room:
                return self._full(snap, now)
            memo.room -= len(arrivals)
        if not decides and self._plain:
            return Plan()  # arrivals behind the head that cannot pass it, and no wake-up to ask for
        ctx = self._ctx
        ctx.begin(snap, now)
        ctx.power_waiting = True  # a full cycle found jobs waiting; leave capped jobs as they are
        if not decides:
            return ctx.close()  # nothing to decide; still ask for the wake-ups that are due
        spare = _Spare(memo.spare.gpus, memo.spare.power_w)
        self._backfill_walk(ctx, iter(arrivals), memo.reservation, spare)  # as a full cycle's walk would
        plan = ctx.close()
        if plan.starts or plan.recaps:
            self._memo = None
        else:
            memo.spare = spare
            if plan.wakeup_s is not None:  # an arrival held until a time (a begin time): look again then
                memo.valid_until_s = min(memo.valid_until_s, plan.wakeup_s)
        return plan

    def _held_arrivals(self, memo: _Memo, snap: Snapshot, now: float, arrivals: list[JobRecord]) -> Plan:
        """The memoised cycle found every job it examined held by a check (say, all awaiting
        review): they would all be held again, so only arrivals are looked at. An arrival no
        check holds calls for a full cycle; so does a queue now longer than the depth, unless
        the memoised cycle already stopped at the depth and every arrival comes after the last
        job it examined (then no cycle would examine them)."""
        if arrivals:
            memo.max_seq = max(r.seq for r in arrivals)
            last = memo.last
            if last is not None:
                precedes = getattr(snap.queue, "precedes", None)
                gone = last.state is not JobState.PENDING
                if precedes is None or gone or any(precedes(r, last, now) for r in arrivals):
                    return self._full(snap, now)
                arrivals = []  # behind the depth: left as they are, as a full cycle leaves them
            elif len(arrivals) > memo.room:  # the queue grew past the depth
                return self._full(snap, now)
            else:
                memo.room -= len(arrivals)
        if not arrivals and self._plain:
            return Plan()
        ctx = self._ctx
        ctx.begin(snap, now)
        ctx.power_waiting = True  # nobody waited on power in the full cycle; leave caps as they are
        for rec in arrivals:
            reason = ctx.admit(rec)
            if reason is None:
                return self._full(snap, now)
            ctx.hold(rec, reason)
        plan = ctx.close()
        if plan.wakeup_s is not None:
            memo.valid_until_s = min(memo.valid_until_s, plan.wakeup_s)
        return plan
