"""Governance end to end on a real gated hub: review gates compute, residency, terms, the audit log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import pytest
from govtest import approve, hub_today, job, reviewer, spec
from hubtest import HubProcess, Tenant, make_tenant, wait_for

from steppe.client import HubClient, HubError
from steppe.client import models as m

SLEEP = "import time; print('up', flush=True); time.sleep(60)"


@pytest.fixture(scope="module")
def ghub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A gated hub (the default): 4 H200 GPUs at astana, a 1 s grace period."""
    data = tmp_path_factory.mktemp("ghub") / "data"
    proc = HubProcess(data, "--gpus", "4", "--gpu-type", "H200", "--grace", "1", "--charge-interval", "0.2").start()
    yield proc
    proc.stop()
    proc.kill_jobs()


@pytest.fixture(scope="module")
def rev(ghub: HubProcess) -> HubClient:
    return reviewer(ghub, "auditors", "dana")


def test_job_waits_for_review_then_starts(ghub: HubProcess, rev: HubClient) -> None:
    t = make_tenant(ghub, "kaznu")
    j = t.member.submit(job(t.project, "print('ran')", gpus=2))
    wait_for(lambda: t.member.get_job(j.id).reason == "AwaitingReview", what="AwaitingReview")
    held = t.member.get_job(j.id)
    assert held.state == "PENDING" and "no approved AI-use review" in (held.reason_detail or "")

    p = t.member.submit_proposal(spec(t))
    assert p.state == "submitted" and p.screening is not None and p.screening.outcome == "standard_review"
    own = reviewer(ghub, "kaznu", "kaznu-rev")
    with pytest.raises(HubError) as err:  # conflict of interest
        own.review(p.id, m.ReviewAction(action="start_review"))
    assert err.value.status == 403 and "conflict of interest" in str(err.value)
    with pytest.raises(HubError) as err:  # members do not review
        t.member.review(p.id, m.ReviewAction(action="start_review"))
    assert err.value.status == 403
    rev.review(p.id, m.ReviewAction(action="start_review"))
    with pytest.raises(HubError) as err:
        rev.review(p.id, m.ReviewAction(action="approve", expires_on=hub_today() + timedelta(days=9)))
    assert err.value.status == 409 and "reason is required" in str(err.value)
    assert t.member.get_job(j.id).state == "PENDING"
    done = rev.review(p.id, m.ReviewAction(action="approve", reason="ok", expires_on=hub_today() + timedelta(days=9),
                                           allowed_gpu_types=["H200"]))  # fmt: skip
    assert done.state == "approved" and done.approval_current
    assert t.member.wait(j.id, timeout_s=20).state == "COMPLETED"
    shown = t.member.get_proposal(p.id)
    assert [s.action for s in shown.transitions or []] == ["submit", "start_review", "approve"]
    actions = [(e.action, e.subject) for e in ghub.client().audit_entries()]
    for a in ("proposal.create", "review.submit", "review.start_review", "review.approve"):
        assert (a, t.project) in actions


def test_conditions_are_enforced(ghub: HubProcess, rev: HubClient) -> None:
    t = make_tenant(ghub, "satbayev")
    approve(t, rev, allowed_sites=["almaty"])  # the hub is at astana
    j = t.member.submit(job(t.project, "print(1)"))
    wait_for(lambda: t.member.get_job(j.id).reason == "AwaitingReview", what="site condition")
    assert "not astana" in (t.member.get_job(j.id).reason_detail or "")
    t.member.cancel(j.id)


def test_revocation_finish_or_cancel(ghub: HubProcess, rev: HubClient) -> None:
    a, b = make_tenant(ghub, "enu"), make_tenant(ghub, "kbtu")
    pa, pb = approve(a, rev), approve(b, rev)
    ja, jb = a.member.submit(job(a.project, SLEEP)), b.member.submit(job(b.project, SLEEP))
    for c, j in ((a, ja), (b, jb)):
        wait_for(lambda c=c, j=j: c.member.get_job(j.id).state == "RUNNING", what="running")  # type: ignore[misc]
    rev.review(pa.id, m.ReviewAction(action="revoke", reason="misuse", running_jobs="finish"))
    ghub.client().review(pb.id, m.ReviewAction(action="revoke", reason="misuse", running_jobs="cancel"))
    wait_for(lambda: b.member.get_job(jb.id).state == "CANCELLED", what="cancelled by revocation")
    assert "approval revoked" in (b.member.get_job(jb.id).events or [])[-1].reason
    assert a.member.get_job(ja.id).state == "RUNNING"  # finish: it runs on
    later = a.member.submit(job(a.project, "print(1)"))
    wait_for(lambda: a.member.get_job(later.id).reason == "AwaitingReview", what="no new starts")
    assert "revoked" in (a.member.get_job(later.id).reason_detail or "")
    a.member.cancel(ja.id)
    a.member.cancel(later.id)


