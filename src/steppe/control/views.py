"""Read-only views of the hub state that the API serves: the queue with estimated starts, nodes,
counters, published after every loop step as one immutable read model.

**Read model.** ``ReadModelPublisher`` subscribes to the loop's steps (``cycle_observers``, so it
runs on the loop's thread at the end of each step) and builds a frozen ``ReadModel`` from the
state: running jobs by start time, pending jobs in the policy's order with their reasons and
governance details, nodes with their free GPUs and jobs, counters for ``/metrics``. It then
swaps it in with one attribute assignment (``publisher.model = new``), so a reader on any thread
takes ``publisher.model`` once and sees one step's view, never half of one, and never waits for
a scheduling step. The queue's estimated starts are computed from the model's frozen inputs the
first time a reader asks (``ReadModel.queue``) and kept with it.

Example: step 41 starts job 7 and queues job 9; after it, ``publisher.model.step == 41``,
``[j.job_id for j in model.running] == [7]`` and ``model.pending[0].job_id == 9``; a request
that read the model before the swap sees step 40's view in full.

**Estimated start.** Walk the pending queue in the policy's order and place each job, on paper,
at the earliest time enough GPUs of its type are free in one pool (one site's GPUs of that type),
assuming every running job runs to its walltime limit and the jobs ahead start in order (the
backfill reservation's shadow-time walk, continued down the queue). A job running on a drained
node frees nothing: its GPUs stay with the drain. For a FIFO-ordered policy
this is an upper bound: backfill can only start a job earlier. Jobs held by a limit
(``QOSGrpGRES``, ``AssocGrpGRESMinutes``, ``ReqNodeNotAvail``, ...) have no estimate (null),
and neither do jobs past the first ``estimate_depth`` in the queue.

Example: 8 GPUs, 6 busy until t=100 and 2 until t=300; queue A (4 GPUs, 1 h), B (8 GPUs):
A is estimated at 100 (4 free then), B at max(100 + 3600, 300) = 3700.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sortedcontainers import SortedList

from steppe.control.shares import FairShareInputs, JobPriority, Share, fair_share_inputs, job_priorities, shares
from steppe.core.job import PendingReason
from steppe.core.records import JobRecord
from steppe.core.state import HubState
from steppe.scheduling.admission import admission_epoch

if TYPE_CHECKING:
    from steppe.control.loop import HubLoop

log = logging.getLogger("steppe.hub")

_INF = float("inf")
_NO_ESTIMATE = frozenset(
    {
        PendingReason.QOS_GRP_GRES,
        PendingReason.ASSOC_GRP_GRES_MINUTES,
        PendingReason.REQ_NODE_NOT_AVAIL,
        PendingReason.AWAITING_REVIEW,
        PendingReason.DATA_RESIDENCY,
        PendingReason.DEPENDENCY,
        PendingReason.DEPENDENCY_NEVER_SATISFIED,
        PendingReason.JOB_ARRAY_TASK_LIMIT,
    }
)


@dataclass(frozen=True, slots=True)
class QueueEntry:
    job_id: int
    position: int | None
    reason: str
    est_start_s: float | None


def _earliest(events: SortedList, free_now: float, t0: float, gpus: int) -> float | None:
    """Earliest time >= t0 when ``gpus`` are free, given GPUs freed at later event times."""
    if free_now >= gpus:
        return t0
    free = free_now
    for time_s, g in events.irange((t0, _INF), None, inclusive=(False, True)):
        free += g
        if free >= gpus:
            return float(time_s)
    return None


@dataclass(frozen=True)
class NodeView:
    index: int
    name: str
    gpu_type: str
    gpus: int
    free: int  # GPUs the hub may give out now (a drained node's are held: 0)
    jobs: list[int]
    others: int = 0  # GPUs held by jobs the hub did not start
    site: str = ""  # "" in a hub that names no site
    state: str = "idle"  # as sinfo: idle, mixed, allocated, drain, draining, down (``node_state``)
    reason: str = ""  # why an operator drained it


def node_state(gpus: int, in_use: int, drained: bool, down: bool) -> str:
    """A node's state as Slurm's ``sinfo`` names it: ``down`` (its engine no longer offers it),
    ``draining`` (drained, jobs still running there), ``drain`` (drained and empty), else by
    the GPUs in use (the hub's jobs and others'): ``idle`` (none), ``allocated`` (all), ``mixed``.

    >>> node_state(8, 0, False, False), node_state(8, 3, False, False), node_state(8, 8, False, False)
    ('idle', 'mixed', 'allocated')
    >>> node_state(8, 3, True, False), node_state(8, 0, True, False), node_state(8, 0, True, True)
    ('draining', 'drain', 'down')
    """
    if down:
        return "down"
    if drained:
        return "draining" if in_use else "drain"
    return "idle" if in_use == 0 else "allocated" if in_use >= gpus else "mixed"


def nodes_view(
    state: HubState, reasons: Mapping[int, str] | None = None, down: frozenset[str] = frozenset()
) -> list[NodeView]:
    """Every node with its free GPUs, jobs and state; ``reasons``: drained node index -> why;
    ``down``: the names of nodes the engine no longer offers (``engine_down_nodes``)."""
    on_node: dict[int, list[int]] = {n.index: [] for n in state.cluster.nodes}
    for rec in state.running.values():
        for node, _ in rec.allocation:
            on_node[node].append(rec.job_id)
    free, others, drained = state.inventory.free, state.foreign, state.drained
    reasons = reasons or {}
    out = []
    for n in state.cluster.nodes:
        i = n.index
        in_use = n.gpus - free[i] - drained.get(i, 0)
        out.append(NodeView(i, n.name, n.gpu_type.name, n.gpus, free[i], sorted(on_node[i]), others.get(i, 0), n.site,
                            node_state(n.gpus, in_use, i in drained, n.name in down),
                            reasons.get(i, "") if i in drained else ""))  # fmt: skip
    return out


def engine_down_nodes(executor: Any, names: list[str]) -> frozenset[str]:
    """The hub's nodes its engine no longer offers: absent from the inventory the engine last
    reported (its cached view: never waits). An engine that does not answer, or that reports no
    nodes at all (one that never lists them, as the mock's default), makes no node ``down``."""
    per_site = getattr(executor, "down_nodes", None)  # a hub at several sites: each engine for its own nodes
    if callable(per_site):
        found: frozenset[str] = per_site(names)
        return found
    if not executor.reachable():
        return frozenset()
    offered = executor.inventory().gpus
    if not offered:
        return frozenset()
    return frozenset(name for name in names if name not in offered)


# -- the read model -------------------------------------------------------------------------------------
_GOVERNANCE_REASONS = frozenset(
    {PendingReason.AWAITING_REVIEW, PendingReason.ASSOC_GRP_GRES_MINUTES, PendingReason.DATA_RESIDENCY}
)
_EMPTY: Mapping[Any, Any] = MappingProxyType({})


def _empty() -> Mapping[Any, Any]:
    return _EMPTY


@dataclass(frozen=True, slots=True)
class RunningJob:
    job_id: int
    tenant: str
    project: str
    end_s: float  # its walltime limit
    gpus: int
    gpu_type: str
    pool: str = ""  # its site's GPUs of its type ("H100", "astana/H100")
    site: str = ""


@dataclass(frozen=True, slots=True)
class PendingJob:
    job_id: int
    tenant: str
    project: str
    reason: PendingReason
    gpus: int
    gpu_type: str | None  # as asked (None: any type)
    limit_s: float  # walltime left
    detail: str | None  # why a governance check holds it (``GovernanceView.why``)
    submit_s: float = 0.0
    qos: str = "normal"


@dataclass(frozen=True)
class Counters:
    """What ``/metrics`` reports, as of the step that published the model."""

    running: int = 0
    entered: Mapping[str, int] = field(default_factory=_empty)  # transitions into each state over the hub's life
    gpus: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=_empty)  # (site, type) -> (allocated, free)
    charged: Mapping[tuple[str, str], float] = field(default_factory=_empty)  # (project, type) -> GPU-seconds
    remaining: Mapping[str, float] = field(
        default_factory=_empty
    )  # project -> GPU-seconds left in its current allocation
    energy: Mapping[str, tuple[float, ...]] = field(default_factory=_empty)  # project -> metered energy totals
    errors: int = 0
    power_draw_w: float = 0.0  # IT power running jobs add above idle
    site_power_draw_w: Mapping[str, float] = field(default_factory=_empty)  # the same per site (several sites)


