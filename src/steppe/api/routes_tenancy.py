"""Organisations, projects, members, tokens, allocations and usage (``/api/v1``).

Each route parses its input, calls one workflow of the application layer and shapes the
response: ``steppe.app.tenancy`` (organisations, projects, shares), ``steppe.app.members``,
``steppe.app.tokens`` and ``steppe.app.allocations`` hold the rules (who may do what), the
store writes and the audit entries (token issue and revocation, new organisations and members,
share changes and allocations, each in the same transaction as the change; allocations and
shares need a ``reason``). Their typed errors are answered by ``steppe.api.problems``.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from steppe.api.deps import HubDep, Who
from steppe.api.params import ShortFilter
from steppe.app import allocations, members, tenancy, tokens
from steppe.client import models as m

router = APIRouter(prefix="/api/v1", tags=["tenancy"])


@router.get("/whoami", response_model=m.Whoami)
def whoami(who: Who) -> m.Whoami:
    return m.Whoami(name=who.name, role=who.role, org=who.org)


# -- organisations and projects ------------------------------------------------------------------------
@router.post("/orgs", status_code=201, response_model=m.Org)
def create_org(body: m.OrgCreate, hub: HubDep, who: Who) -> m.Org:
    return tenancy.create_org(hub, who, body.name, body.country)


@router.get("/orgs", response_model=list[m.Org])
def list_orgs(hub: HubDep, who: Who) -> list[m.Org]:
    return tenancy.list_orgs(hub, who)


@router.get("/orgs/{org}", response_model=m.Org)
def get_org(org: str, hub: HubDep, who: Who) -> m.Org:
    return tenancy.get_org(hub, who, org)


@router.put("/orgs/{org}/share", response_model=m.Org)
def set_share(org: str, body: m.OrgShare, hub: HubDep, who: Who) -> m.Org:
    """Set an organisation's fair-share weight and GPU quota (hub-admin; audited as ``quota.change``).

    The scheduler uses them from its next cycle: a lower quota holds new starts (running jobs
    go on), a higher one releases jobs held with ``QOSGrpGRES``. ``null`` means the cluster
    file's value (weight 1, no quota when the file says nothing).
    """
    return tenancy.set_share(hub, who, org, body.fairshare_weight, body.gpu_quota, body.reason)


@router.post("/orgs/{org}/projects", status_code=201, response_model=m.Project)
def create_project(org: str, body: m.ProjectCreate, hub: HubDep, who: Who) -> m.Project:
    return tenancy.create_project(hub, who, org, body.name)


@router.get("/projects", response_model=list[m.Project])
def list_projects(hub: HubDep, who: Who) -> list[m.Project]:
    return tenancy.list_projects(hub, who)


# -- members and tokens ---------------------------------------------------------------------------------
@router.post("/orgs/{org}/members", status_code=201, response_model=m.User)
def add_member(org: str, body: m.MemberCreate, hub: HubDep, who: Who) -> m.User:
    """Add a member or org-admin (org-admins may), or a reviewer belonging to ``org`` (hub-admins only)."""
    return members.add_member(hub, who, org, body)


@router.get("/orgs/{org}/members", response_model=list[m.User])
def list_members(org: str, hub: HubDep, who: Who) -> list[m.User]:
    return members.list_members(hub, who, org)


@router.delete("/orgs/{org}/members/{name}", status_code=204)
def remove_member(org: str, name: str, hub: HubDep, who: Who) -> Response:
    members.remove_member(hub, who, org, name)
    return Response(status_code=204)


@router.post("/users/{name}/tokens", status_code=201, response_model=m.TokenCreated)
def create_token(name: str, body: m.TokenCreate, hub: HubDep, who: Who) -> m.TokenCreated:
    return tokens.create_token(hub, who, name, body)


@router.get("/users/{name}/tokens", response_model=list[m.TokenInfo])
def list_tokens(name: str, hub: HubDep, who: Who) -> list[m.TokenInfo]:
    return tokens.list_tokens(hub, who, name)


@router.delete("/tokens/{prefix}", status_code=204)
def revoke_token(prefix: str, hub: HubDep, who: Who) -> Response:
    tokens.revoke_token(hub, who, prefix)
    return Response(status_code=204)


# -- allocations and usage -------------------------------------------------------------------------------
@router.post("/orgs/{org}/projects/{project}/allocations", status_code=201, response_model=m.Allocation)
def create_allocation(org: str, project: str, body: m.AllocationCreate, hub: HubDep, who: Who) -> m.Allocation:
    """Grant a project GPU-hours for a period (hub-admin; audited as ``allocation.create`` with its reason)."""
    return allocations.create_allocation(hub, who, org, project, body)


@router.get("/allocations", response_model=list[m.Allocation])
def list_allocations(hub: HubDep, who: Who, project: str | None = None) -> list[m.Allocation]:
    return allocations.list_allocations(hub, who, project)


@router.get("/orgs/{org}/projects/{project}/usage", response_model=list[m.UsageRow])
def project_usage(org: str, project: str, hub: HubDep, who: Who) -> list[m.UsageRow]:
    return allocations.project_usage(hub, who, org, project)


@router.get("/orgs/{org}/projects/{project}/usage/users", response_model=list[m.UserUsage])
def usage_by_user(org: str, project: str, hub: HubDep, who: Who, period: ShortFilter = None) -> list[m.UserUsage]:
    """GPU-hours and jobs per user of the project (of one period, e.g. ``2026-05``, if given); any member."""
    return allocations.usage_by_user(hub, who, org, project, period)


@router.get("/orgs/{org}/projects/{project}/balance", response_model=m.Balance)
def balance(org: str, project: str, hub: HubDep, who: Who) -> m.Balance:
    """The project's allocation in force, GPU-hours used in its period and left; any member."""
    return allocations.balance(hub, who, org, project)
