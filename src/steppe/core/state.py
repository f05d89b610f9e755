"""The hub's state and its single writer.

``HubState`` holds the incremental indexes a scheduling cycle reads (free GPUs per node, the
pending queue in policy order, running jobs by expected end, tenants' GPUs in use). Decayed
usage, which only fair share reads, is kept by the multifactor queue from the starts and stops
the state passes on to its queue. Policies read the state through the ``Snapshot`` protocol and
never change it (a cycle's trials live on its own overlay). Only the writer methods here (``submit``, ``apply``,
``finish``, ``cancel``) change it; each change is announced to listeners (metrics, invariant
checks, the event log), so nothing else needs to poll.

Applying a plan verifies each entry against the current state and commits what still fits:
a start whose job is no longer pending, whose GPUs are gone or whose tenant would exceed its
quota is refused and reported, the rest of the plan still applies.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from steppe.core.cluster import Cluster, TenantSpec
from steppe.core.inventory import Allocation, GpuInventory
from steppe.core.job import TERMINAL_STATES, JobSpec, JobState, PendingReason, can_transition
from steppe.core.plan import Plan, Start
from steppe.core.records import JobRecord, PendingKind, pending_kind
from steppe.core.usage import DecayedUsage

__all__ = ["Applied", "HubState", "PendingKind", "PendingQueue", "Snapshot", "StateListener", "pending_kind"]


class PendingQueue(Protocol):
    """Pending jobs in a policy's priority order, kept incrementally.

    A queue whose order does not depend on what runs may say ``tracks_running = False``; the
    state then does not call its ``on_start`` and ``on_stop``.
    """

    def add(self, rec: JobRecord, now: float) -> None: ...

    def remove(self, rec: JobRecord) -> None: ...

    def ordered(self, now: float) -> Iterator[JobRecord]: ...

    def on_start(self, rec: JobRecord, now: float) -> None: ...

    def on_stop(self, rec: JobRecord, now: float) -> None: ...

    def __len__(self) -> int: ...


class StateListener(Protocol):
    """Told of every change the writer makes. A listener may also define
    ``on_recap(rec, now)``, called when a running job's power cap changes."""

    def on_submit(self, rec: JobRecord, now: float) -> None: ...

    def on_start(self, rec: JobRecord, now: float) -> None: ...

    def on_stop(self, rec: JobRecord, now: float) -> None: ...


class Snapshot(Protocol):
    """What a scheduling cycle may read."""

    cluster: Cluster
    inventory: GpuInventory
    queue: PendingQueue
    jobs: dict[int, JobRecord]
    running: dict[int, JobRecord]
    running_by_end: list[tuple[float, int]]
    tenant_gpus: Counter[str]
    usage: DecayedUsage
    generation: int
    last_seq: int
    arrivals_since_change: list[JobRecord]
    power_draw_w: float
    reclaimable_w: float
    sited: bool
    site_draw_w: dict[str, float]
    site_reclaimable_w: dict[str, float]
    pending_kinds: Counter[PendingKind]
    full_power: dict[int, JobRecord]
    capped: dict[int, JobRecord]


@dataclass
class Applied:
    """What the writer committed from a plan, and what it refused (with why)."""

    started: list[JobRecord] = field(default_factory=list)
    preempted: list[JobRecord] = field(default_factory=list)
    recapped: list[JobRecord] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


NOTHING_APPLIED = Applied()  # what an empty plan commits (shared: never changed)