@dataclass(frozen=True)
class ReadModel:
    """One step's view of the hub; see the module docstring."""

    step: int = -1  # the loop's step count when published (-1: before the first step)
    time_s: float = 0.0  # the step's clock
    running: tuple[RunningJob, ...] = ()  # by start time
    pending: tuple[PendingJob, ...] = ()  # in the policy's order
    nodes: tuple[NodeView, ...] = ()
    counters: Counters = field(default_factory=Counters)
    free_by_pool: Mapping[str, int] = field(default_factory=_empty)
    pools_of: Mapping[str | None, tuple[str, ...]] = field(default_factory=_empty)  # GPU type (None: any) -> pools
    estimate_depth: int = 200
    fair_share: FairShareInputs = field(default_factory=FairShareInputs)  # what sprio and sshare read
    on_drained: frozenset[int] = frozenset()  # running jobs on a drained node (their GPUs free no one)

    @cached_property
    def priorities(self) -> tuple[JobPriority, ...]:
        """Pending jobs' priorities and factors in the policy's order (``steppe sprio``; computed once)."""
        return tuple(job_priorities(self.fair_share, self.pending, self.time_s))

    @cached_property
    def shares(self) -> tuple[Share, ...]:
        """Organisations' shares, decayed usage and fair-share factors (``steppe sshare``; computed once)."""
        return tuple(shares(self.fair_share))

    @cached_property
    def queue(self) -> tuple[QueueEntry, ...]:
        """Pending jobs with positions and estimated starts (computed once, from this model alone)."""
        return tuple(estimate(self))

    @cached_property
    def pending_by_reason(self) -> Mapping[str, int]:
        """Pending jobs by pending reason (``hub_queue_pending_jobs``)."""
        return dict(Counter(j.reason.value for j in self.pending))

    @property
    def listed(self) -> tuple[RunningJob | PendingJob, ...]:
        """Running jobs, then pending ones (the queue listing's order)."""
        return (*self.running, *self.pending)

    @cached_property
    def by_id(self) -> Mapping[int, RunningJob | PendingJob]:
        jobs: dict[int, RunningJob | PendingJob] = {j.job_id: j for j in self.running}
        jobs.update((j.job_id, j) for j in self.pending)
        return jobs


