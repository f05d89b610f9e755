"""The tenancy and governance workflows of the application layer, without HTTP: organisations and
projects, members, tokens, allocations and usage, datasets, acceptable-use terms, the audit log, and
the review actions with a revocation's cancels and the expiry sweep.

Each workflow checks who may act (a typed error otherwise, the same the API answers), writes the
store and its audit entry in one transaction, and tells the hub what changed (token cache, terms
cache, the loop's governance). In process, with the mock executor (``apphub.app_hub``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from apphub import AppHub, app_hub

from steppe.app import allocations, audit, datasets, jobs, members, review, tenancy, terms, tokens
from steppe.app.auth import Principal
from steppe.app.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from steppe.client import models as m
from steppe.governance.proposal import EXAMPLE_PROPOSAL
from steppe.store import audit as audit_repo


@pytest.fixture
def a(tmp_path: Path) -> Iterator[AppHub]:
    with app_hub(tmp_path) as hub:
        yield hub


@pytest.fixture
def started(tmp_path: Path) -> Iterator[AppHub]:
    """A hub whose loop runs (workflows that wait for its next cycle return at once)."""
    with app_hub(tmp_path, start=True) as hub:
        yield hub


def _audit(a: AppHub, action: str) -> list[Any]:
    with a.hub.store.read() as conn:
        return [e for e in audit_repo.entries(conn) if e.action == action]


def test_organisations_and_projects(a: AppHub) -> None:
    with pytest.raises(Forbidden, match="only a hub-admin"):
        tenancy.create_org(a.hub, a.olga, "kbtu", "KZ")
    org = tenancy.create_org(a.hub, a.admin, "kbtu", "KZ")
    assert (org.name, org.country, org.fairshare_weight, org.gpu_quota) == ("kbtu", "KZ", None, None)
    with pytest.raises(Conflict, match="organisation 'kbtu' already exists"):
        tenancy.create_org(a.hub, a.admin, "kbtu", "KZ")
    [entry] = _audit(a, "org.create")
    assert (entry.actor, entry.subject, entry.details) == ("root", "kbtu", {"country": "KZ"})
    assert [o.name for o in tenancy.list_orgs(a.hub, a.admin)] == ["enu", "kaznu", "kbtu"]
    assert [o.name for o in tenancy.list_orgs(a.hub, a.alice)] == ["kaznu"]
    assert tenancy.get_org(a.hub, a.alice, "kaznu").name == "kaznu"
    with pytest.raises(NotFound, match="organisation 'enu' not found"):
        tenancy.get_org(a.hub, a.alice, "enu")  # another organisation is not found, as a missing one

    with pytest.raises(Forbidden, match="org-admin of this organisation"):
        tenancy.create_project(a.hub, a.alice, "kaznu", "cv")
    with pytest.raises(NotFound):
        tenancy.create_project(a.hub, a.bob, "kaznu", "cv")
    assert tenancy.create_project(a.hub, a.olga, "kaznu", "cv").key == "kaznu/cv"
    with pytest.raises(Conflict, match="project kaznu/cv already exists"):
        tenancy.create_project(a.hub, a.admin, "kaznu", "cv")
    assert sorted(p.key for p in tenancy.list_projects(a.hub, a.alice)) == ["kaznu/cv", "kaznu/nlp"]
    assert len(tenancy.list_projects(a.hub, a.admin)) == 3


def test_share_change_is_audited_and_returned(started: AppHub) -> None:
    a = started
    org = tenancy.set_share(a.hub, a.admin, "kaznu", 2.0, 16, "grant 2026")
    assert (org.name, org.fairshare_weight, org.gpu_quota) == ("kaznu", 2.0, 16)
    [entry] = _audit(a, "quota.change")
    assert entry.reason == "grant 2026"
    assert entry.details == {"before": {"fairshare_weight": None, "gpu_quota": None},
                             "after": {"fairshare_weight": 2.0, "gpu_quota": 16}}  # fmt: skip


def test_members_are_added_listed_and_removed(a: AppHub) -> None:
    with pytest.raises(Forbidden, match="only a hub-admin"):  # asked before the organisation is looked up
        members.add_member(a.hub, a.olga, "nowhere", m.MemberCreate(name="rita", role="reviewer"))
    with pytest.raises(Forbidden):
        members.add_member(a.hub, a.alice, "kaznu", m.MemberCreate(name="carl"))
    with pytest.raises(NotFound):
        members.add_member(a.hub, a.olga, "enu", m.MemberCreate(name="carl"))
    carl = members.add_member(a.hub, a.olga, "kaznu", m.MemberCreate(name="carl"))
    assert (carl.name, carl.org, carl.role, carl.disabled) == ("carl", "kaznu", "member", False)
    with pytest.raises(Conflict, match="user 'bob' already exists"):
        members.add_member(a.hub, a.admin, "kaznu", m.MemberCreate(name="bob"))
    assert members.add_member(a.hub, a.admin, "kaznu", m.MemberCreate(name="rita", role="reviewer")).role == "reviewer"
    assert [e.details for e in _audit(a, "user.create")] == [
        {"org": "kaznu", "role": "member"}, {"org": "kaznu", "role": "reviewer"},
    ]  # fmt: skip
    assert [u.name for u in members.list_members(a.hub, a.alice, "kaznu")] == ["alice", "carl", "olga", "rita"]

    token = tokens.create_token(a.hub, a.olga, "carl", m.TokenCreate(name="laptop")).token
    assert a.hub.auth.verify(f"Bearer {token}").name == "carl"  # now cached
    with pytest.raises(NotFound, match="member 'bob' of kaznu"):
        members.remove_member(a.hub, a.olga, "kaznu", "bob")
    with pytest.raises(Forbidden):
        members.remove_member(a.hub, a.alice, "kaznu", "carl")
    members.remove_member(a.hub, a.olga, "kaznu", "carl")
    with pytest.raises(Unauthenticated):  # every token revoked, the cache cleared at once
        a.hub.auth.verify(f"Bearer {token}")
    assert next(u for u in members.list_members(a.hub, a.olga, "kaznu") if u.name == "carl").disabled
    [entry] = _audit(a, "user.disable")
    assert (entry.actor, entry.subject, entry.details) == ("olga", "carl", {"org": "kaznu", "tokens": "all revoked"})
    with pytest.raises(Conflict, match="user 'carl' is disabled"):
        tokens.create_token(a.hub, a.admin, "carl", m.TokenCreate())


def test_who_may_manage_whose_tokens(a: AppHub) -> None:
    members.add_member(a.hub, a.admin, "kaznu", m.MemberCreate(name="rita", role="reviewer"))
    mine = tokens.create_token(a.hub, a.alice, "alice", m.TokenCreate(name="laptop", expires_in_s=3600))
    assert (mine.user, mine.name) == ("alice", "laptop") and mine.expires_s is not None
    assert mine.token.startswith("stp_") and mine.prefix in mine.token
    with pytest.raises(Forbidden, match="members may manage only their own tokens"):
        tokens.create_token(a.hub, a.alice, "olga", m.TokenCreate())
    with pytest.raises(Forbidden, match="an org-admin may not manage the tokens of a reviewer"):
        tokens.list_tokens(a.hub, a.olga, "rita")
    with pytest.raises(NotFound, match="user 'alice' not found"):
        tokens.list_tokens(a.hub, a.bob, "alice")  # another organisation's user, as a missing one
    assert [t.prefix for t in tokens.list_tokens(a.hub, a.olga, "alice")] == [mine.prefix]
    [issued] = _audit(a, "token.issue")
    assert issued.details == {"prefix": mine.prefix, "name": "laptop", "expires_s": mine.expires_s}

    assert a.hub.auth.verify(f"Bearer {mine.token}").name == "alice"  # now cached
    with pytest.raises(NotFound, match=f"token '{mine.prefix}'"):
        tokens.revoke_token(a.hub, a.bob, mine.prefix)
    with pytest.raises(NotFound):
        tokens.revoke_token(a.hub, a.alice, "stp_nosuch")
    tokens.revoke_token(a.hub, a.olga, mine.prefix)  # an org-admin revokes a member's token
    with pytest.raises(Unauthenticated):
        a.hub.auth.verify(f"Bearer {mine.token}")
    [revoked] = _audit(a, "token.revoke")
    assert (revoked.actor, revoked.subject) == ("olga", mine.prefix)
    assert tokens.list_tokens(a.hub, a.alice, "alice")[0].revoked_s is not None


def test_allocations_and_usage_are_listed_for_those_who_may_see_them(a: AppHub) -> None:
    grant = m.AllocationCreate(period="2031-05", gpu_hours=10, reason="call 1")
    for org in ("kaznu", "enu"):
        allocations.create_allocation(a.hub, a.admin, org, "nlp", grant)
    done = asyncio.run(jobs.submit(a.hub, a.alice, m.JobSubmit(project="kaznu/nlp", argv=["/bin/true"]), None))
    job_id, project_id = done.job_id, done.row.project_id
    with a.hub.store.write() as conn:
        a.hub.store.add_usage(conn, [{
            "job_id": job_id, "project_id": project_id, "period": "2031-05", "gpu_type": "H100", "gpu_seconds": 3600.0,
            "it_kwh": 0.0, "facility_kwh": 0.0, "carbon_kg": 0.0, "cost_kzt": 0.0, "energy_source": "none",
            "first_s": 0.0, "last_s": 3600.0,
        }])  # fmt: skip
    assert [x.project for x in allocations.list_allocations(a.hub, a.admin)] == ["enu/nlp", "kaznu/nlp"]
    [mine] = allocations.list_allocations(a.hub, a.alice)
    assert (mine.project, mine.used_gpu_hours, mine.remaining_gpu_hours) == ("kaznu/nlp", 1.0, 9.0)
    assert allocations.list_allocations(a.hub, a.bob, "enu/nlp")[0].used_gpu_hours == 0.0
    with pytest.raises(NotFound, match="project kaznu/nlp not found"):
        allocations.list_allocations(a.hub, a.bob, "kaznu/nlp")
    usage = allocations.project_usage(a.hub, a.alice, "kaznu", "nlp")
    assert [(u.project, u.period, u.gpu_type, u.gpu_hours) for u in usage] == [("kaznu/nlp", "2031-05", "H100", 1.0)]
    with pytest.raises(NotFound):
        allocations.project_usage(a.hub, a.bob, "kaznu", "nlp")


def test_datasets_are_registered_by_a_hub_admin_with_their_residency_here(started: AppHub) -> None:
    a = started
    body = m.DatasetCreate(name="corpus", jurisdiction="KZ", sensitivity="personal", location="Astana",
                           size_bytes=10**9, allowed_jurisdictions=["kz"])  # fmt: skip
    with pytest.raises(Forbidden, match="only a hub-admin"):
        datasets.register_dataset(a.hub, a.olga, body)
    with pytest.raises(Invalid) as bad:
        datasets.register_dataset(a.hub, a.admin, body.model_copy(update={"location": "atlantis"}))
    assert bad.value.errors[0]["field"] == "location" and "unknown site 'atlantis'" in bad.value.detail
    ds = datasets.register_dataset(a.hub, a.admin, body)
    assert (ds.location, ds.allowed_jurisdictions) == ("astana", ["KZ"])
    assert ds.here is not None and ds.here.allowed and ds.here.staging_time_s == 0.0
    with pytest.raises(Conflict, match="dataset 'corpus' already exists"):
        datasets.register_dataset(a.hub, a.admin, body)
    [entry] = _audit(a, "dataset.register")
    assert (entry.subject, entry.details["location"]) == ("corpus", "Astana")
    assert [d.name for d in datasets.list_datasets(a.hub)] == ["corpus"]
    assert "corpus" in a.hub.loop.governance.registry  # the loop re-read datasets before the call returned


def test_terms_are_published_accepted_once_and_required_for_submission(a: AppHub) -> None:
    with pytest.raises(NotFound, match="acceptable-use terms in force"):
        terms.current_terms(a.hub, a.alice)
    body = m.TermsPublish(version="1", effective_on=date(2000, 1, 1), text="be good")
    with pytest.raises(Forbidden):
        terms.publish_terms(a.hub, a.olga, body)
    published = terms.publish_terms(a.hub, a.admin, body)
    with pytest.raises(Conflict, match="terms version '1' already exists"):
        terms.publish_terms(a.hub, a.admin, body)
    assert a.hub.terms_required(a.alice.user_id, "alice") is not None
    current = terms.current_terms(a.hub, a.alice)
    assert (current.version, current.digest, current.text, current.accepted) == (
        "1",
        published.digest,
        "be good",
        False,
    )
    with pytest.raises(Invalid) as bad:
        terms.accept_terms(a.hub, a.alice, "2")
    assert bad.value.errors == [{"field": "version", "message": "the terms in force are version 1"}]
    assert terms.accept_terms(a.hub, a.alice, "1").accepted
    assert terms.accept_terms(a.hub, a.alice, "1").accepted  # again: nothing more stored
    assert [(e.actor, e.subject) for e in _audit(a, "terms.accept")] == [("alice", "terms 1")]
    assert terms.current_terms(a.hub, a.alice).accepted and not terms.current_terms(a.hub, a.bob).accepted
    assert a.hub.terms_required(a.alice.user_id, "alice") is None  # the submission path's cache was dropped


def test_only_hub_admins_and_reviewers_read_the_audit_log(a: AppHub) -> None:
    tenancy.create_org(a.hub, a.admin, "kbtu", "KZ")
    tokens.create_token(a.hub, a.alice, "alice", m.TokenCreate())
    for who in (a.alice, a.olga):
        with pytest.raises(Forbidden, match="only hub-admins and reviewers may read the audit log"):
            audit.audit_entries(a.hub, who, 0, 10)
        with pytest.raises(Forbidden):
            audit.audit_verify(a.hub, who)
        with pytest.raises(Forbidden):
            audit.audit_export(a.hub, who)
    reviewer = members.add_member(a.hub, a.admin, "enu", m.MemberCreate(name="rita", role="reviewer"))
    rita = Principal(99, reviewer.name, "reviewer", a.bob.org_id, "enu")
    entries = audit.audit_entries(a.hub, rita, 0, 10)
    assert [e.action for e in entries] == ["org.create", "token.issue", "user.create"]
    assert [e.seq for e in audit.audit_entries(a.hub, a.admin, 1, 1)] == [2]
    check = audit.audit_verify(a.hub, a.admin)
    assert check.ok and check.checked == 3 and check.head_seq == 3
    assert check.head_hash is not None and audit.audit_verify(a.hub, a.admin, (3, check.head_hash)).ok
    late = audit.audit_verify(a.hub, a.admin, (5, "0" * 64))
    assert not late.ok and "log ends at seq 3 but the recorded head is seq 5" in late.problem
    assert audit.audit_export(a.hub, rita).count(b"\n") == 3


def test_review_actions_revocation_and_the_expiry_sweep(started: AppHub) -> None:
    a = started
    members.add_member(a.hub, a.admin, "enu", m.MemberCreate(name="rita", role="reviewer"))
    rita = Principal(99, "rita", "reviewer", a.bob.org_id, "enu")
    spec = {**EXAMPLE_PROPOSAL, "org": "kaznu", "project": "nlp"}
    pid = review.submit_new(a.hub, a.alice, spec)
    with pytest.raises(Conflict, match=f"proposal {pid} of kaznu/nlp is submitted: amend it instead"):
        review.submit_new(a.hub, a.alice, spec)
    with pytest.raises(Forbidden):  # an org-admin may not review
        review.act(a.hub, a.olga, pid, m.ReviewAction(action="start_review"))
    with pytest.raises(NotFound):  # another organisation's proposal is not found, as a missing one
        review.act(a.hub, a.bob, pid, m.ReviewAction(action="start_review"))
    olga_reviewer = Principal(a.olga.user_id, "olga", "reviewer", a.olga.org_id, "kaznu")
    with pytest.raises(Forbidden, match="conflict of interest"):
        review.act(a.hub, olga_reviewer, pid, m.ReviewAction(action="start_review"))
    review.act(a.hub, rita, pid, m.ReviewAction(action="start_review"))
    with pytest.raises(Invalid) as bad:
        review.act(a.hub, rita, pid, m.ReviewAction(action="approve", reason="fine"))
    assert bad.value.errors[0]["field"] == "expires_on"
    last_day = a.hub.today() + timedelta(days=3)
    review.act(a.hub, rita, pid, m.ReviewAction(action="approve", reason="fine", expires_on=last_day))
    shown = review.show(a.hub, a.alice, pid)
    assert shown.state == "approved" and shown.approval_current
    assert [s.action for s in shown.transitions or []][-2:] == ["start_review", "approve"]

    job_id = asyncio.run(jobs.submit(a.hub, a.alice, m.JobSubmit(project="kaznu/nlp", argv=["/bin/true"]), None)).job_id
    a.hub.loop.wake_and_wait()
    assert jobs.visible_job(a.hub, a.alice, job_id).state == "RUNNING"
    review.act(a.hub, a.admin, pid, m.ReviewAction(action="revoke", reason="misuse", running_jobs="cancel"))
    assert review.show(a.hub, a.alice, pid).state == "revoked"
    a.hub.loop.wake_and_wait()  # the cancel request written with the revocation is acted on
    assert jobs.visible_job(a.hub, a.alice, job_id).state == "CANCELLED"
    assert [e.details["proposal_id"] for e in _audit(a, "review.revoke")] == [pid]

    pid2 = review.submit_new(a.hub, a.alice, spec)  # a revoked proposal is final: a new one may be submitted
    review.act(a.hub, rita, pid2, m.ReviewAction(action="start_review"))
    review.act(a.hub, rita, pid2, m.ReviewAction(action="approve", reason="fine", expires_on=last_day))
    assert review.expire_sweep(a.hub, today=last_day) == 0  # in force through its last day
    assert review.expire_sweep(a.hub, today=last_day + timedelta(days=1)) == 1
    assert review.show(a.hub, a.alice, pid2).state == "expired"
    assert review.expire_sweep(a.hub, today=last_day + timedelta(days=1)) == 0
