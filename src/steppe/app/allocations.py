"""Allocations and usage: the GPU-hours a project is granted per period, and what it used.

* ``create_allocation``: a hub-admin grants a project GPU-hours for a period (``2026-05``,
  ``2026-Q2``), optionally limited to GPU types and a maximum gang size; one allocation per
  period, none overlapping, audited as ``allocation.create`` with its reason. The submission
  path's allocation cache is dropped and the loop re-reads allocations;
* ``list_allocations``: a hub-admin sees every project's, anyone else their organisation's,
  optionally of one project (``org/name``), each with what was used in its period and what
  remains;
* ``project_usage``: a project's charged GPU-hours per month and GPU type;
* ``balance``: the allocation in force now, the GPU-hours used in its period and left
  (``steppe balance``); ``usage_by_user``: GPU-hours and jobs per user of a project, of one
  period if given (``steppe usage``). Both answer every user of the project's organisation, not
  only admins; another organisation's project is ``NotFound``, as a missing one.

Example: a project granted 10 GPU-hours for ``2026-05`` that ran 2 GPUs for 30 minutes in May
lists ``used_gpu_hours=1.0, remaining_gpu_hours=9.0``; its usage is one row
``(2026-05, H100, 1.0)``; in May its balance is granted 10, used 1, left 9, and if alice ran the
job, its usage by user is ``(alice, 1 job, 1.0)``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from steppe.app.errors import Conflict, Invalid
from steppe.app.tenancy import project_of, visible_org_id
from steppe.client import models as m
from steppe.control.periods import months_between, period_bounds
from steppe.store import tenancy
from steppe.store.audit import record

if TYPE_CHECKING:
    from steppe.app.auth import Principal
    from steppe.app.hub import Hub


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


def list_allocations(hub: Hub, who: Principal, project: str | None = None) -> list[m.Allocation]:
    """The allocations ``who`` may see (of ``project``, ``org/name``, when given), with their use."""
    with hub.store.read() as conn:
        project_id = None
        if project is not None:
            org, _, name = project.partition("/")
            project_id = project_of(conn, who, org, name).id
        rows = tenancy.list_allocations(conn, project_id=project_id, org_id=visible_org_id(who))
        return [allocation_view(conn, a) for a in rows]


def project_usage(hub: Hub, who: Principal, org: str, project: str) -> list[m.UsageRow]:
    """The GPU-hours charged to ``org/project`` per month and GPU type, in that order."""
    with hub.store.read() as conn:
        prow = project_of(conn, who, org, project)
        rows = tenancy.usage_by_month(conn, prow.id)
    key = f"{org}/{project}"
    return [
        m.UsageRow(project=key, period=r.period, gpu_type=r.gpu_type, gpu_hours=round(r.gpu_seconds / 3600.0, 6))
        for r in sorted(rows, key=lambda r: (r.period, r.gpu_type))
    ]


def balance(hub: Hub, who: Principal, org: str, project: str, now: float | None = None) -> m.Balance:
    """``org/project``'s allocation in force at ``now`` (default: the current time), used and left."""
    at = time.time() if now is None else now
    with hub.store.read() as conn:
        prow = project_of(conn, who, org, project)
        current = [a for a in tenancy.list_allocations(conn, project_id=prow.id) if a.start_s <= at < a.end_s]
        if current:
            view = allocation_view(conn, current[0])
            return m.Balance(project=view.project, period=view.period, granted_gpu_hours=view.gpu_hours,
                             used_gpu_hours=view.used_gpu_hours, left_gpu_hours=view.remaining_gpu_hours)  # fmt: skip
        used = sum(r.gpu_seconds for r in tenancy.usage_by_month(conn, prow.id)) / 3600.0
    return m.Balance(project=f"{org}/{project}", period=None, granted_gpu_hours=None,
                     used_gpu_hours=round(used, 6), left_gpu_hours=None)  # fmt: skip


def usage_by_user(hub: Hub, who: Principal, org: str, project: str, period: str | None = None) -> list[m.UserUsage]:
    """GPU-hours and jobs per user of ``org/project`` (of ``period``, e.g. ``2026-05`` or ``2026-Q2``, if given)."""
    months = None
    if period is not None:
        try:
            months = set(months_between(*period_bounds(period)))
        except ValueError as exc:
            raise Invalid.field("period", str(exc)) from None
    with hub.store.read() as conn:
        prow = project_of(conn, who, org, project)
        rows = tenancy.usage_by_user(conn, prow.id, months)
    key = f"{org}/{project}"
    return [
        m.UserUsage(project=key, user=r.user, jobs=r.jobs, gpu_hours=round(float(r.gpu_seconds) / 3600.0, 6))
        for r in rows
    ]