def test_screening_and_malformed_proposals(ghub: HubProcess) -> None:
    t = make_tenant(ghub, "nu")
    root = ghub.client()
    for name in ("p1", "p2", "p3"):
        root.create_project("nu", name)
    audit_before = len(root.audit_entries())
    auth = {"Authorization": t.member._http.headers["Authorization"]}
    bad = {**spec(t), "risk_class": "extreme", "end_use": {**spec(t)["end_use"], "wmd_end_use": "no"}}
    r = httpx.post(f"{ghub.url}/api/v1/proposals", json=bad, headers=auth)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert {"risk_class", "end_use.wmd_end_use"} <= {e["field"] for e in r.json()["errors"]}
    assert t.member.list_proposals() == [] and len(root.audit_entries()) == audit_before  # nothing stored

    banned = t.member.submit_proposal({**spec(t), "project": "p1", "practices": ["social_scoring"]})
    assert banned.state == "rejected" and banned.screening is not None
    assert any(f.rule_id == "PRO-SOCIAL-SCORING" and f.effect == "reject" for f in banned.screening.findings)
    assert "PRO-SOCIAL-SCORING" in (banned.transitions or [])[-1].reason
    at24 = t.member.submit_proposal({**spec(t), "project": "p2", "estimated_training_flop": 1e24})
    at25 = t.member.submit_proposal({**spec(t), "project": "p3", "estimated_training_flop": 1e25})
    assert at24.screening and [f.rule_id for f in at24.screening.findings] == ["CMP-ENHANCED"]
    assert at25.screening and at25.screening.systemic_risk and at25.screening.outcome == "enhanced_review"


def test_residency(ghub: HubProcess, rev: HubClient) -> None:
    t = make_tenant(ghub, "kazmed")
    approve(t, rev)
    root = ghub.client()
    tb = 10**12
    datasets: list[tuple[str, str, str, str, list[str], list[str]]] = [
        ("kz-registry", "KZ", "personal", "astana", [], []),
        ("eu-clinical", "DE", "personal", "frankfurt", [], []),
        ("corpus-no-ru", "DE", "public", "frankfurt", [], ["RU"]),
        ("corpus-no-az", "DE", "public", "frankfurt", [], ["AZ"]),
        ("corpus-sealed", "DE", "internal", "frankfurt", [], ["RU", "AZ"]),
    ]
    for name, j, sens, loc, allow, forbid in datasets:
        root.register_dataset(m.DatasetCreate(name=name, jurisdiction=j, sensitivity=sens, location=loc,  # type: ignore[arg-type]
                                              size_bytes=tb, allowed_jurisdictions=allow, forbidden_transit=forbid))
    with pytest.raises(HubError) as err:
        t.member.submit(job(t.project, "print(1)", datasets=["nope"]))
    assert err.value.status == 422 and err.value.problem.errors[0].field == "datasets"
    # data this hub's site may never process is refused at submission, not held for ever (DataResidency)
    for n, why in (("eu-clinical", "only in DE"), ("corpus-sealed", "may not transit")):
        with pytest.raises(HubError) as err:
            t.member.submit(job(t.project, "print(1)", datasets=[n]))
        assert err.value.status == 422, n
        assert [e.field for e in err.value.problem.errors] == ["datasets"]
        message = err.value.problem.errors[0].message
        assert message.startswith("no site of this hub may ever process them (astana: ") and why in message, message
    ids = {n: t.member.submit(job(t.project, "print(1)", datasets=[n])).id
           for n in ("kz-registry", "corpus-no-ru", "corpus-no-az")}  # fmt: skip
    for n in ("kz-registry", "corpus-no-ru", "corpus-no-az"):
        assert t.member.wait(ids[n], timeout_s=20).state == "COMPLETED", n
    routes = {n: [(s.allowed, s.route) for s in t.member.get_job(ids[n]).staging or []] for n in ids}
    assert routes["kz-registry"] == [(True, None)]
    assert routes["corpus-no-ru"] == [(True, "astana-frankfurt-transcaspian")]
    assert routes["corpus-no-az"] == [(True, "astana-frankfurt-north")]
    st = (t.member.get_job(ids["corpus-no-ru"]).staging or [])[0]
    assert st.staging_time_s == pytest.approx(1143.1, abs=0.1)


