"""Repositories for governance: proposals and their review transitions, terms, datasets, job datasets.

A ``steppe.governance.review.Proposal`` is stored as one row: the spec, the latest screening
and the approval as JSON, and the state and revision as columns; ``proposal_of(row)`` rebuilds
it. Every workflow step adds a ``review_transitions`` row. A project's approval is the one on
its latest proposal (``approvals``): a new proposal can only be created once the earlier one is
final (rejected without an approval, or revoked), so the latest proposal carries whatever
approval is in force.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, select, update

from steppe.governance.approval import Approval, ApprovalConditions
from steppe.governance.proposal import ProposalSpec
from steppe.governance.residency import Dataset, Sensitivity
from steppe.governance.review import Proposal, State, Transition
from steppe.governance.rules import Finding, Outcome, ScreeningResult
from steppe.governance.terms import TermsVersion
from steppe.store.schema import (
    datasets,
    job_datasets,
    organisations,
    projects,
    proposals,
    review_transitions,
    terms_acceptances,
    terms_versions,
)


# -- (de)serialisation ---------------------------------------------------------------------------------
def screening_of(d: dict[str, Any] | None) -> ScreeningResult | None:
    if d is None:
        return None
    findings = tuple(Finding(f["rule_id"], Outcome(f["effect"]), f["citation"], f["reason"]) for f in d["findings"])
    return ScreeningResult(Outcome(d["outcome"]), findings, d["rules_version"], d["compute_flop"], d["systemic_risk"])


def approval_of(d: dict[str, Any] | None) -> Approval | None:
    if d is None:
        return None
    c = d["conditions"]
    cond = ApprovalConditions(date.fromisoformat(c["expires_on"]), c["gpu_hour_cap"],
                              frozenset(c["allowed_gpu_types"]), frozenset(c["allowed_sites"]))
    revoked = date.fromisoformat(d["revoked_on"]) if d["revoked_on"] else None
    return Approval(d["project"], d["org"], cond, d["approved_by"], date.fromisoformat(d["approved_on"]),
                    d["revision"], revoked, d["revoke_reason"], d["running_jobs"])


def proposal_of(row: Any) -> Proposal:
    """The workflow's ``Proposal`` from a ``proposals`` row."""
    return Proposal(ProposalSpec.model_validate(row.spec), State(row.state), row.revision,
                    screening_of(row.screening), approval_of(row.approval))


def _columns(p: Proposal, now: float) -> dict[str, Any]:
    return {
        "state": str(p.state), "revision": p.revision, "spec": p.spec.model_dump(mode="json"),
        "screening": p.screening.as_dict() if p.screening else None,
        "rules_version": p.screening.rules_version if p.screening else None,
        "approval": p.approval.as_dict() if p.approval else None, "updated_s": now,
    }  # fmt: skip


# -- proposals --------------------------------------------------------------------------------------------
_PROPOSAL_COLS = (*proposals.c, projects.c.name.label("project"), organisations.c.name.label("org"))


def _view() -> Any:
    return (
        select(*_PROPOSAL_COLS)
        .join(projects, projects.c.id == proposals.c.project_id)
        .join(organisations, organisations.c.id == proposals.c.org_id)
    )


def create_proposal(conn: Connection, project_id: int, org_id: int, p: Proposal, now: float) -> int:
    key = conn.execute(
        proposals.insert().values(project_id=project_id, org_id=org_id, created_s=now, **_columns(p, now))
    ).inserted_primary_key
    assert key is not None
    return int(key[0])


def save_proposal(conn: Connection, proposal_id: int, p: Proposal, now: float) -> None:
    conn.execute(update(proposals).where(proposals.c.id == proposal_id).values(**_columns(p, now)))


def add_transition(conn: Connection, proposal_id: int, t: Transition, now: float) -> None:
    conn.execute(review_transitions.insert().values(
        proposal_id=proposal_id, t_s=now, actor=t.actor.user, role=str(t.actor.role), action=str(t.action),
        from_state=str(t.from_state), to_state=str(t.to_state), reason=t.reason,
    ))  # fmt: skip


def get_proposal(conn: Connection, proposal_id: int) -> RowMapping | None:
    return conn.execute(_view().where(proposals.c.id == proposal_id)).mappings().first()


def list_proposals(
    conn: Connection, *, org_id: int | None = None, project_id: int | None = None, state: str | None = None
) -> list[RowMapping]:
    stmt = _view()
    if org_id is not None:
        stmt = stmt.where(proposals.c.org_id == org_id)
    if project_id is not None:
        stmt = stmt.where(proposals.c.project_id == project_id)
    if state is not None:
        stmt = stmt.where(proposals.c.state == state)
    return list(conn.execute(stmt.order_by(proposals.c.id)).mappings())


