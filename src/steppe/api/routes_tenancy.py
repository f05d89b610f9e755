"""Organisations, projects, members, tokens, allocations and usage (``/api/v1``).

Token issue and revocation, new members and allocations are written to the audit log in the
same transaction as the change; allocations need a ``reason``.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from steppe.api.deps import HubDep, Who
from steppe.api.problems import conflict, forbidden, not_found
from steppe.app import tenancy as tenancy_flow
from steppe.client import models as m
from steppe.store import tenancy
from steppe.store.audit import record

router = APIRouter(prefix="/api/v1", tags=["tenancy"])


def _org(conn: Connection, who: Who, name: str) -> Any:
    return tenancy_flow.org_of(conn, who, name)


def _project(conn: Connection, who: Who, org: str, name: str) -> Any:
    return tenancy_flow.project_of(conn, who, org, name)


def _user_view(row: Any) -> m.User:
    return m.User(
        name=row.name, org=row.org, role=row.role, created_s=row.created_s, disabled=row.disabled_s is not None
    )


@router.get("/whoami", response_model=m.Whoami)
def whoami(who: Who) -> m.Whoami:
    return m.Whoami(name=who.name, role=who.role, org=who.org)


# -- organisations and projects ------------------------------------------------------------------------
@router.post("/orgs", status_code=201, response_model=m.Org)
def create_org(body: m.OrgCreate, hub: HubDep, who: Who) -> m.Org:
    who.require_hub_admin()
    now = time.time()
    try:
        with hub.store.write() as conn:
            tenancy.create_org(conn, body.name, body.country, now)
            record(
                conn,
                actor=who.name,
                action="org.create",
                subject=body.name,
                time_s=now,
                details={"country": body.country},
            )
    except IntegrityError:
        raise conflict(f"organisation {body.name!r} already exists") from None
    return m.Org(name=body.name, country=body.country, created_s=now)


@router.get("/orgs", response_model=list[m.Org])
def list_orgs(hub: HubDep, who: Who) -> list[m.Org]:
    with hub.store.read() as conn:
        rows = tenancy.list_orgs(conn, None if who.is_hub_admin else (who.org_id or -1))
    return [_org_view(r) for r in rows]


def _org_view(r: Any) -> m.Org:
    return m.Org(name=r.name, country=r.country, created_s=r.created_s, fairshare_weight=r.fairshare_weight,
                 gpu_quota=r.gpu_quota)  # fmt: skip


@router.get("/orgs/{org}", response_model=m.Org)
def get_org(org: str, hub: HubDep, who: Who) -> m.Org:
    with hub.store.read() as conn:
        r = _org(conn, who, org)
    return _org_view(r)


@router.put("/orgs/{org}/share", response_model=m.Org)
def set_share(org: str, body: m.OrgShare, hub: HubDep, who: Who) -> m.Org:
    """Set an organisation's fair-share weight and GPU quota (hub-admin; audited as ``quota.change``).

    The scheduler uses them from its next cycle: a lower quota holds new starts (running jobs
    go on), a higher one releases jobs held with ``QOSGrpGRES``. ``null`` means the cluster
    file's value (weight 1, no quota when the file says nothing).
    """
    row = tenancy_flow.set_share(hub, who, org, body.fairshare_weight, body.gpu_quota, body.reason)
    return _org_view(row)


@router.post("/orgs/{org}/projects", status_code=201, response_model=m.Project)
def create_project(org: str, body: m.ProjectCreate, hub: HubDep, who: Who) -> m.Project:
    now = time.time()
    try:
        with hub.store.write() as conn:
            org_row = _org(conn, who, org)
            who.require_org_admin(org_row.id)
            tenancy.create_project(conn, org_row.id, body.name, now)
    except IntegrityError:
        raise conflict(f"project {org}/{body.name} already exists") from None
    return m.Project(org=org, name=body.name, key=f"{org}/{body.name}", created_s=now)


@router.get("/projects", response_model=list[m.Project])
def list_projects(hub: HubDep, who: Who) -> list[m.Project]:
    with hub.store.read() as conn:
        rows = tenancy.list_projects(conn, None if who.is_hub_admin else (who.org_id or -1))
    return [m.Project(org=r.org, name=r.name, key=f"{r.org}/{r.name}", created_s=r.created_s) for r in rows]


# -- members and tokens ---------------------------------------------------------------------------------
@router.post("/orgs/{org}/members", status_code=201, response_model=m.User)
def add_member(org: str, body: m.MemberCreate, hub: HubDep, who: Who) -> m.User:
    """Add a member or org-admin (org-admins may), or a reviewer belonging to ``org`` (hub-admins only)."""
    now = time.time()
    if body.role == "reviewer":
        who.require_hub_admin()
    try:
        with hub.store.write() as conn:
            org_row = _org(conn, who, org)
            who.require_org_admin(org_row.id)
            tenancy.create_user(conn, body.name, org_row.id, body.role, now)
            record(
                conn,
                actor=who.name,
                action="user.create",
                subject=body.name,
                time_s=now,
                details={"org": org, "role": body.role},
            )
    except IntegrityError:
        raise conflict(f"user {body.name!r} already exists") from None
    return m.User(name=body.name, org=org, role=body.role, created_s=now)


@router.get("/orgs/{org}/members", response_model=list[m.User])
def list_members(org: str, hub: HubDep, who: Who) -> list[m.User]:
    with hub.store.read() as conn:
        org_row = _org(conn, who, org)
        return [_user_view(r) for r in tenancy.list_users(conn, org_row.id)]


@router.delete("/orgs/{org}/members/{name}", status_code=204)
def remove_member(org: str, name: str, hub: HubDep, who: Who) -> Response:
    with hub.store.write() as conn:
        org_row = _org(conn, who, org)
        who.require_org_admin(org_row.id)
        user = tenancy.get_user(conn, name)
        if user is None or user.org_id != org_row.id:
            raise not_found(f"member {name!r} of {org}")
        now = time.time()
        tenancy.disable_user(conn, user.id, now)
        record(
            conn,
            actor=who.name,
            action="user.disable",
            subject=name,
            time_s=now,
            details={"org": org, "tokens": "all revoked"},
        )
    hub.auth.clear()
    return Response(status_code=204)


def _user_for_tokens(conn: Connection, who: Who, name: str) -> Any:
    """The user whose tokens ``who`` manages: 404 outside their organisation, 403 without authority
    over the user's role (an org-admin may not mint a reviewer's or a hub-admin's token)."""
    user = tenancy.get_user(conn, name)
    if user is None or not (who.is_hub_admin or (user.org_id is not None and user.org_id == who.org_id)):
        raise not_found(f"user {name!r}")
    if not who.may_manage_tokens_of(user.id, user.role, user.org_id):
        if who.role == "org-admin":
            raise forbidden(f"an org-admin may not manage the tokens of a {user.role}")
        raise forbidden("members may manage only their own tokens")
    return user


