"""Operator views and verbs (``/api/v1``): drain and resume a node (hub-admin, audited), the
pending jobs' priority factors (``sprio``) and the organisations' fair share (``sshare``).

The reads take the loop's read model (``hub.reads.model``) and never wait for a scheduling step;
a drain or resume waits for the step that applies it, so its answer shows the node's new state.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from steppe.api.deps import HubDep, Who
from steppe.app import nodes, priorities
from steppe.client import models as m

router = APIRouter(prefix="/api/v1", tags=["operator"])


@router.post("/nodes/{node}/drain", response_model=m.Node)
def drain(node: str, body: m.NodeDrain, hub: HubDep, who: Who) -> m.Node:
    """Drain a node (hub-admin; audited as ``node.drain``): jobs running there finish, nothing new
    starts there; it shows ``draining`` until they have, then ``drain``. Kept across restarts."""
    return nodes.drain(hub, who, node, body.reason)


@router.post("/nodes/{node}/resume", response_model=m.Node)
def resume(node: str, hub: HubDep, who: Who, body: m.NodeResume | None = None) -> m.Node:
    """Give a drained node back to the scheduler (hub-admin; audited as ``node.resume``, with the
    body's optional reason)."""
    return nodes.resume(hub, who, node, body.reason if body is not None else "")


@router.get("/priorities", response_model=list[m.Priority])
def job_priorities(
    hub: HubDep, who: Who, jobs: Annotated[list[int] | None, Query(alias="job", description="only these ids")] = None
) -> list[m.Priority]:
    """Pending jobs' priority and its weighted factors in the scheduler's order (``sprio``); a member
    sees their organisation's jobs, a hub-admin all."""
    return priorities.priorities(hub, who, set(jobs) if jobs else None)


@router.get("/shares", response_model=list[m.FairShare])
def fair_shares(hub: HubDep, who: Who) -> list[m.FairShare]:
    """Each organisation's shares, decayed usage and fair-share factor (``sshare``); a member sees
    their organisation's row, a hub-admin all."""
    return priorities.fair_shares(hub, who)
