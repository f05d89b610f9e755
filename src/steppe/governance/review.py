"""The review workflow: declared states and transitions, guarded by small ordered rules.

A proposal moves through the states of ``TRANSITIONS`` only: draft -> submitted -> under review
-> approved (with conditions) / changes requested / rejected; an approval later expires or is
revoked. Screening acts for the hub at submission: a rejecting result rejects the proposal
(``screen_out``), one that requires changes (a missing oversight plan, ...) hands it back as
changes requested (``screen_changes``), so its submitter amends it at once. Amending an approved
proposal (or renewing an expired one) submits it again; the earlier approval stays in force
until a new decision replaces it (a rejected amendment leaves it in force; revoke to end it).
Rejected and revoked proposals are final: a new one is needed.

Each action runs the ``GUARDS`` in order, as Prefect's orchestration rules do; the first that
objects raises ``GovernanceError`` with its message:

1. ``state``: the table allows the action from the proposal's state;
2. ``role``: the actor's role may take the action (``ROLES``; reviewers are a role);
3. ``own_org``: members and org-admins act only on their own organisation's proposals;
4. ``conflict_of_interest``: a reviewer never decides on their own organisation's proposal;
5. ``reason``: decisions (request changes, approve, reject, revoke) give a reason;
6. ``screening``: approval needs a screening without blocking findings;
7. ``conditions``: approval conditions are valid (expiry after today, positive cap);
8. ``approval``: revocation needs an approval in force, expiry one past its date.

Pure functions over frozen dataclasses: each action returns a ``Transition`` holding the new
proposal; the caller stores it and writes ``transition.audit_fields()`` to the audit log.

>>> from datetime import date
>>> from steppe.governance.proposal import EXAMPLE_PROPOSAL, parse_proposal
>>> p = new_proposal(parse_proposal(EXAMPLE_PROPOSAL))
>>> alice = Actor("alice", Role.REVIEWER, org="kaznu")
>>> apply(p, Action.START_REVIEW, alice, today=date(2026, 2, 1))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
steppe.governance.errors.GovernanceError: cannot start_review ...: it is draft; allowed from: submitted
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from typing import Any

from steppe.governance.approval import Approval, ApprovalConditions, RunningJobs
from steppe.governance.errors import GovernanceError
from steppe.governance.proposal import ProposalSpec
from steppe.governance.rules import Outcome, ScreeningResult


class State(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REVOKED = "revoked"


class Role(StrEnum):
    MEMBER = "member"
    ORG_ADMIN = "org-admin"
    REVIEWER = "reviewer"
    HUB_ADMIN = "hub-admin"
    SYSTEM = "system"  # the hub itself: screening rejections and expiry


class Action(StrEnum):
    SUBMIT = "submit"
    SCREEN_OUT = "screen_out"
    SCREEN_CHANGES = "screen_changes"
    START_REVIEW = "start_review"
    REQUEST_CHANGES = "request_changes"
    APPROVE = "approve"
    REJECT = "reject"
    EXPIRE = "expire"
    REVOKE = "revoke"


S = State
# States in which an approval may be in force (an amendment under review, or rejected, leaves it in force).
_WITH_APPROVAL = frozenset({S.APPROVED, S.SUBMITTED, S.UNDER_REVIEW, S.CHANGES_REQUESTED, S.REJECTED})
TRANSITIONS: dict[Action, tuple[frozenset[State], State]] = {
    Action.SUBMIT: (frozenset({S.DRAFT, S.CHANGES_REQUESTED, S.APPROVED, S.EXPIRED}), S.SUBMITTED),
    Action.SCREEN_OUT: (frozenset({S.SUBMITTED}), S.REJECTED),
    Action.SCREEN_CHANGES: (frozenset({S.SUBMITTED}), S.CHANGES_REQUESTED),
    Action.START_REVIEW: (frozenset({S.SUBMITTED}), S.UNDER_REVIEW),
    Action.REQUEST_CHANGES: (frozenset({S.UNDER_REVIEW}), S.CHANGES_REQUESTED),
    Action.APPROVE: (frozenset({S.UNDER_REVIEW}), S.APPROVED),
    Action.REJECT: (frozenset({S.SUBMITTED, S.UNDER_REVIEW}), S.REJECTED),
    Action.EXPIRE: (_WITH_APPROVAL, S.EXPIRED),
    Action.REVOKE: (_WITH_APPROVAL, S.REVOKED),
}
"""Action -> (states it may start from, state it leads to)."""

ROLES: dict[Action, frozenset[Role]] = {
    Action.SUBMIT: frozenset({Role.MEMBER, Role.ORG_ADMIN}),
    Action.SCREEN_OUT: frozenset({Role.SYSTEM}),
    Action.SCREEN_CHANGES: frozenset({Role.SYSTEM}),
    Action.START_REVIEW: frozenset({Role.REVIEWER}),
    Action.REQUEST_CHANGES: frozenset({Role.REVIEWER}),
    Action.APPROVE: frozenset({Role.REVIEWER}),
    Action.REJECT: frozenset({Role.REVIEWER}),
    Action.EXPIRE: frozenset({Role.SYSTEM, Role.HUB_ADMIN}),
    Action.REVOKE: frozenset({Role.REVIEWER, Role.HUB_ADMIN}),
}
"""Who may take each action."""

DECISIONS = frozenset({Action.REQUEST_CHANGES, Action.APPROVE, Action.REJECT, Action.REVOKE})


@dataclass(frozen=True)
class Actor:
    """Who acts: user name, role and organisation (None for hub staff without one)."""

    user: str
    role: Role
    org: str | None = None


SYSTEM = Actor("steppe", Role.SYSTEM)


@dataclass(frozen=True)
class Proposal:
    """A proposal under review: the spec, its state, latest screening and the approval in force."""

    spec: ProposalSpec
    state: State = State.DRAFT
    revision: int = 1
    screening: ScreeningResult | None = None
    approval: Approval | None = None

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def org(self) -> str:
        return self.spec.org


@dataclass(frozen=True)
class Request:
    """An action with its arguments, as the guards see it."""

    proposal: Proposal
    action: Action
    actor: Actor
    today: date
    reason: str = ""
    conditions: ApprovalConditions | None = None


@dataclass(frozen=True)
class Transition:
    """The result of an action: the proposal after it, and what to write to the audit log."""

    proposal: Proposal
    action: Action
    actor: Actor
    from_state: State
    to_state: State
    on: date
    reason: str

    def audit_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``steppe.governance.audit.append`` (add ``time_s``)."""
        details: dict[str, Any] = {"from": str(self.from_state), "to": str(self.to_state), "on": self.on.isoformat(),
                                   "revision": self.proposal.revision, "role": str(self.actor.role)}
        if self.proposal.screening is not None and self.action in (Action.SUBMIT, Action.SCREEN_OUT,
                                                                   Action.SCREEN_CHANGES):
            details["screening"] = self.proposal.screening.as_dict()
        if self.action in (Action.APPROVE, Action.REVOKE, Action.EXPIRE) and self.proposal.approval is not None:
            details["approval"] = self.proposal.approval.as_dict()
        return {"actor": self.actor.user, "action": f"review.{self.action}", "subject": self.proposal.key,
                "reason": self.reason, "details": details}


