"""The review workflow on the store: each step is stored with its audit entry in one transaction.

``submit_new`` and ``amend`` parse the proposal (a ``ProposalError`` becomes ``Invalid``, a 422
with field errors, and nothing is stored), screen it with the hub's rules and run ``review.submit``;
``act`` runs a reviewer's or hub-admin's action (``review.apply``). ``check`` is a submission's dry run:
the same parsing, project lookup and screening with the hub's rules, answered rule by rule, with
nothing stored or audited. A screening that requires changes hands the proposal back at once
(``screen_changes``), so its submitter amends it without waiting for a reviewer. Each ``Transition`` is
saved as the proposal's new row, a ``review_transitions`` row and an audit entry
(``transition.audit_fields()``), all in the same transaction. A revocation with
``running_jobs="cancel"`` also writes a cancel request for each of the project's running jobs
(``revocation_effect``) in that transaction; with ``finish`` they run on. After the commit the
loop re-reads approvals, so queued jobs are held or released in the next cycle.

A ``GovernanceError`` becomes ``Forbidden`` (403) when the objection is about who acts (role,
organisation, conflict of interest) and ``Conflict`` (409) otherwise (state, reason, screening,
conditions). ``expire_sweep`` marks approvals past their last day expired (on start and every
5 minutes, ``Hub.start``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from steppe.app.errors import AppError, Conflict, Forbidden, Invalid, NotFound
from steppe.client import models as m
from steppe.governance import review
from steppe.governance.approval import ApprovalConditions, revocation_effect
from steppe.governance.errors import GovernanceError, ProposalError
from steppe.governance.proposal import parse_proposal
from steppe.governance.review import Action, Proposal, State, Transition
from steppe.governance.rules import Outcome, rule_checks, screen
from steppe.store import governance as gov_repo
from steppe.store import jobs as job_repo
from steppe.store import tenancy
from steppe.store.audit import record

if TYPE_CHECKING:
    from steppe.app.auth import Principal
    from steppe.app.hub import Hub

WHO_GUARDS = frozenset({"role", "own_org", "conflict_of_interest"})
FINAL = frozenset({State.REJECTED, State.REVOKED})


def problem_for(exc: GovernanceError, q: review.Request) -> AppError:
    """``Forbidden`` when the first objecting guard is about who acts, else ``Conflict``."""
    name = next((n for n, guard in review.GUARDS if guard(q) is not None), "")
    return Forbidden(str(exc)) if name in WHO_GUARDS else Conflict(str(exc))


def parse(body: Mapping[str, Any]) -> Any:
    try:
        return parse_proposal(body)
    except ProposalError as exc:
        errors = [{"field": e["field"] or "body", "message": e["message"]} for e in exc.errors]
        raise Invalid(errors, title="Invalid proposal") from None


def store_steps(conn: Connection, proposal_id: int, steps: list[Transition], now: float) -> None:
    """Save the proposal after the last step, and a transition row and an audit entry per step."""
    gov_repo.save_proposal(conn, proposal_id, steps[-1].proposal, now)
    for t in steps:
        gov_repo.add_transition(conn, proposal_id, t, now)
        fields = t.audit_fields()
        fields["details"]["proposal_id"] = proposal_id
        record(conn, time_s=now, **fields)


def submit_new(hub: Hub, who: Principal, body: Mapping[str, Any]) -> int:
    """Create and submit a proposal; returns its id."""
    spec = parse(body)
    now, today = time.time(), hub.today()
    with hub.store.write() as conn:
        prow = tenancy.get_project(conn, spec.org, spec.project)
        if prow is None or not who.sees_org(prow.org_id):
            raise Invalid.field("project", f"no project {spec.key!r}")
        open_ = [r for r in gov_repo.list_proposals(conn, project_id=prow.id) if State(r.state) not in FINAL]
        if open_:
            raise Conflict(f"proposal {open_[-1].id} of {spec.key} is {open_[-1].state}: amend it instead")
        draft = review.new_proposal(spec)
        try:
            steps = review.submit(draft, who.actor, screen(spec, hub.rules), today=today)
        except GovernanceError as exc:
            raise problem_for(exc, review.Request(draft, Action.SUBMIT, who.actor, today)) from None
        pid = gov_repo.create_proposal(conn, prow.id, prow.org_id, draft, now)
        record(
            conn,
            actor=who.name,
            action="proposal.create",
            subject=spec.key,
            time_s=now,
            details={"proposal_id": pid, "spec": spec.model_dump(mode="json")},
        )
        store_steps(conn, pid, steps, now)
    return pid


AMENDABLE = frozenset(src for src in review.TRANSITIONS[Action.SUBMIT][0] if src is not State.DRAFT)


def check(hub: Hub, who: Principal, body: Mapping[str, Any]) -> m.ProposalCheck:
    """Screen a proposal as ``submit_new`` or ``amend`` would, with the hub's rules, rule by rule; nothing is
    stored and nothing audited. The same refusals as a submission: ``Invalid`` naming each bad field, or the
    project when it does not exist or belongs to another organisation."""
    spec = parse(body)
    with hub.store.read() as conn:
        prow = tenancy.get_project(conn, spec.org, spec.project)
        if prow is None or not who.sees_org(prow.org_id):
            raise Invalid.field("project", f"no project {spec.key!r}")
        open_ = [r for r in gov_repo.list_proposals(conn, project_id=prow.id) if State(r.state) not in FINAL]
    result = screen(spec, hub.rules)
    checks = [
        m.RuleResult(rule_id=c.rule_id, result=str(c.effect or "pass"), citation=c.citation, reason=c.reason)
        for c in rule_checks(result, hub.rules)
    ]
    latest = open_[-1] if open_ else None
    if result.blocking:
        verb = "reject" if result.outcome is Outcome.REJECT else "require changes to"
        step = f"screening would {verb} it: change what the findings name and check again"
    elif latest is None:
        step = "submit it: steppe proposal submit FILE"
    elif State(latest.state) in AMENDABLE:
        step = f"amend proposal {latest.id} ({latest.state}): steppe proposal amend {latest.id} FILE"
    else:
        step = f"proposal {latest.id} of {spec.key} is {latest.state}: a reviewer decides it before it can be amended"
    return m.ProposalCheck(
        project=spec.key,
        screening=m.Screening.model_validate(result.as_dict()),
        rules=checks,
        open_proposal=None if latest is None else latest.id,
        next_step=step,
    )


def _load(conn: Connection, who: Principal, proposal_id: int) -> tuple[Any, Proposal]:
    row = gov_repo.get_proposal(conn, proposal_id)
    if row is None or not (who.is_hub_admin or who.is_reviewer or who.org_id == row.org_id):
        raise NotFound(f"proposal {proposal_id}")
    return row, gov_repo.proposal_of(row)


def amend(hub: Hub, who: Principal, proposal_id: int, body: Mapping[str, Any]) -> None:
    """Submit a changed spec for the same project (screened again)."""
    spec = parse(body)
    now, today = time.time(), hub.today()
    with hub.store.write() as conn:
        _, p = _load(conn, who, proposal_id)
        try:
            steps = review.submit(p, who.actor, screen(spec, hub.rules), today=today, spec=spec)
        except GovernanceError as exc:
            raise problem_for(exc, review.Request(p, Action.SUBMIT, who.actor, today)) from None
        store_steps(conn, proposal_id, steps, now)
    hub.governance_changed()


def conditions_of(body: m.ReviewAction, hub: Hub) -> ApprovalConditions | None:
    """An approval's conditions; ``Invalid`` naming the field for a missing expiry, an unknown site or GPU type."""
    if body.action != "approve":
        return None
    if body.expires_on is None:
        raise Invalid.field("expires_on", "required to approve (the approval's last day)")
    sites = hub.loop.governance.topology.sites
    unknown = [s for s in body.allowed_sites if s.lower() not in sites]
    if unknown:
        raise Invalid.field(
            "allowed_sites", f"unknown site {', '.join(unknown)} (sites: {', '.join(sorted(sites))}; e.g. astana)"
        )
    types = hub.fleet.cluster.gpus_by_type
    unknown = [t for t in body.allowed_gpu_types if t.upper() not in types]
    if unknown:
        have = ", ".join(sorted(types))
        example = min(types, default="H100")
        raise Invalid.field(
            "allowed_gpu_types", f"the hub has no GPUs of type {', '.join(unknown)} (it has {have}; e.g. {example})"
        )
    return ApprovalConditions(
        body.expires_on, body.gpu_hour_cap, frozenset(body.allowed_gpu_types), frozenset(body.allowed_sites)
    )


