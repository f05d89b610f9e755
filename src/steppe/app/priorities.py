"""Priority and fair-share views (``steppe sprio``, ``steppe sshare``), from the loop's read model
(``steppe.control.shares``: computed on first read of a step's model, never waiting for a step).

A member sees their own organisation's rows only; a hub-admin sees every organisation's.

Example: with pending jobs 7 (kaznu) and 9 (enu), ``priorities(hub, alice)`` (of kaznu) lists job
7 only, with its priority and its AGE, FAIRSHARE, JOBSIZE and QOS terms; ``fair_shares(hub,
root)`` lists kaznu and enu with their shares, decayed usage and fair-share factors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from steppe.client import models as m

if TYPE_CHECKING:
    from steppe.app.auth import Principal
    from steppe.app.hub import Hub


def priorities(hub: Hub, who: Principal, jobs: set[int] | None = None) -> list[m.Priority]:
    """Pending jobs' priorities in the policy's order (``jobs``: only these ids)."""
    return [
        m.Priority(job_id=p.job_id, org=p.org, project=p.project, position=p.position, priority=p.priority, age=p.age,
                   fairshare=p.fairshare, job_size=p.job_size, qos=p.qos)
        for p in hub.reads.model.priorities
        if (who.is_hub_admin or p.org == who.org) and (jobs is None or p.job_id in jobs)
    ]  # fmt: skip


def fair_shares(hub: Hub, who: Principal) -> list[m.FairShare]:
    """Organisations' fair share, by name."""
    return [
        m.FairShare(org=s.org, raw_shares=s.raw_shares, norm_shares=s.norm_shares, raw_usage=s.raw_usage,
                    norm_usage=s.norm_usage, effective_usage=s.effective_usage, fairshare=s.fairshare)
        for s in hub.reads.model.shares
        if who.is_hub_admin or s.org == who.org
    ]  # fmt: skip