def _state(q: Request) -> str | None:
    sources, _ = TRANSITIONS[q.action]
    if q.proposal.state in sources:
        return None
    allowed = ", ".join(sorted(str(s) for s in sources))
    return f"it is {q.proposal.state}; allowed from: {allowed}"


def _role(q: Request) -> str | None:
    roles = ROLES[q.action]
    if q.actor.role in roles:
        return None
    return f"role {q.actor.role} may not {q.action}; allowed roles: {', '.join(sorted(roles))}"


def _own_org(q: Request) -> str | None:
    if q.actor.role in (Role.MEMBER, Role.ORG_ADMIN) and q.actor.org != q.proposal.org:
        return f"{q.actor.user} belongs to organisation {q.actor.org!r}, not {q.proposal.org!r}"
    return None


def _conflict_of_interest(q: Request) -> str | None:
    if q.actor.role is Role.REVIEWER and q.actor.org is not None and q.actor.org == q.proposal.org:
        return (f"conflict of interest: reviewer {q.actor.user} belongs to {q.actor.org}, the proposing "
                "organisation; a reviewer from another organisation must decide")
    return None


def _reason(q: Request) -> str | None:
    if q.action in DECISIONS and not q.reason.strip():
        return "a reason is required"
    return None


def _screening(q: Request) -> str | None:
    if q.action is not Action.APPROVE:
        return None
    s = q.proposal.screening
    if s is None:
        return "the proposal has not been screened"
    if s.blocking:
        return "screening blocks approval: " + "; ".join(f"{f.rule_id} ({f.effect})" for f in s.blocking)
    return None


def _conditions(q: Request) -> str | None:
    if q.action is not Action.APPROVE:
        return None
    c = q.conditions
    if c is None:
        return "approval needs conditions (GPU-hour cap, expiry date, allowed GPU types and sites)"
    if c.expires_on <= q.today:
        return f"expiry date {c.expires_on} must be after today ({q.today})"
    if c.gpu_hour_cap is not None and c.gpu_hour_cap <= 0:
        return f"GPU-hour cap must be > 0, got {c.gpu_hour_cap}"
    return None


