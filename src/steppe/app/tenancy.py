"""Tenancy workflows: organisations, projects, and the share of the hub each organisation gets.

* ``create_org``: a hub-admin creates an organisation, audited as ``org.create``; a name taken
  already is a ``Conflict``;
* ``create_project``: a hub-admin or an org-admin of the organisation creates a project, audited
  as ``project.create``; a name taken in that organisation is a ``Conflict``;
* ``list_orgs``, ``get_org``, ``list_projects``: a hub-admin sees every organisation, anyone
  else only their own (another organisation is ``NotFound``, as a missing one);
* ``set_share``: a hub-admin sets an organisation's fair-share weight and GPU quota, with a
  reason, audited as ``quota.change`` (before and after) in the same transaction; the loop
  re-reads tenants and the call waits for the cycle that does. A lower quota holds new starts
  (running jobs go on), a higher one releases jobs held with ``QOSGrpGRES``; ``None`` means the
  cluster file's value.

Example: ``set_share(hub, admin, "kaznu", 2.0, 16, "grant 2026")`` returns the organisation
(``m.Org``) with weight 2 and quota 16; jobs over the old quota start in the next cycle.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from steppe.app.errors import Conflict, NotFound
from steppe.client import models as m
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


def org_view(row: Any) -> m.Org:
    """An organisation as the API shows it."""
    return m.Org(name=row.name, country=row.country, created_s=row.created_s, fairshare_weight=row.fairshare_weight,
                 gpu_quota=row.gpu_quota)  # fmt: skip


def visible_org_id(who: Principal) -> int | None:
    """The organisation a listing is limited to: none for a hub-admin, else the caller's (-1: none at all)."""
    return None if who.is_hub_admin else (who.org_id or -1)


def create_org(hub: Hub, who: Principal, name: str, country: str) -> m.Org:
    """Create the organisation ``name`` (hub-admin; audited as ``org.create``)."""
    who.require_hub_admin()
    now = time.time()
    try:
        with hub.store.write() as conn:
            tenancy.create_org(conn, name, country, now)
            record(conn, actor=who.name, action="org.create", subject=name, time_s=now, details={"country": country})
    except IntegrityError:
        raise Conflict(f"organisation {name!r} already exists") from None
    return m.Org(name=name, country=country, created_s=now)


def list_orgs(hub: Hub, who: Principal) -> list[m.Org]:
    """The organisations ``who`` may see, by name."""
    with hub.store.read() as conn:
        return [org_view(r) for r in tenancy.list_orgs(conn, visible_org_id(who))]


def get_org(hub: Hub, who: Principal, name: str) -> m.Org:
    """The organisation ``name``, if ``who`` may see it."""
    with hub.store.read() as conn:
        return org_view(org_of(conn, who, name))


def create_project(hub: Hub, who: Principal, org: str, name: str) -> m.Project:
    """Create the project ``org/name`` (a hub-admin or an org-admin of ``org``)."""
    now = time.time()
    try:
        with hub.store.write() as conn:
            org_row = org_of(conn, who, org)
            who.require_org_admin(org_row.id)
            tenancy.create_project(conn, org_row.id, name, now)
            record(conn, actor=who.name, action="project.create", subject=f"{org}/{name}", time_s=now,
                   details={"org": org})  # fmt: skip
    except IntegrityError:
        raise Conflict(f"project {org}/{name} already exists") from None
    return m.Project(org=org, name=name, key=f"{org}/{name}", created_s=now)


def list_projects(hub: Hub, who: Principal) -> list[m.Project]:
    """The projects of the organisations ``who`` may see."""
    with hub.store.read() as conn:
        rows = tenancy.list_projects(conn, visible_org_id(who))
    return [m.Project(org=r.org, name=r.name, key=f"{r.org}/{r.name}", created_s=r.created_s) for r in rows]


def set_share(hub: Hub, who: Principal, org: str, weight: float | None, quota: int | None, reason: str) -> m.Org:
    """Set ``org``'s fair-share weight and GPU quota; returns it after the change (module docstring)."""
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
        changed = org_view(org_of(conn, who, org))
    hub.tenants_changed()
    return changed
