"""Read-only views of the hub state that the API serves: the queue with estimated starts, nodes.

They run on the loop's thread (``HubLoop.call``), between cycles, so they see a consistent state.

**Estimated start.** Walk the pending queue in the policy's order and place each job, on paper,
at the earliest time enough GPUs of its type are free, assuming every running job runs to its
walltime limit and the jobs ahead start in order (the backfill reservation's shadow-time walk,
continued down the queue). For a FIFO-ordered policy this is an upper bound: backfill can only
start a job earlier. Jobs held by a limit (``QOSGrpGRES``, ``AssocGrpGRESMinutes``,
``ReqNodeNotAvail``, ...) have no estimate (null), and neither do jobs past the first
``estimate_depth`` in the queue.

Example: 8 GPUs, 6 busy until t=100 and 2 until t=300; queue A (4 GPUs, 1 h), B (8 GPUs):
A is estimated at 100 (4 free then), B at max(100 + 3600, 300) = 3700.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sortedcontainers import SortedList

from steppe.core.job import JobState, PendingReason
from steppe.core.state import HubState
from steppe.scheduling.placement import candidate_types

_INF = float("inf")
_NO_ESTIMATE = frozenset(
    {
        PendingReason.QOS_GRP_GRES,
        PendingReason.ASSOC_GRP_GRES_MINUTES,
        PendingReason.REQ_NODE_NOT_AVAIL,
        PendingReason.AWAITING_REVIEW,
        PendingReason.DATA_RESIDENCY,
    }
)


@dataclass(frozen=True)
class QueueEntry:
    job_id: int
    position: int | None
    reason: str
    est_start_s: float | None


def queue_view(state: HubState, now: float, estimate_depth: int = 200) -> list[QueueEntry]:
    """Pending jobs in priority order with estimated starts; see the module docstring."""
    inv = state.inventory
    events: dict[str, SortedList] = {t: SortedList() for t in inv.types}  # (time, +gpus freed)
    for end, job_id in state.running_by_end:
        rec = state.running[job_id]
        events[rec.gpu_type].add((max(end, now), rec.gpus))
    free = {t: inv.free_by_type[t] for t in inv.types}
    t0 = now
    out: list[QueueEntry] = []
    for pos, rec in enumerate(state.queue.ordered(now), start=1):
        est: float | None = None
        if pos <= estimate_depth and rec.reason not in _NO_ESTIMATE:
            best: tuple[float, str] | None = None
            for t in candidate_types(inv, rec.spec.gpu_type):
                at = _earliest(events[t], free[t], t0, rec.gpus)
                if at is not None and (best is None or at < best[0]):
                    best = (at, t)
            if best is not None:
                est, t = best
                for tt in inv.types:  # advance every type's clock to est: the jobs ahead start in order
                    span = events[tt].irange((t0, _INF), (est, _INF), inclusive=(False, True))
                    free[tt] += sum(g for _, g in span)
                t0 = est
                free[t] -= rec.gpus
                events[t].add((est + rec.remaining_limit_s(), rec.gpus))
        out.append(QueueEntry(rec.job_id, pos, rec.reason.value, est))
    return out


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
    free: int
    jobs: list[int]


def nodes_view(state: HubState) -> list[NodeView]:
    on_node: dict[int, list[int]] = {n.index: [] for n in state.cluster.nodes}
    for rec in state.running.values():
        for node, _ in rec.allocation:
            on_node[node].append(rec.job_id)
    inv = state.inventory
    return [
        NodeView(n.index, n.name, n.gpu_type.name, n.gpus, inv.free[n.index], sorted(on_node[n.index]))
        for n in state.cluster.nodes
    ]


def pending_by_reason(state: HubState) -> Counter[str]:
    return Counter(rec.reason.value for rec in state.jobs.values() if rec.state is JobState.PENDING)