def _approval(q: Request) -> str | None:
    a = q.proposal.approval
    if q.action is Action.REVOKE and (a is None or a.revoked_on is not None):
        return "it has no approval in force"
    if q.action is Action.EXPIRE and (a is None or a.current(q.today)):
        return "its approval has not passed its expiry date"
    return None


Guard = Callable[[Request], str | None]
GUARDS: tuple[tuple[str, Guard], ...] = (
    ("state", _state),
    ("role", _role),
    ("own_org", _own_org),
    ("conflict_of_interest", _conflict_of_interest),
    ("reason", _reason),
    ("screening", _screening),
    ("conditions", _conditions),
    ("approval", _approval),
)
"""Ordered guards: (name, check returning an objection or None)."""


def apply(
    proposal: Proposal,
    action: Action,
    actor: Actor,
    *,
    today: date,
    reason: str = "",
    conditions: ApprovalConditions | None = None,
    running_jobs: RunningJobs = "finish",
) -> Transition:
    """Take ``action`` if every guard agrees; else raise ``GovernanceError`` naming the objection.

    ``conditions`` is for ``approve``; ``running_jobs`` for ``revoke``.
    """
    q = Request(proposal, action, actor, today, reason, conditions)
    for _name, guard in GUARDS:
        objection = guard(q)
        if objection is not None:
            raise GovernanceError(f"cannot {action} proposal {proposal.key}: {objection}")
    target = TRANSITIONS[action][1]
    approval = proposal.approval
    if action is Action.APPROVE and conditions is not None:  # the guards require conditions
        approval = Approval(proposal.key, proposal.org, conditions, actor.user, today, proposal.revision)
    elif action is Action.REVOKE and approval is not None:  # the guards require an approval in force
        approval = approval.revoke(today, reason, running_jobs)
    new = replace(proposal, state=target, approval=approval)
    return Transition(new, action, actor, proposal.state, target, today, reason)


def new_proposal(spec: ProposalSpec) -> Proposal:
    """A draft proposal."""
    return Proposal(spec)


def submit(
    proposal: Proposal, actor: Actor, screening: ScreeningResult, *, today: date, spec: ProposalSpec | None = None
) -> list[Transition]:
    """Submit (or amend, with a new ``spec``) after screening; a rejecting screening also rejects it, and
    one that requires changes hands it back to the submitter at once (no reviewer needs to act first).

    Returns the transitions in order: one, or two (submit, then ``screen_out`` by the hub when the rules
    reject, or ``screen_changes`` when they require changes: the proposal is then ``changes_requested``
    and its submitter may amend it).
    """
    if spec is not None and (spec.org, spec.project) != (proposal.spec.org, proposal.spec.project):
        raise GovernanceError(f"cannot amend proposal {proposal.key}: an amendment may not change org or project")
    revised = proposal.state is not State.DRAFT
    p = replace(proposal, spec=spec or proposal.spec, screening=screening, revision=proposal.revision + revised)
    steps = [apply(p, Action.SUBMIT, actor, today=today)]
    if screening.outcome is Outcome.REJECT:
        why = "screening rejected it: " + "; ".join(
            f"{f.rule_id}: {f.reason} ({f.citation})" for f in screening.findings if f.effect is Outcome.REJECT
        )
        steps.append(apply(steps[0].proposal, Action.SCREEN_OUT, SYSTEM, today=today, reason=why))
    elif screening.outcome is Outcome.CHANGES_REQUIRED:
        why = "screening requires changes: " + "; ".join(
            f"{f.rule_id}: {f.reason} ({f.citation})" for f in screening.blocking
        )
        steps.append(apply(steps[0].proposal, Action.SCREEN_CHANGES, SYSTEM, today=today, reason=why))
    return steps


def approve(
    proposal: Proposal, reviewer: Actor, conditions: ApprovalConditions, *, today: date, reason: str
) -> Transition:
    """Approve with conditions (see ``ApprovalConditions``)."""
    return apply(proposal, Action.APPROVE, reviewer, today=today, reason=reason, conditions=conditions)


def revoke(proposal: Proposal, actor: Actor, *, today: date, reason: str, running_jobs: RunningJobs) -> Transition:
    """Revoke the approval in force: new starts stop; running jobs finish or are cancelled, as chosen."""
    return apply(proposal, Action.REVOKE, actor, today=today, reason=reason, running_jobs=running_jobs)


def expire_due(proposal: Proposal, today: date) -> Transition | None:
    """Mark the proposal expired when its approval's expiry date has passed (run daily); else None."""
    a = proposal.approval
    if a is None or a.revoked_on is not None or a.current(today) or proposal.state not in _WITH_APPROVAL:
        return None
    return apply(proposal, Action.EXPIRE, SYSTEM, today=today, reason=f"approval expired on {a.conditions.expires_on}")