def test_expiry_holds_queued_jobs_and_lets_running_ones_finish(fresh_hub: object) -> None:
    hub = fresh_hub("--gpus", "2", "--gpu-type", "H200", "--grace", "1")  # type: ignore[operator]
    t: Tenant = make_tenant(hub, "kaznu")
    p = approve(t, reviewer(hub, "auditors", "dana"), days=1)
    running = t.member.submit(job(t.project, SLEEP))
    wait_for(lambda: t.member.get_job(running.id).state == "RUNNING", what="running")
    hub.stop()  # jobs survive; two days later the approval has expired
    hub.options = (*hub.options, "--clock-offset-days", "2")
    hub.clients = []
    hub.start()
    member = hub.client(t.member_token)
    assert member.get_proposal(p.id).state == "expired"
    assert member.get_job(running.id).state == "RUNNING"
    queued = member.submit(job(t.project, "print(1)"))
    wait_for(lambda: member.get_job(queued.id).reason == "AwaitingReview", what="held after expiry")
    assert "expired" in (member.get_job(queued.id).reason_detail or "")
    assert "review.expire" in [e.action for e in hub.client().audit_entries()]
    member.cancel(running.id)


def test_terms_before_first_job_and_after_a_change(fresh_hub: object) -> None:
    hub = fresh_hub("--gpus", "1", "--gpu-type", "H200", "--no-review-gate")  # type: ignore[operator]
    t: Tenant = make_tenant(hub, "kaznu")
    root = hub.client()
    t.member.submit(job(t.project, "print(1)"))  # no terms published yet
    root.publish_terms(m.TermsPublish(version="1", effective_on=hub_today(), text="Use compute lawfully."))
    with pytest.raises(HubError) as err:
        t.member.submit(job(t.project, "print(1)"))
    assert err.value.status == 403 and "must accept the acceptable-use terms version 1" in str(err.value)
    t.member.accept_terms("1")
    t.member.submit(job(t.project, "print(1)"))
    root.publish_terms(m.TermsPublish(version="2", effective_on=hub_today(), text="Use compute lawfully. v2"))
    with pytest.raises(HubError) as err:
        t.member.submit(job(t.project, "print(1)"))
    assert err.value.status == 403 and "version 2" in str(err.value)
    assert t.member.accept_terms("2").accepted
    t.member.submit(job(t.project, "print(1)"))
    assert [e.action for e in root.audit_entries()].count("terms.accept") == 2


def test_an_approval_starts_a_held_job_while_the_head_is_blocked(fresh_hub: Callable[..., HubProcess]) -> None:
    """Approving B releases B's job at once although A's blocked head keeps the queue otherwise still."""
    hub = fresh_hub("--gpus", "8", "--gpu-type", "H200", "--grace", "1")
    rev = reviewer(hub, "auditors", "dana")
    a, b = make_tenant(hub, "kaznu"), make_tenant(hub, "enu")
    approve(a, rev)
    running = a.member.submit(job(a.project, SLEEP, gpus=6))
    wait_for(lambda: a.member.get_job(running.id).state == "RUNNING", what="A's 6-GPU job")
    head = a.member.submit(job(a.project, SLEEP, gpus=4))
    wait_for(lambda: a.member.get_job(head.id).reason == "Resources", what="A's blocked head")
    held = b.member.submit(job(b.project, "print('ran')", gpus=1))
    wait_for(lambda: b.member.get_job(held.id).reason == "AwaitingReview", what="B's job held for review")
    approve(b, rev)  # nothing starts or stops: only the approval changes
    wait_for(lambda: b.member.get_job(held.id).state != "PENDING", timeout_s=10, what="B's job to start")
    assert b.member.wait(held.id, timeout_s=20).state == "COMPLETED"
    assert a.member.get_job(head.id).state == "PENDING"
    a.member.cancel(running.id)
    a.member.cancel(head.id)