def estimate(model: ReadModel) -> list[QueueEntry]:
    """Pending jobs in priority order with estimated starts (see **Estimated start**), from a read model."""
    pools = model.pools_of.get(None, ())
    events: dict[str, SortedList] = {p: SortedList() for p in pools}  # (time, +gpus freed)
    held = model.on_drained
    for r in model.running:
        if r.job_id not in held:  # a job on a drained node gives its GPUs to the drain, not to the queue
            events[r.pool or r.gpu_type].add((max(r.end_s, model.time_s), r.gpus))
    free = dict(model.free_by_pool)
    t0 = model.time_s
    out: list[QueueEntry] = []
    for pos, job in enumerate(model.pending, start=1):
        est: float | None = None
        if pos <= model.estimate_depth and job.reason not in _NO_ESTIMATE:
            best: tuple[float, str] | None = None
            for t in model.pools_of.get(job.gpu_type, ()):
                at = _earliest(events[t], free[t], t0, job.gpus)
                if at is not None and (best is None or at < best[0]):
                    best = (at, t)
            if best is not None:
                est, t = best
                for tt in pools:  # advance every pool's clock to est: the jobs ahead start in order
                    span = events[tt].irange((t0, _INF), (est, _INF), inclusive=(False, True))
                    free[tt] += sum(g for _, g in span)
                t0 = est
                free[t] -= job.gpus
                events[t].add((est + job.limit_s, job.gpus))
        out.append(QueueEntry(job.job_id, pos, job.reason.value, est))
    return out


