"""Node workflows: an operator drains a node and resumes it (``scontrol update state=drain``).

* ``drain``: a hub-admin drains a node with a reason, audited as ``node.drain`` in the same
  transaction as the stored drain (``node_drains``, so a restart keeps it); the loop re-reads the
  drained nodes (``HubLoop.reload_drains``: their idle GPUs, and those their jobs give back, are
  held out of the inventory) and the call waits for that cycle. Jobs running there finish; the
  node shows ``draining`` while they do, then ``drain``. Draining it again changes the reason.
* ``resume``: a hub-admin gives a drained node back (audited as ``node.resume``, with the reason
  it was drained); its GPUs return to the inventory and the loop runs a cycle at once. Resuming
  a node that is not drained is a ``Conflict``.

Example: ``drain(hub, admin, "gpu01", "bad fan")`` returns the node (``m.Node``) with state
``draining`` while job 7 runs there; when 7 ends it is ``drain``; ``resume(hub, admin, "gpu01")``
lets the pending jobs start there in the next cycle.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from steppe.app.errors import Conflict, NotFound
from steppe.client import models as m
from steppe.store import nodes as node_repo
from steppe.store.audit import record

if TYPE_CHECKING:
    from steppe.app.auth import Principal
    from steppe.app.hub import Hub


def node_views(hub: Hub, who: Principal) -> list[m.Node]:
    """Nodes as of the loop's last step (its read model), with their states; another
    organisation's job ids are hidden (hub-admins see all)."""
    model = hub.reads.model
    tenant = {j.job_id: j.tenant for j in model.running}
    return [
        m.Node(name=v.name, gpu_type=v.gpu_type, gpus=v.gpus, free=v.free, others=v.others,
               jobs=[j for j in v.jobs if who.is_hub_admin or tenant.get(j) == who.org], site=v.site or None,
               state=v.state, reason=v.reason or None)
        for v in model.nodes
    ]  # fmt: skip


def _known(hub: Hub, node: str) -> None:
    if node not in hub.fleet.node_names:
        raise NotFound(f"node {node!r}")


def _view(hub: Hub, who: Principal, node: str) -> m.Node:
    return next(n for n in node_views(hub, who) if n.name == node)


def _applied(hub: Hub) -> None:
    """Make the loop re-read the drained nodes, and wait for the step that does (and its read model)."""
    hub.loop.reload_drains()
    hub.loop.wake_and_wait(timeout=5.0)


def drain(hub: Hub, who: Principal, node: str, reason: str) -> m.Node:
    """Drain ``node`` (module docstring); returns it as of the step that took the drain."""
    who.require_hub_admin()
    _known(hub, node)
    now = time.time()
    with hub.store.write() as conn:
        before = node_repo.drain(conn, node, reason, who.name, now)
        record(conn, actor=who.name, action="node.drain", subject=node, time_s=now, reason=reason,
               details={"before": before.reason if before is not None else None})  # fmt: skip
    _applied(hub)
    return _view(hub, who, node)


def resume(hub: Hub, who: Principal, node: str, reason: str = "") -> m.Node:
    """Resume the drained ``node`` (module docstring); returns it as of the step that took the resume."""
    who.require_hub_admin()
    _known(hub, node)
    now = time.time()
    with hub.store.write() as conn:
        before = node_repo.resume(conn, node)
        if before is None:
            raise Conflict(f"node {node} is not drained")
        record(conn, actor=who.name, action="node.resume", subject=node, time_s=now, reason=reason,
               details={"drained_for": before.reason, "drained_by": before.actor, "since_s": before.since_s})
    _applied(hub)
    return _view(hub, who, node)