def act(hub: Hub, who: Principal, proposal_id: int, body: m.ReviewAction) -> None:
    """A reviewer's or hub-admin's action; see the module docstring."""
    now, today = time.time(), hub.today()
    conditions = conditions_of(body, hub)
    action = Action(body.action)
    with hub.store.write() as conn:
        row, p = _load(conn, who, proposal_id)
        try:
            t = review.apply(
                p,
                action,
                who.actor,
                today=today,
                reason=body.reason,
                conditions=conditions,
                running_jobs=body.running_jobs,
            )
        except GovernanceError as exc:
            q = review.Request(p, action, who.actor, today, body.reason, conditions)
            raise problem_for(exc, q) from None
        store_steps(conn, proposal_id, [t], now)
        if action is Action.REVOKE and t.proposal.approval is not None:
            running, _ = job_repo.list_jobs(conn, project_id=row.project_id, states=["RUNNING"], limit=100000)
            effect = revocation_effect(t.proposal.approval, [r.id for r in running])
            for job_id in effect.cancel:
                job_repo.add_request(conn, job_id, "cancel", f"{who.name} (approval revoked)", now)
    hub.governance_changed()


def expire_sweep(hub: Hub, today: date | None = None) -> int:
    """Mark proposals whose approval passed its expiry date as expired (run on start and every 5 min)."""
    today = today or hub.today()
    now = time.time()
    changed = 0
    with hub.store.write() as conn:
        for row in gov_repo.latest_by_project(conn).values():
            t = review.expire_due(gov_repo.proposal_of(row), today)
            if t is not None:
                store_steps(conn, row.id, [t], now)
                changed += 1
    if changed:
        hub.governance_changed()
    return changed