class HubState:
    """Mutable hub state; implements ``Snapshot`` for policies and is changed only by its writer methods."""

    def __init__(self, cluster: Cluster, queue: PendingQueue, usage: DecayedUsage | None = None) -> None:
        self.cluster = cluster
        self.inventory = GpuInventory(cluster)
        self.queue = queue
        self.jobs: dict[int, JobRecord] = {}
        self.running: dict[int, JobRecord] = {}
        self.running_by_end: list[tuple[float, int]] = []  # sorted (a plain list: at most one entry per GPU)
        self.tenant_gpus: Counter[str] = Counter()
        self.usage = usage or DecayedUsage()  # the fair-share queue's (it updates it), shared for reads
        self.generation = 0
        self.arrivals_since_change: list[JobRecord] = []
        self.power_draw_w = 0.0  # IT power running jobs add above idle (sum of their power_w)
        self.full_power: dict[int, JobRecord] = {}  # running jobs drawing power with no GPU cap, oldest first
        self.capped: dict[int, JobRecord] = {}  # running jobs under a GPU power cap, oldest first
        self.reclaimable_w = 0.0  # power full-power jobs would give up if capped to their floor
        # a fleet at several sites budgets power per site: the two figures above, per site (else empty)
        self.sited = bool(cluster.site_names)
        self.site_draw_w: dict[str, float] = dict.fromkeys(cluster.site_names, 0.0)
        self.site_reclaimable_w: dict[str, float] = dict.fromkeys(cluster.site_names, 0.0)
        self.pending_kinds: Counter[PendingKind] = Counter()  # kinds of waiting jobs, for power bounds
        self.listeners: list[StateListener] = []
        self.last_seq = 0  # the latest submission's sequence number
        self.foreign: dict[int, int] = {}  # node index -> GPUs held by work the hub did not start (set_foreign)
        self.drained: dict[int, int] = {}  # drained node index -> its idle GPUs held out of the inventory (set_drained)
        # a queue that ignores starts and stops (FIFO's) is not told of them
        self._queue_tracks_running = getattr(queue, "tracks_running", True)

    # -- writer ------------------------------------------------------------------------------
    def submit(self, spec: JobSpec, now: float) -> JobRecord:
        """Queue a new job."""
        job_id = spec.job_id
        jobs = self.jobs
        if job_id in jobs:
            raise ValueError(f"job {job_id} already exists")
        seq = self.last_seq = self.last_seq + 1
        rec = jobs[job_id] = JobRecord(spec, seq)
        self.queue.add(rec, now)
        kinds = self.pending_kinds  # Counters, written as dicts: no ``__missing__`` call per job
        kinds[rec.kind] = kinds.get(rec.kind, 0) + 1
        self.arrivals_since_change.append(rec)
        for listener in self.listeners:
            listener.on_submit(rec, now)
        return rec

    def adopt_running(
        self,
        spec: JobSpec,
        allocation: Allocation,
        started_s: float,
        executed_s: float = 0.0,
        power: tuple[float, float, float] = (1.0, 0.0, 0.0),
    ) -> JobRecord:
        """Restore a job that was already running (after a restart of the live hub).

        ``executed_s`` is run time accumulated before ``started_s`` (earlier runs); ``power`` is
        its ``(cap_fraction, added power W, power at its lowest cap W)``, counted in the draw.
        """
        rec = self.submit(spec, started_s)
        rec.executed_s = executed_s
        problem = self._start(Start(spec.job_id, allocation, *power), started_s)
        if problem:
            self.queue.remove(rec)  # leave no trace of the failed adoption
            self._forget_kind(rec)
            del self.jobs[spec.job_id]
            self.arrivals_since_change.remove(rec)
            raise ValueError(f"job {spec.job_id}: cannot adopt as running: {problem}")
        return rec

    def apply(self, plan: Plan, now: float) -> Applied:
        """Verify and commit a plan: power-cap changes and preemptions first (they free power and GPUs),
        then starts, then reasons. A plan that decides nothing (most cycles of a replay) gets
        ``NOTHING_APPLIED``, one shared empty result (read it, never change it)."""
        if not (plan.starts or plan.reasons or plan.recaps or plan.preemptions):
            return NOTHING_APPLIED
        done = Applied()
        for recap in plan.recaps:
            rec = self.running.get(recap.job_id)
            if rec is None:
                done.refused.append((recap.job_id, "not running"))
                continue
            self.power_draw_w += recap.power_w - rec.power_w
            if self.sited:
                self.site_draw_w[rec.site] += recap.power_w - rec.power_w
            rec.cap_fraction, rec.power_w = recap.cap_fraction, recap.power_w
            self._index_cap(rec)
            self._changed()
            done.recapped.append(rec)
            for listener in self.listeners:
                hook = getattr(listener, "on_recap", None)
                if hook is not None:
                    hook(rec, now)
        for job_id in plan.preemptions:
            rec = self.running.get(job_id)
            if rec is None or not rec.spec.preemptible:
                done.refused.append((job_id, "not running or not preemptible"))
                continue
            self._stop(rec, now, JobState.PREEMPTED)
            rec.preemptions += 1
            self._requeue(rec, now)
            done.preempted.append(rec)
        for start in plan.starts:
            problem = self._start(start, now)
            if problem:
                done.refused.append((start.job_id, problem))
            else:
                done.started.append(self.jobs[start.job_id])
        for job_id, reason in plan.reasons.items():
            rec = self.jobs.get(job_id)
            if rec is not None and rec.state is JobState.PENDING:
                rec.reason = reason
        return done

    def finish(self, job_id: int, now: float, state: JobState) -> JobRecord:
        """A running job ended (COMPLETED, FAILED, TIMEOUT or CANCELLED)."""
        rec = self.running[job_id]
        self._stop(rec, now, state)
        return rec

    def cancel(self, job_id: int, now: float) -> JobRecord:
        """Cancel a pending or running job."""
        rec = self.jobs[job_id]
        if rec.state is JobState.RUNNING:
            self._stop(rec, now, JobState.CANCELLED)
        elif rec.state is JobState.PENDING:
            self._transition(rec, JobState.CANCELLED)
            self.queue.remove(rec)
            self._forget_kind(rec)
            self._changed()  # a job behind it may now be within a cycle's depth
            rec.end_s = now
            for listener in self.listeners:
                listener.on_stop(rec, now)
        else:
            raise ValueError(f"job {job_id} is {rec.state}, cannot cancel")
        return rec

    def set_tenants(self, tenants: Mapping[str, TenantSpec]) -> None:
        """Replace the tenants' weights and quotas (the live hub's operator changed them).

        In place, so every holder of this cluster (queue priorities, the submission gate) sees
        them at once; a new generation, so a memoised cycle looks at held jobs again (a raised
        quota can release a job held with ``QOSGrpGRES``).
        """
        self.cluster.tenants.clear()
        self.cluster.tenants.update(tenants)
        self.generation += 1
        on_tenants = getattr(self.queue, "on_tenants", None)  # a queue ordered by weights (fair share)
        if on_tenants is not None:
            on_tenants()

    def set_drained(self, nodes: Collection[int]) -> bool:
        """Drain exactly ``nodes`` (node indices), replacing the last call's; True if that changed anything.

        A drained node's idle GPUs are held out of the inventory, and so are the GPUs its running
        jobs give back when they end (``_stop``), so placement, reservations and the memoised cycle
        see a smaller fleet without knowing of drains. Jobs running there go on; a node no longer
        drained gives its held GPUs back. A change is a new generation.

        Example: node 0 has 8 GPUs and a job on 6; ``set_drained({0})`` holds its 2 idle GPUs; when
        the job ends the state holds all 8; ``set_drained(())`` gives the 8 back.
        """
        held = self.drained
        wanted = set(nodes)
        changed = False
        for node in [n for n in held if n not in wanted]:
            if held[node]:
                self.inventory.release(((node, held[node]),))
            del held[node]
            changed = True
        for node in wanted:
            if node not in held:
                held[node] = 0
                self._hold_drained(node)
                changed = True
        if changed:
            self._changed()
        return changed

    def _hold_drained(self, node: int) -> None:
        """Take a drained node's idle GPUs out of the inventory."""
        free = self.inventory.free[node]
        if free:
            self.inventory.allocate(((node, free),))
            self.drained[node] += free

    def set_foreign(self, busy: Mapping[int, int]) -> dict[int, int]:
        """Hold GPUs that work the hub did not start occupies (jobs others gave its engine
        directly): node index -> GPUs, replacing the last call's. A node is never held past its
        free GPUs plus what it already held (the hub's own jobs there keep theirs; the rest waits
        for the next call). Returns what is held now; a change is a new generation.

        Example: node 0 has 8 GPUs and a hub job on 6; ``set_foreign({0: 4})`` holds 2, and once
        the hub job ends the next ``set_foreign({0: 4})`` holds all 4.
        """
        drained = self.drained
        for node, idle in drained.items():  # others' work may take a drained node's idle GPUs: give them back
            if idle:
                self.inventory.release(((node, idle),))
                drained[node] = 0
        held = self.foreign
        changed = False
        for node in set(held) | set(busy):
            now_held = held.get(node, 0)
            want = min(max(busy.get(node, 0), 0), now_held + self.inventory.free[node])
            if want != now_held:
                changed = True
                if want > now_held:
                    self.inventory.allocate(((node, want - now_held),))
                else:
                    self.inventory.release(((node, now_held - want),))
                if want:
                    held[node] = want
                else:
                    del held[node]
        for node in drained:  # and take what is still idle there
            self._hold_drained(node)
        if changed:
            self._changed()
        return dict(held)

    def forget(self, job_id: int) -> None:
        """Drop an ended job from memory (a store or the metrics keep what is needed of it).

        Only jobs that can no longer change are dropped; a pending or running job stays.
        """
        rec = self.jobs.get(job_id)
        if rec is not None and rec.state in TERMINAL_STATES:
            del self.jobs[job_id]

    # -- internals ---------------------------------------------------------------------------
    def _start(self, start: Start, now: float) -> str:
        rec = self.jobs.get(start.job_id)
        if rec is None or rec.state is not JobState.PENDING:
            return "not pending"
        spec = rec.spec
        tenant = spec.tenant
        gpus = rec.gpus
        tenant_gpus = self.tenant_gpus
        limits = self.cluster.tenants.get(tenant)
        if limits is not None:
            quota = limits.gpu_quota
            if quota is not None and tenant_gpus.get(tenant, 0) + gpus > quota:
                return f"tenant {tenant} would exceed its quota of {quota} GPUs"
        alloc = start.allocation
        inventory = self.inventory
        node_pool = inventory.node_pool
        if len(alloc) == 1:  # the common case: one node, one pool
            if alloc[0][1] != gpus:
                return "allocation size differs from the job's GPU count"
            pool = node_pool[alloc[0][0]]
        else:
            if sum(g for _, g in alloc) != gpus:
                return "allocation size differs from the job's GPU count"
            pools = {node_pool[n] for n, _ in alloc}
            if len(pools) != 1:
                return "allocation is not on one allowed GPU type at one site"
            pool = pools.pop()
        gpu_type = inventory.pool_type[pool]
        if spec.gpu_type and spec.gpu_type != gpu_type:
            return "allocation is not on one allowed GPU type"
        problem = inventory.take(alloc)
        if problem:
            return problem
        self.queue.remove(rec)
        kinds, kind = self.pending_kinds, rec.kind  # as ``_forget_kind``
        left = kinds[kind] - 1
        if left:
            kinds[kind] = left
        else:
            kinds.pop(kind)
        rec.state = JobState.RUNNING  # PENDING -> RUNNING, allowed by TRANSITIONS
        rec.allocation = alloc
        rec.gpu_type = gpu_type
        rec.pool = pool
        rec.site = inventory.pool_site[pool]
        power_w = rec.power_w = start.power_w
        rec.floor_power_w = start.floor_power_w
        rec.cap_fraction = start.cap_fraction
        if power_w:
            self.power_draw_w += power_w
            if self.sited:
                self.site_draw_w[rec.site] += power_w
        if power_w or start.cap_fraction < 1.0:  # a job that draws no power has none to give up
            self._index_cap(rec)
        rec.reason = PendingReason.NONE
        rec.last_start_s = now
        rec.epoch += 1
        if rec.first_start_s is None:
            rec.first_start_s = now
        limit_s = spec.walltime_s - rec.executed_s  # as ``remaining_limit_s``
        end_s = rec.expected_end_s = now + (limit_s if limit_s > 0.0 else 0.0)
        job_id = rec.job_id
        self.running[job_id] = rec
        insort(self.running_by_end, (end_s, job_id))
        tenant_gpus[tenant] = tenant_gpus.get(tenant, 0) + gpus
        self.generation += 1
        if self.arrivals_since_change:
            self.arrivals_since_change.clear()
        if self._queue_tracks_running:
            self.queue.on_start(rec, now)
        for listener in self.listeners:
            listener.on_start(rec, now)
        return ""

    def _stop(self, rec: JobRecord, now: float, state: JobState) -> None:
        if not can_transition(rec.state, state):
            raise ValueError(f"job {rec.job_id}: {rec.state} -> {state} is not allowed")
        rec.state = state
        self.inventory.release(rec.allocation)
        if self.drained:  # a drained node keeps what its jobs give back (``set_drained``)
            for node, _ in rec.allocation:
                if node in self.drained:
                    self._hold_drained(node)
        job_id = rec.job_id
        del self.running[job_id]
        by_end = self.running_by_end
        del by_end[bisect_left(by_end, (rec.expected_end_s, job_id))]
        self.tenant_gpus[rec.spec.tenant] -= rec.gpus
        power_w = rec.power_w
        if power_w:
            self.power_draw_w -= power_w
            if self.sited:
                self.site_draw_w[rec.site] -= power_w
        if self.full_power.pop(job_id, None) is not None:
            self.reclaimable_w -= rec.reclaimable_before
            if self.sited:
                self.site_reclaimable_w[rec.site] -= rec.reclaimable_before
        if self.capped:
            self.capped.pop(job_id, None)
        rec.executed_s += now - rec.last_start_s
        rec.end_s = now
        self.generation += 1  # as ``_changed``
        if self.arrivals_since_change:
            self.arrivals_since_change.clear()
        if self._queue_tracks_running:
            self.queue.on_stop(rec, now)
        for listener in self.listeners:
            listener.on_stop(rec, now)

    end = _stop  # ``finish`` for a running job's record at hand (the pipeline's exits): no lookup

    def _requeue(self, rec: JobRecord, now: float) -> None:
        self._transition(rec, JobState.PENDING)
        rec.allocation = ()
        rec.end_s = None
        rec.reason = PendingReason.PRIORITY
        self.queue.add(rec, now)
        kinds = self.pending_kinds  # Counters, written as dicts: no ``__missing__`` call per job
        kinds[rec.kind] = kinds.get(rec.kind, 0) + 1
        self.arrivals_since_change.append(rec)

    def _forget_kind(self, rec: JobRecord) -> None:
        kinds, kind = self.pending_kinds, rec.kind
        left = kinds[kind] - 1
        if left:
            kinds[kind] = left
        else:
            kinds.pop(kind)

    def _index_cap(self, rec: JobRecord) -> None:
        job_id = rec.job_id
        if self.full_power.pop(job_id, None) is not None:
            self.reclaimable_w -= rec.reclaimable_before
            if self.sited:
                self.site_reclaimable_w[rec.site] -= rec.reclaimable_before
        reclaimable = rec.power_w - rec.floor_power_w
        if rec.cap_fraction < 1.0:
            self.capped[job_id] = rec
        else:
            if self.capped:
                self.capped.pop(job_id, None)
            self.full_power[job_id] = rec
            self.reclaimable_w += reclaimable
            if self.sited:
                self.site_reclaimable_w[rec.site] += reclaimable
        rec.reclaimable_before = reclaimable

    def _changed(self) -> None:
        self.generation += 1
        if self.arrivals_since_change:
            self.arrivals_since_change.clear()

    @staticmethod
    def _transition(rec: JobRecord, dst: JobState) -> None:
        if not can_transition(rec.state, dst):
            raise ValueError(f"job {rec.job_id}: {rec.state} -> {dst} is not allowed")
        rec.state = dst
