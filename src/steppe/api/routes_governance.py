"""Governance routes (``/api/v1``): proposals and their review, datasets, acceptable-use terms, the audit log.

| method and path | who |
|---|---|
| ``POST /proposals`` (submit), ``PUT /proposals/{id}`` (amend) | members and org-admins of the proposing org |
| ``GET /proposals``, ``GET /proposals/{id}`` | the org's users; reviewers and hub-admins see all |
| ``POST /proposals/{id}/review`` | reviewers (never on their own org's), hub-admins (revoke, expire) |
| ``POST /datasets``; ``GET /datasets`` | hub-admin; everyone |
| ``POST /terms``; ``GET /terms``, ``POST /terms/accept`` | hub-admin; everyone |
| ``GET /audit``, ``GET /audit/verify``, ``GET /audit/export`` | hub-admins and reviewers |

Every change writes its audit entry in the same transaction (``steppe.store.audit``).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from sqlalchemy.exc import IntegrityError

from steppe.api.deps import HubDep, Who
from steppe.api.params import Filter, ProposalId, Seq, ShortFilter
from steppe.api.problems import conflict, field_problem, forbidden, not_found
from steppe.app import review as review_ops
from steppe.client import models as m
from steppe.governance.audit import canonical, verify
from steppe.governance.residency import Dataset, Sensitivity, decide
from steppe.governance.terms import TermsVersion, terms_in_force
from steppe.store import audit as audit_repo
from steppe.store import governance as gov_repo
from steppe.store.audit import record

router = APIRouter(prefix="/api/v1", tags=["governance"])
AUDIT_PAGE = 10_000
Spec = Annotated[dict[str, Any], Body(description="a proposal (see docs/governance.md, section 1)")]


# -- proposals -----------------------------------------------------------------------------------------------
@router.post("/proposals", status_code=201, response_model=m.Proposal)
def submit_proposal(body: Spec, hub: HubDep, who: Who) -> m.Proposal:
    """Submit a proposal: validated (422 with field errors, nothing stored), screened, then submitted."""
    return review_ops.show(hub, who, review_ops.submit_new(hub, who, body))


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
def _dataset_view(hub: HubDep, row: Any) -> m.Dataset:
    gov = hub.loop.governance
    here = decide(gov_repo.dataset_of(row), gov.site, gov.topology)
    return m.Dataset(
        name=row.name, jurisdiction=row.jurisdiction, sensitivity=row.sensitivity, location=row.location,
        size_bytes=row.size_bytes, allowed_jurisdictions=row.allowed_jurisdictions,
        forbidden_transit=row.forbidden_transit, created_s=row.created_s, here=m.Staging(**asdict(here)),
    )  # fmt: skip


@router.post("/datasets", status_code=201, response_model=m.Dataset)
def register_dataset(body: m.DatasetCreate, hub: HubDep, who: Who) -> m.Dataset:
    """Register a dataset with its jurisdiction, sensitivity, location and residency policy (hub-admin)."""
    who.require_hub_admin()
    sites = hub.loop.governance.topology.sites
    if body.location.lower() not in sites:
        raise field_problem("location", f"unknown site {body.location!r}; sites: {', '.join(sorted(sites))}")
    ds = Dataset(
        body.name,
        body.jurisdiction,
        Sensitivity(body.sensitivity),
        body.location.lower(),
        body.size_bytes,
        frozenset(j.upper() for j in body.allowed_jurisdictions),
        frozenset(c.upper() for c in body.forbidden_transit),
    )
    now = time.time()
    try:
        with hub.store.write() as conn:
            gov_repo.create_dataset(conn, ds, now)
            record(
                conn,
                actor=who.name,
                action="dataset.register",
                subject=ds.name,
                time_s=now,
                details=body.model_dump(mode="json"),
            )
    except IntegrityError:
        raise conflict(f"dataset {body.name!r} already exists") from None
    hub.governance_changed()
    with hub.store.read() as conn:
        row = next(r for r in gov_repo.list_datasets(conn) if r.name == body.name)
    return _dataset_view(hub, row)


@router.get("/datasets", response_model=list[m.Dataset])
def list_datasets(hub: HubDep, who: Who) -> list[m.Dataset]:
    """Registered datasets, each with the residency decision (route, staging time) at this hub's site."""
    with hub.store.read() as conn:
        rows = gov_repo.list_datasets(conn)
    return [_dataset_view(hub, r) for r in rows]


