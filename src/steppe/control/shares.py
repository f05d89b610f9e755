"""Priority factors per pending job (``steppe sprio``) and fair share per organisation (``steppe
sshare``), computed from inputs the read model froze after a loop step (``FairShareInputs``), on
first read, so an API read never waits for a scheduling step and a step pays only for copying a
few numbers per organisation.

**sprio** (Slurm's multifactor priority, ``steppe.scheduling.priority``), per pending job, each
factor weighted as ``sprio`` prints it:

    AGE = W_age * min(waited / max_age, 1)      FAIRSHARE = W_fs * F(org)
    JOBSIZE = W_size * gpus / fleet GPUs         QOS = W_qos * qos priority / highest qos priority
    PRIORITY = AGE + FAIRSHARE + JOBSIZE + QOS

A policy without multifactor priority (``fifo``, ``easy-backfill``, ``las``, ``srtf``) orders
by its own rule: its rows carry the queue position only (for FIFO-like policies, the submission
order) and no factors.

**sshare** (Slurm's classic fair share, a flat tree of organisations), per organisation the
policy counts (one that has waited or has usage):

    RawShares = its fair-share weight           NormShares S = weight / sum of weights
    RawUsage  = decayed GPU-seconds (half-life) NormUsage U = RawUsage / sum of RawUsage
    EffectvUsage = U (a flat tree)              FairShare F = 2 ** (-U / S)

The usage is read at the instant the policy last calculated its factors (it does so at most
once per ``PriorityCalcPeriod``, as Slurm), so the row shows the numbers the scheduler uses.

Example: weights 1 and 3 (S = 0.25, 0.75); kaznu has decayed usage 600 GPU-s, enu 200 (U =
0.75, 0.25): kaznu's F = 2 ** (-3) = 0.125, enu's 2 ** (-1/3) = 0.794. A kaznu job of 2 GPUs on
a fleet of 8, waiting a day with max age 7 days, QOS normal (priority 0), default weights:
AGE 1000/7 = 142.9, FAIRSHARE 1250, JOBSIZE 250, QOS 0: PRIORITY 1642.9.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from steppe.scheduling.priority import MultifactorQueue, MultifactorWeights

if TYPE_CHECKING:
    from steppe.control.views import PendingJob
    from steppe.core.state import HubState

__all__ = ["FairShareInputs", "JobPriority", "Share", "fair_share_inputs", "job_priorities", "shares"]


@dataclass(frozen=True)
class FairShareInputs:
    """What sprio and sshare read, as of one step (see the module docstring)."""

    weights: MultifactorWeights | None = None  # None: the policy has no multifactor priority
    factors: Mapping[str, float] | None = None  # org -> fair-share factor F the policy uses
    raw_shares: Mapping[str, float] | None = None  # org -> fair-share weight (the orgs the policy counts)
    usage: Mapping[str, float] | None = None  # org -> decayed GPU-seconds at ``usage_at_s``
    usage_at_s: float = 0.0
    fleet_gpus: int = 1
    top_qos: float = 1.0
    qos_priority: Mapping[str, float] | None = None  # QOS name -> its priority


@dataclass(frozen=True, slots=True)
class JobPriority:
    """One pending job's row of ``steppe sprio`` (factors weighted; None for a policy without them)."""

    job_id: int
    org: str
    project: str
    position: int  # in the policy's order, from 1
    priority: float | None = None
    age: float | None = None
    fairshare: float | None = None
    job_size: float | None = None
    qos: float | None = None


@dataclass(frozen=True, slots=True)
class Share:
    """One organisation's row of ``steppe sshare``; ``fairshare`` is None for a policy without fair share."""

    org: str
    raw_shares: float
    norm_shares: float
    raw_usage: float
    norm_usage: float
    effective_usage: float
    fairshare: float | None


def fair_share_inputs(state: HubState, now: float, pending: tuple[PendingJob, ...] = ()) -> FairShareInputs:
    """Copy what sprio and sshare need from the state (on the loop's thread, after a step); ``pending``:
    the waiting jobs (a policy without fair share counts the organisations that wait, run or have usage)."""
    cluster = state.cluster
    qos = {name: spec.priority for name, spec in cluster.qos.items()}
    queue = state.queue
    if isinstance(queue, MultifactorQueue):
        factors = dict(queue.fairshare_factors(now))
        at = queue.order_epoch(now)  # when those factors were calculated
        names = list(factors)
    else:
        factors, at = None, now
        names = sorted({*cluster.tenants, *state.usage.tenants(), *(j.tenant for j in pending),
                        *(r.spec.tenant for r in state.running.values())})  # fmt: skip
    raw = {t: (spec.weight if (spec := cluster.tenants.get(t)) is not None else 1.0) for t in names}
    top = max(qos.values(), default=0.0)
    return FairShareInputs(
        weights=queue.w if isinstance(queue, MultifactorQueue) else None, factors=factors, raw_shares=raw,
        usage=state.usage.values(names, at), usage_at_s=at, fleet_gpus=max(cluster.total_gpus, 1),
        top_qos=top if top > 0 else 1.0, qos_priority=qos,
    )  # fmt: skip


def job_priorities(inputs: FairShareInputs, pending: tuple[PendingJob, ...], now: float) -> list[JobPriority]:
    """Every pending job's priority and weighted factors (module docstring), in the policy's order."""
    w = inputs.weights
    out = []
    for pos, job in enumerate(pending, start=1):
        if w is None:
            out.append(JobPriority(job.job_id, job.tenant, job.project, pos))
            continue
        factor = (inputs.factors or {}).get(job.tenant, 1.0)
        age = w.age * min(max(now - job.submit_s, 0.0) / w.max_age_s, 1.0)
        fairshare = w.fairshare * factor
        size = w.job_size * job.gpus / inputs.fleet_gpus
        qos = w.qos * (inputs.qos_priority or {}).get(job.qos, 0.0) / inputs.top_qos
        out.append(JobPriority(job.job_id, job.tenant, job.project, pos, age + fairshare + size + qos, age, fairshare,
                               size, qos))  # fmt: skip
    return out


def shares(inputs: FairShareInputs) -> list[Share]:
    """Every organisation's shares, usage and fair-share factor (module docstring), by name."""
    raw, usage = inputs.raw_shares or {}, inputs.usage or {}
    total_w = sum(raw.values()) or 1.0
    total_u = sum(usage.values())
    out = []
    for org in sorted(raw):
        u = usage.get(org, 0.0) / total_u if total_u > 0 else 0.0
        factor = inputs.factors.get(org) if inputs.factors is not None else None
        out.append(Share(org, raw[org], raw[org] / total_w, usage.get(org, 0.0), u, u, factor))
    return out