def latest_by_project(conn: Connection) -> dict[str, RowMapping]:
    """``{"org/project": latest proposal row}``."""
    return {f"{r.org}/{r.project}": r for r in list_proposals(conn)}


def approvals(conn: Connection) -> dict[str, Approval]:
    """The approval on each project's latest proposal (in force or not: the check decides)."""
    out = {}
    for key, row in latest_by_project(conn).items():
        a = approval_of(row.approval)
        if a is not None:
            out[key] = a
    return out


def transitions_of(conn: Connection, proposal_id: int) -> list[RowMapping]:
    stmt = select(review_transitions).where(review_transitions.c.proposal_id == proposal_id)
    return list(conn.execute(stmt.order_by(review_transitions.c.id)).mappings())


# -- terms ------------------------------------------------------------------------------------------------
def publish_terms(conn: Connection, t: TermsVersion, text: str, now: float) -> None:
    conn.execute(terms_versions.insert().values(version=t.version, effective_on=t.effective_on.isoformat(),
                                                digest=t.digest, text=text, created_s=now))


def terms(conn: Connection) -> list[TermsVersion]:
    rows = conn.execute(select(terms_versions).order_by(terms_versions.c.id)).mappings()
    return [TermsVersion(r.version, date.fromisoformat(r.effective_on), r.digest) for r in rows]


def terms_text(conn: Connection, version: str) -> str | None:
    return conn.execute(select(terms_versions.c.text).where(terms_versions.c.version == version)).scalar()


def accept_terms(conn: Connection, user_id: int, version: str, now: float) -> None:
    conn.execute(terms_acceptances.insert().values(user_id=user_id, version=version, t_s=now))


def accepted_versions(conn: Connection, user_id: int) -> set[str]:
    stmt = select(terms_acceptances.c.version).where(terms_acceptances.c.user_id == user_id)
    return set(conn.execute(stmt).scalars())


# -- datasets ----------------------------------------------------------------------------------------------
def dataset_of(row: Any) -> Dataset:
    return Dataset(row.name, row.jurisdiction, Sensitivity(row.sensitivity), row.location, int(row.size_bytes),
                   frozenset(row.allowed_jurisdictions), frozenset(row.forbidden_transit))


def create_dataset(conn: Connection, ds: Dataset, now: float) -> int:
    key = conn.execute(datasets.insert().values(
        name=ds.name, jurisdiction=ds.jurisdiction, sensitivity=str(ds.sensitivity), location=ds.location,
        size_bytes=ds.size_bytes, allowed_jurisdictions=sorted(ds.allowed_jurisdictions),
        forbidden_transit=sorted(ds.forbidden_transit), created_s=now,
    )).inserted_primary_key  # fmt: skip
    assert key is not None
    return int(key[0])


def list_datasets(conn: Connection) -> list[RowMapping]:
    return list(conn.execute(select(datasets).order_by(datasets.c.name)).mappings())


def registry(conn: Connection) -> dict[str, Dataset]:
    return {r.name: dataset_of(r) for r in list_datasets(conn)}


def link_job_datasets(conn: Connection, job_id: int, dataset_ids: list[int]) -> None:
    if dataset_ids:
        conn.execute(job_datasets.insert(), [{"job_id": job_id, "dataset_id": d} for d in dataset_ids])


_JOB_DATASETS = select(job_datasets.c.job_id, datasets.c.name).join(
    datasets, datasets.c.id == job_datasets.c.dataset_id
)
_ALL_JOB_DATASETS = _JOB_DATASETS.order_by(job_datasets.c.id)
_DATASETS_OF_JOBS = _JOB_DATASETS.where(job_datasets.c.job_id.in_(bindparam("ids", expanding=True))).order_by(
    job_datasets.c.id
)  # built once: the loop asks for every step's new jobs


def datasets_of_jobs(conn: Connection, job_ids: list[int] | None = None) -> dict[int, list[str]]:
    """``{job id: [dataset names]}`` for the given jobs (every linked job when None)."""
    if job_ids is not None and not job_ids:
        return {}
    found = conn.execute(_ALL_JOB_DATASETS) if job_ids is None else conn.execute(_DATASETS_OF_JOBS, {"ids": job_ids})
    out: dict[int, list[str]] = {}
    for job_id, name in found:
        out.setdefault(job_id, []).append(name)
    return out