@router.post("/users/{name}/tokens", status_code=201, response_model=m.TokenCreated)
def create_token(name: str, body: m.TokenCreate, hub: HubDep, who: Who) -> m.TokenCreated:
    now = time.time()
    expires = now + body.expires_in_s if body.expires_in_s else None
    with hub.store.write() as conn:
        user = _user_for_tokens(conn, who, name)
        if user.disabled_s is not None:
            raise conflict(f"user {name!r} is disabled")
        token, prefix = tenancy.create_token(conn, user.id, body.name, now, expires)
        record(
            conn,
            actor=who.name,
            action="token.issue",
            subject=name,
            time_s=now,
            details={"prefix": prefix, "name": body.name, "expires_s": expires},
        )
    return m.TokenCreated(token=token, prefix=prefix, user=name, name=body.name, expires_s=expires)


@router.get("/users/{name}/tokens", response_model=list[m.TokenInfo])
def list_tokens(name: str, hub: HubDep, who: Who) -> list[m.TokenInfo]:
    with hub.store.read() as conn:
        user = _user_for_tokens(conn, who, name)
        return [m.TokenInfo(**dict(r)) for r in tenancy.list_tokens(conn, user.id)]


@router.delete("/tokens/{prefix}", status_code=204)
def revoke_token(prefix: str, hub: HubDep, who: Who) -> Response:
    with hub.store.write() as conn:
        tok = tenancy.get_token(conn, prefix)
        owner = None
        if tok is not None and tok.org_id is not None and tok.org_id == who.org_id:
            owner = next((u for u in tenancy.list_users(conn, tok.org_id) if u.id == tok.user_id), None)
        allowed = tok is not None and (
            who.is_hub_admin or who.user_id == tok.user_id
            or (owner is not None and who.may_manage_tokens_of(owner.id, owner.role, owner.org_id))
        )  # fmt: skip
        if tok is None or not allowed:
            raise not_found(f"token {prefix!r}")
        now = time.time()
        tenancy.revoke_token(conn, prefix, now)
        record(conn, actor=who.name, action="token.revoke", subject=prefix, time_s=now, details={"prefix": prefix})
    hub.auth.clear()
    return Response(status_code=204)


# -- allocations and usage -------------------------------------------------------------------------------
@router.post("/orgs/{org}/projects/{project}/allocations", status_code=201, response_model=m.Allocation)
def create_allocation(org: str, project: str, body: m.AllocationCreate, hub: HubDep, who: Who) -> m.Allocation:
    """Grant a project GPU-hours for a period (hub-admin; audited as ``allocation.create`` with its reason)."""
    return tenancy_flow.create_allocation(hub, who, org, project, body)


@router.get("/allocations", response_model=list[m.Allocation])
def list_allocations(hub: HubDep, who: Who, project: str | None = None) -> list[m.Allocation]:
    with hub.store.read() as conn:
        project_id = None
        if project is not None:
            org, _, name = project.partition("/")
            project_id = _project(conn, who, org, name).id
        rows = tenancy.list_allocations(
            conn, project_id=project_id, org_id=None if who.is_hub_admin else (who.org_id or -1)
        )
        return [tenancy_flow.allocation_view(conn, a) for a in rows]


@router.get("/orgs/{org}/projects/{project}/usage", response_model=list[m.UsageRow])
def project_usage(org: str, project: str, hub: HubDep, who: Who) -> list[m.UsageRow]:
    with hub.store.read() as conn:
        prow = _project(conn, who, org, project)
        rows = tenancy.usage_by_month(conn, prow.id)
    key = f"{org}/{project}"
    return [
        m.UsageRow(project=key, period=r.period, gpu_type=r.gpu_type, gpu_hours=round(r.gpu_seconds / 3600.0, 6))
        for r in sorted(rows, key=lambda r: (r.period, r.gpu_type))
    ]
