"""Tenancy workflows that change what the scheduler decides: fair-share and quota, allocations.

* ``set_share``: a hub-admin sets an organisation's fair-share weight and GPU quota, with a
  reason, audited as ``quota.change`` (before and after) in the same transaction; the loop
  re-reads tenants and the call waits for the cycle that does. A lower quota holds new starts
  (running jobs go on), a higher one releases jobs held with ``QOSGrpGRES``; ``None`` means the
  cluster file's value.
* ``create_allocation``: a hub-admin grants a project GPU-hours for a period (``2026-05``,
  ``2026-Q2``), optionally limited to GPU types and a maximum gang size; one allocation per
  period, none overlapping, audited as ``allocation.create`` with its reason. The submission
  path's allocation cache is dropped and the loop re-reads allocations.

Example: ``set_share(hub, admin, "kaznu", 2.0, 16, "grant 2026")`` returns the organisation's
row with weight 2 and quota 16; jobs over the old quota start in the next cycle.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from steppe.app.errors import Conflict, Invalid, NotFound
from steppe.client import models as m
from steppe.control.periods import months_between, period_bounds
from steppe.store import tenancy
from steppe.store.audit import record

if TYPE_CHECKING:
    from steppe.app.auth import Principal
    from steppe.app.hub import Hub


def org_of(conn: Connection, who: Principal, name: str) -> Any:
    """The organisation ``name``, if ``who`` may see it (else ``NotFound``)."""
    row = tenancy.get_org(conn, name)
    if row is None or not who.sees_org(row.id):
        raise NotFound(f"organisation {name!r}")
    return row


def project_of(conn: Connection, who: Principal, org: str, name: str) -> Any:
    """The project ``org/name``, if ``who`` may see it (else ``NotFound``)."""
    row = tenancy.get_project(conn, org, name)
    if row is None or not who.sees_org(row.org_id):
        raise NotFound(f"project {org}/{name}")
    return row


def set_share(hub: Hub, who: Principal, org: str, weight: float | None, quota: int | None, reason: str) -> Any:
    """Set ``org``'s fair-share weight and GPU quota; returns its row after the change (module docstring)."""
    who.require_hub_admin()
    now = time.time()
    with hub.store.write() as conn:
        row = org_of(conn, who, org)
        before = {"fairshare_weight": row.fairshare_weight, "gpu_quota": row.gpu_quota}
        tenancy.set_org_share(conn, row.id, weight, quota)
        after = {"fairshare_weight": weight, "gpu_quota": quota}
        record(
            conn,
            actor=who.name,
            action="quota.change",
            subject=org,
            time_s=now,
            reason=reason,
            details={"before": before, "after": after},
        )
        changed = org_of(conn, who, org)
    hub.tenants_changed()
    return changed


def allocation_view(conn: Connection, a: Any) -> m.Allocation:
    """An allocation with the GPU-hours its project used in its period and what remains."""
    used = used_s(conn, a.project_id, a.start_s, a.end_s) / 3600.0
    return m.Allocation(
        project=f"{a.org}/{a.project}", period=a.period, start_s=a.start_s, end_s=a.end_s, gpu_hours=a.gpu_hours,
        max_gpus=a.max_gpus, gpu_types=a.gpu_types, used_gpu_hours=round(used, 6),
        remaining_gpu_hours=round(max(a.gpu_hours - used, 0.0), 6),
    )  # fmt: skip


def used_s(conn: Connection, project_id: int, start_s: float, end_s: float) -> float:
    """GPU-seconds the project was charged in the months from ``start_s`` to ``end_s``."""
    months = set(months_between(start_s, end_s))
    return float(sum(r.gpu_seconds for r in tenancy.usage_by_month(conn, project_id) if r.period in months))


def create_allocation(hub: Hub, who: Principal, org: str, project: str, body: m.AllocationCreate) -> m.Allocation:
    """Grant ``org/project`` an allocation (module docstring); returns it as the API shows it."""
    who.require_hub_admin()
    try:
        start_s, end_s = period_bounds(body.period)
    except ValueError as exc:
        raise Invalid.field("period", str(exc)) from None
    types = None
    if body.gpu_types:
        types = [t.upper() for t in body.gpu_types]
        unknown = [t for t in types if t not in hub.fleet.cluster.gpus_by_type]
        if unknown:
            have = ", ".join(sorted(hub.fleet.cluster.gpus_by_type))
            raise Invalid.field("gpu_types", f"the hub has no GPUs of type {', '.join(unknown)} (it has {have})")
    with hub.store.write() as conn:
        prow = project_of(conn, who, org, project)
        for a in tenancy.list_allocations(conn, project_id=prow.id):
            if a.start_s < end_s and start_s < a.end_s:
                raise Conflict(
                    f"{org}/{project} already has an allocation for {a.period}, which overlaps {body.period}"
                )
        values = {
            "project_id": prow.id, "period": body.period, "start_s": start_s, "end_s": end_s,
            "gpu_hours": body.gpu_hours, "max_gpus": body.max_gpus, "gpu_types": types, "created_s": time.time(),
        }  # fmt: skip
        tenancy.create_allocation(conn, values)
        record(
            conn,
            actor=who.name,
            action="allocation.create",
            subject=f"{org}/{project}",
            time_s=values["created_s"],
            reason=body.reason,
            details={k: v for k, v in values.items() if k not in ("project_id", "created_s")},
        )
        row = next(a for a in tenancy.list_allocations(conn, project_id=prow.id) if a.period == body.period)
        view = allocation_view(conn, row)
    hub.allocations_changed()
    return view