class ReadModelPublisher:
    """Builds a ``ReadModel`` after each of ``loop``'s steps and swaps it in (``model``).

    With ``max_lag_s``, a step followed at once by another (the loop was woken meanwhile: a burst
    of submissions) leaves the publishing to that one, unless the model is ``max_lag_s`` old: under
    a burst the model is at most that old, and the burst's last step publishes. Building the model
    walks the whole queue, so a burst that grows it would otherwise pay for a walk every step.
    """

    def __init__(self, loop: HubLoop, max_lag_s: float = 0.0) -> None:
        self.loop = loop
        self.max_lag_s = max_lag_s
        self._published_at = -math.inf  # time.monotonic() of the last publish
        self.model = ReadModel()
        # job id -> (reason, executed_s, held by governance, admission epoch, its entry): last step's entries
        self._pending: dict[int, tuple[PendingReason, float, bool, tuple[Any, ...], PendingJob]] = {}
        loop.cycle_observers.append(self._after_step)

    def _after_step(self, _elapsed_s: float) -> None:
        lag = self.max_lag_s
        if lag > 0 and self.loop.step_follows() and time.monotonic() - self._published_at < lag:
            return  # the next step, due at once, publishes
        try:
            self.publish()
        except Exception:  # a read model that cannot be built must not fail the step: readers keep the last one
            log.exception("read model not published")

    def _entry(
        self, rec: JobRecord, epoch: tuple[Any, ...]
    ) -> tuple[PendingReason, float, bool, tuple[Any, ...], PendingJob]:
        """A pending job's entry; a job held by a governance check says why (as of ``epoch``'s inputs)."""
        reason, spec = rec.reason, rec.spec
        governed = reason in _GOVERNANCE_REASONS
        detail = None
        if reason is PendingReason.ASSOC_GRP_GRES_MINUTES:
            detail = self.loop.gpu_hours.why(rec)  # the allocation's balance; else the approval's cap
        if governed and detail is None:
            detail = self.loop.governance.why(rec)
        job = PendingJob(rec.job_id, spec.tenant, spec.project, reason, rec.gpus, spec.gpu_type,
                         rec.remaining_limit_s(), detail, spec.submit_s, spec.qos)  # fmt: skip
        return reason, rec.executed_s, governed, epoch, job

    def publish(self) -> ReadModel:
        """Build the model of the loop's state now (on the loop's thread) and swap it in."""
        loop, state = self.loop, self.loop.state
        now = loop.clock()
        inv = state.inventory
        running = sorted(state.running.values(), key=lambda r: r.last_start_s)
        end_of = {job_id: end for end, job_id in state.running_by_end}
        run_view = tuple(
            RunningJob(r.job_id, r.spec.tenant, r.spec.project, end_of.get(r.job_id, now), r.gpus, r.gpu_type or "",
                       r.pool, inv.pool_site.get(r.pool, ""))
            for r in running
        )
        epoch = admission_epoch(loop.governance.checks(), now)
        known, kept = self._pending, {}
        pending: list[PendingJob] = []
        for rec in state.queue.ordered(now):  # reuse last step's entry of a job whose reason and runs did not change
            hit = known.get(rec.job_id)
            if hit is None or hit[0] is not rec.reason or hit[1] != rec.executed_s or (hit[2] and hit[3] != epoch):
                hit = self._entry(rec, epoch)
            kept[rec.job_id] = hit
            pending.append(hit[4])
        self._pending = kept
        ledger = loop.ledger
        remaining = {}
        for project in ledger.grants:
            grant = ledger.current(project, now)
            if grant is not None:
                remaining[project] = max(grant.gpu_seconds - ledger.used_in(project, grant), 0.0)
        counters = Counters(
            running=len(run_view),
            entered=MappingProxyType(dict(loop.journal.entered)),
            gpus=MappingProxyType({(inv.pool_site[p], inv.pool_type[p]): (inv.total_by_pool[p] - inv.free_by_pool[p],
                                   inv.free_by_pool[p]) for p in inv.pools}),
            charged=MappingProxyType(dict(ledger.by_type_s)), remaining=MappingProxyType(remaining),
            energy=MappingProxyType({project: tuple(v) for project, v in ledger.energy.items()}),
            errors=loop.errors, power_draw_w=state.power_draw_w,
            site_power_draw_w=MappingProxyType(dict(state.site_draw_w)),
        )  # fmt: skip
        waiting = tuple(pending)
        drained = state.drained
        on_drained = (
            frozenset(r.job_id for r in running if any(node in drained for node, _ in r.allocation))
            if drained else frozenset()
        )  # fmt: skip
        nodes = tuple(nodes_view(state, loop.drains, engine_down_nodes(loop.executor, loop.fleet.node_names)))
        model = ReadModel(
            step=loop.cycles, time_s=now, running=run_view, pending=waiting, nodes=nodes,
            counters=counters, free_by_pool=MappingProxyType(dict(inv.free_by_pool)),
            pools_of=MappingProxyType(dict(inv.pools_of)), fair_share=fair_share_inputs(state, now, waiting),
            on_drained=on_drained,
        )  # fmt: skip
        self.model = model  # the one swap: readers see the previous model or this one, whole
        self._published_at = time.monotonic()
        return model