# -- acceptable-use terms ----------------------------------------------------------------------------------------
@router.post("/terms", status_code=201, response_model=m.Terms)
def publish_terms(body: m.TermsPublish, hub: HubDep, who: Who) -> m.Terms:
    """Publish a version of the terms; from ``effective_on`` every user must accept it before submitting."""
    who.require_hub_admin()
    t = TermsVersion.of_text(body.version, body.effective_on, body.text)
    now = time.time()
    try:
        with hub.store.write() as conn:
            gov_repo.publish_terms(conn, t, body.text, now)
            record(
                conn,
                actor=who.name,
                action="terms.publish",
                subject=f"terms {t.version}",
                time_s=now,
                details={"version": t.version, "effective_on": t.effective_on.isoformat(), "digest": t.digest},
            )
    except IntegrityError:
        raise conflict(f"terms version {body.version!r} already exists") from None
    hub.terms_changed()
    return m.Terms(version=t.version, effective_on=t.effective_on, digest=t.digest, text=body.text)


@router.get("/terms", response_model=m.Terms)
def current_terms(hub: HubDep, who: Who) -> m.Terms:
    """The terms in force today, and whether the caller has accepted them."""
    with hub.store.read() as conn:
        t = terms_in_force(gov_repo.terms(conn), hub.today())
        if t is None:
            raise not_found("acceptable-use terms in force")
        text = gov_repo.terms_text(conn, t.version) or ""
        accepted = t.version in gov_repo.accepted_versions(conn, who.user_id)
    return m.Terms(version=t.version, effective_on=t.effective_on, digest=t.digest, text=text, accepted=accepted)


@router.post("/terms/accept", response_model=m.Terms)
def accept_terms(body: m.TermsAccept, hub: HubDep, who: Who) -> m.Terms:
    """Accept the terms in force (the version must be the current one)."""
    now = time.time()
    with hub.store.write() as conn:
        t = terms_in_force(gov_repo.terms(conn), hub.today())
        if t is None or t.version != body.version:
            raise field_problem("version", f"the terms in force are version {t.version if t else 'none'}")
        if t.version not in gov_repo.accepted_versions(conn, who.user_id):
            gov_repo.accept_terms(conn, who.user_id, t.version, now)
            record(
                conn,
                actor=who.name,
                action="terms.accept",
                subject=f"terms {t.version}",
                time_s=now,
                details={"digest": t.digest},
            )
        text = gov_repo.terms_text(conn, t.version) or ""
    hub.terms_changed()
    return m.Terms(version=t.version, effective_on=t.effective_on, digest=t.digest, text=text, accepted=True)


# -- the audit log ------------------------------------------------------------------------------------------------
def _auditor(who: Who) -> None:
    if not (who.is_hub_admin or who.is_reviewer):
        raise forbidden("only hub-admins and reviewers may read the audit log")


@router.get("/audit", response_model=list[m.AuditEntry])
def audit_entries(
    hub: HubDep, who: Who, since_seq: Seq = 0, limit: Annotated[int, Query(ge=1, le=AUDIT_PAGE)] = 1000
) -> list[m.AuditEntry]:
    """Audit entries after ``since_seq``, at most ``limit`` (up to 10,000) of them."""
    _auditor(who)
    with hub.store.read() as conn:
        return [m.AuditEntry(**asdict(e)) for e in audit_repo.entries(conn, since_seq, limit)]


@router.get("/audit/verify", response_model=m.AuditVerify)
def audit_verify(
    hub: HubDep,
    who: Who,
    head_seq: Annotated[int | None, Query(ge=0, le=m.MAX_INT)] = None,
    head_hash: Annotated[str | None, Query(max_length=128)] = None,
) -> m.AuditVerify:
    """Check the whole chain as stored; with ``head_seq`` and ``head_hash`` (an earlier head), detect truncation."""
    _auditor(who)
    expect = (head_seq, head_hash) if head_seq is not None and head_hash is not None else None
    with hub.store.read() as conn:
        r = verify(audit_repo.entries(conn), expect)
    return m.AuditVerify(
        ok=r.ok,
        checked=r.checked,
        first_bad_seq=r.first_bad_seq,
        problem=r.problem,
        head_seq=r.head[0] if r.head else None,
        head_hash=r.head[1] if r.head else None,
    )


@router.get("/audit/export", response_class=Response)
def audit_export(hub: HubDep, who: Who) -> Response:
    """Every entry as JSON lines (canonical encoding, with ``hash``), in stored order."""
    _auditor(who)
    with hub.store.read() as conn:
        lines = [canonical(asdict(e)) + b"\n" for e in audit_repo.entries(conn)]
    return Response(b"".join(lines), media_type="application/x-ndjson")
