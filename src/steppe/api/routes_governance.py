"""Governance routes (``/api/v1``): proposals and their review, datasets, acceptable-use terms, the audit log.

| method and path | who |
|---|---|
| ``POST /proposals`` (submit), ``PUT /proposals/{id}`` (amend) | members and org-admins of the proposing org |
| ``POST /proposals/check`` (screening dry run: nothing stored) | the proposing org's users, hub-admins |
| ``GET /proposals``, ``GET /proposals/{id}`` | the org's users; reviewers and hub-admins see all |
| ``POST /proposals/{id}/review`` | reviewers (never on their own org's), hub-admins (revoke, expire) |
| ``POST /datasets``; ``GET /datasets`` | hub-admin; everyone |
| ``POST /terms``; ``GET /terms``, ``POST /terms/accept`` | hub-admin; everyone |
| ``GET /audit``, ``GET /audit/verify``, ``GET /audit/export`` | hub-admins and reviewers |

Each route parses its input, calls one workflow of the application layer (``steppe.app.review``,
``datasets``, ``terms``, ``audit``) and shapes the response; the rules, the store writes and the
audit entries (each in the same transaction as its change) live there.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from steppe.api.deps import HubDep, Who
from steppe.api.params import Filter, ProposalId, Seq, ShortFilter
from steppe.app import audit, datasets, terms
from steppe.app import review as review_ops
from steppe.client import models as m

router = APIRouter(prefix="/api/v1", tags=["governance"])
AUDIT_PAGE = 10_000
Spec = Annotated[dict[str, Any], Body(description="a proposal (see docs/governance.md, section 1)")]


# -- proposals -----------------------------------------------------------------------------------------------
@router.post("/proposals", status_code=201, response_model=m.Proposal)
def submit_proposal(body: Spec, hub: HubDep, who: Who) -> m.Proposal:
    """Submit a proposal: validated (422 with field errors, nothing stored), screened, then submitted."""
    return review_ops.show(hub, who, review_ops.submit_new(hub, who, body))


@router.post("/proposals/check", response_model=m.ProposalCheck)
def check_proposal(body: Spec, hub: HubDep, who: Who) -> m.ProposalCheck:
    """Screen a proposal with the hub's rules, rule by rule, as a submission would; nothing stored or audited."""
    return review_ops.check(hub, who, body)


@router.put("/proposals/{proposal_id}", response_model=m.Proposal)
def amend_proposal(proposal_id: ProposalId, body: Spec, hub: HubDep, who: Who) -> m.Proposal:
    """Amend (after changes were requested, or an approved or expired proposal): screened and submitted again."""
    review_ops.amend(hub, who, proposal_id, body)
    return review_ops.show(hub, who, proposal_id)


@router.get("/proposals", response_model=list[m.Proposal])
def list_proposals(hub: HubDep, who: Who, project: Filter = None, state: ShortFilter = None) -> list[m.Proposal]:
    return review_ops.listing(hub, who, project, state)


@router.get("/proposals/{proposal_id}", response_model=m.Proposal)
def get_proposal(proposal_id: ProposalId, hub: HubDep, who: Who) -> m.Proposal:
    """A proposal with its screening (rule, effect, citation, reason per finding) and its history."""
    return review_ops.show(hub, who, proposal_id)


@router.post("/proposals/{proposal_id}/review", response_model=m.Proposal)
def review_proposal(proposal_id: ProposalId, body: m.ReviewAction, hub: HubDep, who: Who) -> m.Proposal:
    """Start review, request changes, approve (with conditions), reject, revoke or expire."""
    review_ops.act(hub, who, proposal_id, body)
    return review_ops.show(hub, who, proposal_id)


# -- datasets ----------------------------------------------------------------------------------------------------
@router.post("/datasets", status_code=201, response_model=m.Dataset)
def register_dataset(body: m.DatasetCreate, hub: HubDep, who: Who) -> m.Dataset:
    """Register a dataset with its jurisdiction, sensitivity, location and residency policy (hub-admin)."""
    return datasets.register_dataset(hub, who, body)


@router.get("/datasets", response_model=list[m.Dataset])
def list_datasets(hub: HubDep, who: Who) -> list[m.Dataset]:
    """Registered datasets, each with the residency decision (route, staging time) at this hub's site."""
    return datasets.list_datasets(hub)


# -- acceptable-use terms ----------------------------------------------------------------------------------------
@router.post("/terms", status_code=201, response_model=m.Terms)
def publish_terms(body: m.TermsPublish, hub: HubDep, who: Who) -> m.Terms:
    """Publish a version of the terms; from ``effective_on`` every user must accept it before submitting."""
    return terms.publish_terms(hub, who, body)


@router.get("/terms", response_model=m.Terms)
def current_terms(hub: HubDep, who: Who) -> m.Terms:
    """The terms in force today, and whether the caller has accepted them."""
    return terms.current_terms(hub, who)


@router.post("/terms/accept", response_model=m.Terms)
def accept_terms(body: m.TermsAccept, hub: HubDep, who: Who) -> m.Terms:
    """Accept the terms in force (the version must be the current one)."""
    return terms.accept_terms(hub, who, body.version)


# -- the audit log ------------------------------------------------------------------------------------------------
@router.get("/audit", response_model=list[m.AuditEntry])
def audit_entries(
    hub: HubDep, who: Who, since_seq: Seq = 0, limit: Annotated[int, Query(ge=1, le=AUDIT_PAGE)] = 1000
) -> list[m.AuditEntry]:
    """Audit entries after ``since_seq``, at most ``limit`` (up to 10,000) of them."""
    return audit.audit_entries(hub, who, since_seq, limit)


@router.get("/audit/verify", response_model=m.AuditVerify)
def audit_verify(
    hub: HubDep,
    who: Who,
    head_seq: Annotated[int | None, Query(ge=0, le=m.MAX_INT)] = None,
    head_hash: Annotated[str | None, Query(max_length=128)] = None,
) -> m.AuditVerify:
    """Check the whole chain as stored; with ``head_seq`` and ``head_hash`` (an earlier head), detect truncation."""
    head = (head_seq, head_hash) if head_seq is not None and head_hash is not None else None
    return audit.audit_verify(hub, who, head)


@router.get("/audit/export", response_class=Response)
def audit_export(hub: HubDep, who: Who) -> Response:
    """Every entry as JSON lines (canonical encoding, with ``hash``), in stored order."""
    return Response(audit.audit_export(hub, who), media_type="application/x-ndjson")
