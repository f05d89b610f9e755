"""Helpers for the governance tests: proposals, reviewers, approvals, the hub's local date."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from hubtest import JOB_PY, HubProcess, Tenant

from steppe.client import HubClient
from steppe.client import models as m
from steppe.governance.admission import local_date
from steppe.governance.proposal import EXAMPLE_PROPOSAL


def hub_today() -> date:
    """The hub's local date (its site astana's zone, Asia/Almaty), as it decides approval dates."""
    return local_date("Asia/Almaty")(time.time())


def spec(t: Tenant, **changes: Any) -> dict[str, Any]:
    org, _, project = t.project.partition("/")
    return {**EXAMPLE_PROPOSAL, "org": org, "project": project, **changes}


def reviewer(hub: HubProcess, org: str, name: str) -> HubClient:
    """A reviewer belonging to ``org`` (created with the org if needed)."""
    root = hub.client()
    if org not in {o.name for o in root.list_orgs()}:
        root.create_org(org, "KZ")
    root.add_member(org, name, "reviewer")
    return hub.client(root.create_token(name).token)


def approve(t: Tenant, rev: HubClient, days: int = 30, **conditions: Any) -> m.Proposal:
    """Submit the tenant's proposal and have ``rev`` approve it."""
    p = t.member.submit_proposal(spec(t))
    rev.review(p.id, m.ReviewAction(action="start_review"))
    body = m.ReviewAction(action="approve", reason="meets the rules", expires_on=hub_today() + timedelta(days=days),
                          **conditions)
    return rev.review(p.id, body)


def job(project: str, code: str, **kw: Any) -> m.JobSubmit:

    return m.JobSubmit(project=project, argv=[JOB_PY, "-c", code], **kw)