def view(row: Any, today: date, steps: list[Any] | None = None) -> m.Proposal:
    p = gov_repo.proposal_of(row)
    return m.Proposal(
        id=row.id, project=f"{row.org}/{row.project}", state=row.state, revision=row.revision, spec=row.spec,
        screening=m.Screening.model_validate(row.screening) if row.screening else None, approval=row.approval,
        approval_current=p.approval is not None and p.approval.current(today), created_s=row.created_s,
        updated_s=row.updated_s,
        transitions=None if steps is None else [m.ReviewStep.model_validate(dict(s)) for s in steps],
    )  # fmt: skip


def show(hub: Hub, who: Principal, proposal_id: int) -> m.Proposal:
    with hub.store.read() as conn:
        row, _ = _load(conn, who, proposal_id)
        return view(row, hub.today(), gov_repo.transitions_of(conn, proposal_id))


def listing(hub: Hub, who: Principal, project: str | None, state: str | None) -> list[m.Proposal]:
    today = hub.today()
    with hub.store.read() as conn:
        project_id = None
        if project is not None:
            prow = tenancy.get_project(conn, *(project.split("/", 1) + [""])[:2])
            if prow is None or not (who.is_hub_admin or who.is_reviewer or who.sees_org(prow.org_id)):
                raise NotFound(f"project {project}")
            project_id = prow.id
        everyone = who.is_hub_admin or who.is_reviewer
        rows = gov_repo.list_proposals(
            conn, org_id=None if everyone else (who.org_id or -1), project_id=project_id, state=state
        )
    return [view(r, today) for r in rows]
