"""The hub's API against a real server on loopback running real processes.

The hub is shared by the whole session, so every test submits through the ``jobs`` fixture:
whatever the test's outcome, its teardown cancels the jobs still pending or running and waits
until they have ended, and a failing test never leaves work (or held GPUs) to the tests after
it. Timing checks compare what the hub recorded with what the test itself observed, never a
fixed wall-clock guess: a loaded machine slows jobs down, it does not change those relations.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from hubtest import JOB_PY, HubProcess, Tenant, current_quarter, make_tenant, wait_for

from steppe.client import HubClient, HubError
from steppe.client import models as m

PY = JOB_PY
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}


def job(project: str, code: str, **kw: object) -> m.JobSubmit:
    return m.JobSubmit(project=project, argv=[PY, "-c", code], **kw)  # type: ignore[arg-type]


class Jobs:
    """The jobs a test submitted; ``end_all`` cancels those not ended and waits for each to end."""

    def __init__(self, root: HubClient) -> None:
        self.root = root
        self.ids: list[int] = []

    def submit(self, client: HubClient, body: m.JobSubmit, idempotency_key: str | None = None) -> m.Job:
        submitted = client.submit(body, idempotency_key=idempotency_key)
        self.ids.append(submitted.id)
        return submitted

    def end_all(self) -> None:
        for job_id in self.ids:
            with contextlib.suppress(HubError):  # 409: it ended meanwhile
                if self.root.get_job(job_id).state not in TERMINAL:
                    self.root.cancel(job_id)
        for job_id in self.ids:  # SIGKILL follows SIGTERM after the hub's 1 s grace period
            self.root.wait(job_id, timeout_s=30)


@pytest.fixture
def jobs(hub: HubProcess) -> Iterator[Jobs]:
    """Submit through this; its teardown runs even when the test fails (see the module docstring)."""
    tracked = Jobs(hub.client())
    try:
        yield tracked
    finally:
        tracked.end_all()


def test_full_lifecycle(tenants: dict[str, Tenant], jobs: Jobs) -> None:
    t = tenants["kaznu"]
    code = (
        "import os; print(os.environ['STEPPE_JOB_ID'], os.environ['CUDA_VISIBLE_DEVICES'], os.environ['STEPPE_GPUS'])"
    )
    submitted = jobs.submit(t.member, job(t.project, code, gpus=2, name="train"))
    assert submitted.state == "PENDING" and submitted.name == "train" and submitted.user == t.member_name
    done = t.member.wait(submitted.id, timeout_s=20)
    assert done.state == "COMPLETED" and done.exit_code == "0:0" and done.alloc_gpu_type == "H100"
    assert [e.state for e in t.member.get_job(done.id).events or []] == ["PENDING", "RUNNING", "COMPLETED"]
    out = t.member.logs(done.id).data.split()
    assert out[0] == str(done.id) and len(out[1].split(",")) == 2 and out[2] == "2"
    failed = t.member.wait(jobs.submit(t.member, job(t.project, "import sys; sys.exit(3)")).id, timeout_s=20)
    assert (failed.state, failed.reason, failed.exit_code) == ("FAILED", "NonZeroExitCode", "3:0")
    history = t.member.list_jobs(project=t.project, state="COMPLETED,FAILED")
    assert {done.id, failed.id} <= {j.id for j in history.items}


def test_walltime_ends_a_job_with_timeout(tenants: dict[str, Tenant], jobs: Jobs) -> None:
    t = tenants["kaznu"]
    sleep_s, walltime_s = 60.0, 1.0
    j = jobs.submit(t.member, job(t.project, f"import time; time.sleep({sleep_s})", walltime_s=walltime_s))
    done = t.member.wait(j.id, timeout_s=20)
    seen_s = time.time()
    assert done.state == "TIMEOUT" and done.reason == "TimeLimit" and done.exit_code == "0:15"
    # ended by its limit (the hub stops it once walltime_s has passed since its start), not by its own end
    assert done.start_s is not None and done.end_s is not None and done.elapsed_s is not None
    assert walltime_s <= done.elapsed_s < sleep_s and done.end_s <= seen_s


def test_cancel_pending_and_running(hub: HubProcess, tenants: dict[str, Tenant], jobs: Jobs) -> None:
    t = tenants["kaznu"]
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )
    running = jobs.submit(t.member, job(t.project, stubborn, gpus=4))
    wait_for(lambda: t.member.logs(running.id).data.startswith("up"), what="job output")
    pending = jobs.submit(t.member, job(t.project, "print(1)", gpus=4))
    assert t.member.cancel(pending.id).state == "CANCELLED"
    t.member.cancel(running.id)  # ignores SIGTERM: SIGKILL after the 1 s grace period
    done = t.member.wait(running.id, timeout_s=20)
    assert done.state == "CANCELLED" and done.exit_code == "0:9"
    assert done.events is not None and done.events[-1].reason == f"cancelled by {t.member_name}"
    with pytest.raises(HubError) as err:
        t.member.cancel(done.id)
    assert err.value.status == 409


def test_idempotent_submit(hub: HubProcess, tenants: dict[str, Tenant], jobs: Jobs) -> None:
    t = tenants["kaznu"]
    body = job(t.project, "print('once')")
    first = jobs.submit(t.member, body, idempotency_key="key-1")
    again = t.member.request("POST", "/api/v1/jobs", json=body.model_dump(exclude_none=True),
                             headers={"Idempotency-Key": "key-1"})  # fmt: skip
    assert again.status_code == 200 and again.json()["id"] == first.id
    with pytest.raises(HubError) as err:
        jobs.submit(t.member, job(t.project, "print('other')"), idempotency_key="key-1")
    assert err.value.status == 409 and "key-1" in err.value.problem.detail
    other_user = jobs.submit(t.admin, body, idempotency_key="key-1")  # keys are per user
    assert other_user.id != first.id


def test_tenant_isolation(hub: HubProcess, tenants: dict[str, Tenant], jobs: Jobs) -> None:
    kaznu, enu = tenants["kaznu"], tenants["enu"]
    theirs = jobs.submit(enu.member, job(enu.project, "import time; time.sleep(30)"))
    calls: list[Callable[[HubClient], object]] = [
        lambda c: c.get_job(theirs.id), lambda c: c.cancel(theirs.id), lambda c: c.logs(theirs.id)
    ]  # fmt: skip
    for client in (kaznu.member, kaznu.admin):
        for call in calls:
            with pytest.raises(HubError) as err:
                call(client)
            assert err.value.status == 404  # as if it did not exist
        assert theirs.id not in {j.id for j in client.iter_jobs()}
        assert theirs.id not in {j.id for j in client.queue().items}
        with pytest.raises(HubError) as err:
            jobs.submit(client, job(enu.project, "print(1)"))
        assert err.value.status == 422 and err.value.problem.errors[0].field == "project"
        assert [o.name for o in client.list_orgs()] == ["kaznu"]
    assert enu.member.get_job(theirs.id).state in ("PENDING", "RUNNING")
    enu.member.cancel(theirs.id)


def test_roles(hub: HubProcess, tenants: dict[str, Tenant], jobs: Jobs) -> None:
    kaznu = tenants["kaznu"]
    mine = jobs.submit(kaznu.admin, job(kaznu.project, "import time; time.sleep(30)"))
    with pytest.raises(HubError) as err:  # a member may not cancel a colleague's job...
        kaznu.member.cancel(mine.id)
    assert err.value.status == 403
    with pytest.raises(HubError) as err:  # ...nor create organisations or allocations
        kaznu.member.create_org("rogue", "KZ")
    assert err.value.status == 403
    with pytest.raises(HubError):
        kaznu.admin.create_allocation(kaznu.project, current_quarter(), 10, reason="test")
    theirs = jobs.submit(kaznu.member, job(kaznu.project, "import time; time.sleep(30)"))
    kaznu.admin.cancel(theirs.id)  # an org-admin may cancel members' jobs
    kaznu.admin.cancel(mine.id)
    assert kaznu.member.whoami().role == "member"
    with pytest.raises(HubError) as err:
        hub.client("stp_00000000_forged").whoami()
    assert err.value.status == 401


def test_allocation_limits(hub: HubProcess, jobs: Jobs) -> None:
    """A tiny grant of 60 GPU-seconds, at most 2 GPUs at once. A job that could never fit the balance
    is refused at submission; one that fits only once the running job's reservation is freed waits
    with AssocGrpGRESMinutes and says why; the balance is never overrun by more than what the hub
    had not yet charged when a job ended (it used to be overrun 2x: a job started with too little left)."""
    t = make_tenant(hub, "kbtu")
    root = hub.client()
    root.create_project("kbtu", "tiny")
    grant_gpu_s = 60.0
    root.create_allocation("kbtu/tiny", current_quarter(), gpu_hours=grant_gpu_s / 3600, max_gpus=2,
                           gpu_types=["H100"], reason="a tiny grant")  # fmt: skip
    with pytest.raises(HubError) as err:
        jobs.submit(t.member, job("kbtu/tiny", "print(1)", gpu_type="A100", walltime_s=10))
    assert err.value.status == 422 and err.value.problem.errors[0].field == "gpu_type"
    with pytest.raises(HubError) as err:
        jobs.submit(t.member, job("kbtu/tiny", "print(1)", gpus=3, walltime_s=10))
    assert err.value.status == 422 and err.value.problem.errors[0].field == "gpus"
    with pytest.raises(HubError) as err:  # 2 x 60 s > 60 GPU-seconds: it could never start
        jobs.submit(t.member, job("kbtu/tiny", "print(1)", gpus=2, walltime_s=60))
    assert err.value.status == 422 and err.value.problem.errors[0].field == "walltime_s"
    assert "0.03 GPU-hours, but kbtu/tiny has 0.02 of its 0.02 GPU-hours" in err.value.problem.errors[0].message
    first = jobs.submit(t.member, job("kbtu/tiny", "import time; time.sleep(60)", gpus=2, walltime_s=20))
    second = jobs.submit(t.member, job("kbtu/tiny", "print(1)", gpus=1, walltime_s=10))  # 40 + 10 <= 60
    third = jobs.submit(t.member, job("kbtu/tiny", "print(1)", gpus=1, walltime_s=30))  # 40 + 30 > 60
    wait_for(lambda: t.member.get_job(first.id).state == "RUNNING", what="the first job running")
    # the second fits the balance but not the GPUs the project may hold at once; the third not the balance
    wait_for(lambda: t.member.get_job(second.id).reason == "QOSGrpGRES", what="QOSGrpGRES")
    wait_for(lambda: t.member.get_job(third.id).reason == "AssocGrpGRESMinutes", what="AssocGrpGRESMinutes")
    assert "reserved by its running jobs" in (t.member.get_job(third.id).reason_detail or "")
    assert t.member.wait(first.id, timeout_s=60).state == "TIMEOUT"
    assert t.member.wait(second.id, timeout_s=60).state == "COMPLETED"
    done = [t.member.get_job(j.id) for j in (first, second)]
    alloc = t.member.list_allocations("kbtu/tiny")[0]
    used_s, rounding_s = alloc.used_gpu_hours * 3600, 0.5e-6 * 3600
    ran_s = sum(j.gpus * ((j.end_s or 0.0) - (j.start_s or 0.0)) for j in done)
    assert ran_s - rounding_s <= used_s  # every second each job ran is charged
    # the third still waits: 60 minus what the first two used leaves less than its 30 GPU-seconds
    assert t.member.get_job(third.id).state == "PENDING" and used_s + 30.0 > grant_gpu_s
    # not overrun: 2 x 20 s + 1 x 10 s at most by their limits, plus the first job's stop after its limit
    # (grace 1 s and a loop step), well within the 10 GPU-seconds left
    assert used_s <= grant_gpu_s, (used_s, [(j.start_s, j.end_s) for j in done])
    usage = t.member.usage("kbtu/tiny")
    assert [u.gpu_type for u in usage] == ["H100"]
    assert usage[0].gpu_hours == pytest.approx(alloc.used_gpu_hours, abs=1e-6)
    t.member.cancel(third.id)


def test_malformed_requests_change_nothing(hub: HubProcess, tenants: dict[str, Tenant]) -> None:
    t = tenants["kaznu"]
    before = t.member.list_jobs(limit=1).total
    good = {"project": t.project, "argv": ["true"]}
    cases: list[tuple[dict[str, object] | bytes, int, str]] = [
        (b"{not json", 400, ""),
        ({**good, "gpus": 0}, 422, "gpus"),
        ({**good, "gpus": "two"}, 422, "gpus"),
        ({**good, "gpu": 2}, 422, "gpu"),
        ({"project": t.project}, 422, "body"),
        ({**good, "script": "#!/bin/sh\ntrue"}, 422, "body"),
        ({**good, "walltime_s": -5}, 422, "walltime_s"),
        ({**good, "project": "nope"}, 422, "project"),
        ({**good, "gpu_type": "Z9"}, 422, "gpu_type"),
        ({**good, "gpus": 5}, 422, "gpus"),
        ({**good, "workdir": "/does/not/exist"}, 422, "workdir"),
        ({**good, "env": {"STEPPE_JOB_ID": "1"}}, 422, "env.STEPPE_JOB_ID"),
        ({**good, "qos": "gold"}, 422, "qos"),
    ]
    auth = {"Authorization": t.member._http.headers["Authorization"]}
    for body, status, field in cases:
        if isinstance(body, bytes):
            r = httpx.post(f"{hub.url}/api/v1/jobs", content=body, headers={**auth, "content-type": "application/json"})
        else:
            r = httpx.post(f"{hub.url}/api/v1/jobs", json=body, headers=auth)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["status"] == status and problem["title"] and problem["type"].startswith("https://")
        if field:
            assert field in [e["field"] for e in problem["errors"]], (body, problem)
    assert httpx.get(f"{hub.url}/api/v1/jobs").status_code == 401
    assert httpx.get(f"{hub.url}/api/v1/jobs/abc", headers=auth).status_code == 422
    assert httpx.get(f"{hub.url}/api/v1/nothing", headers=auth).status_code == 404
    assert t.member.list_jobs(limit=1).total == before


def test_queue_reasons_and_estimates(hub: HubProcess, tenants: dict[str, Tenant], jobs: Jobs) -> None:
    t = tenants["enu"]
    blocker = jobs.submit(t.member, job(t.project, "import time; time.sleep(30)", gpus=4, walltime_s=600))
    wait_for(lambda: t.member.get_job(blocker.id).state == "RUNNING", what="blocker running")
    a = jobs.submit(t.member, job(t.project, "print(1)", gpus=4, walltime_s=60))
    b = jobs.submit(t.member, job(t.project, "print(1)", gpus=2, walltime_s=60))
    wait_for(lambda: len(t.member.queue(project=t.project).items) == 3, what="both jobs queued")
    q = {j.id: j for j in t.member.queue(project=t.project).items}
    assert q[a.id].reason == "Resources"
    assert q[blocker.id].state == "RUNNING" and q[a.id].position == 1 and q[b.id].position == 2
    start = t.member.get_job(blocker.id).start_s
    assert start is not None and q[a.id].est_start_s == pytest.approx(start + 600, abs=1)
    assert q[b.id].est_start_s == pytest.approx(start + 660, abs=1)  # after a, which takes every GPU


def test_openapi_metrics_and_nodes(hub: HubProcess, tenants: dict[str, Tenant]) -> None:
    spec = httpx.get(f"{hub.url}/api/v1/openapi.json").json()
    assert spec["info"]["title"] == "Steppe hub API" and "/api/v1/jobs/{job_id}/cancel" in spec["paths"]
    assert "application/problem+json" in spec["paths"]["/api/v1/jobs"]["post"]["responses"]["422"]["content"]
    text = hub.client().metrics()
    for name in ("hub_queue_pending_jobs", "hub_jobs_total", "hub_gpu_allocated_seconds_total",
                 "hub_scheduler_cycle_duration_seconds_bucket", "hub_gpus"):  # fmt: skip
        assert name in text
    with pytest.raises(HubError) as err:
        tenants["kaznu"].member.metrics()
    assert err.value.status == 403
    nodes = tenants["kaznu"].member.nodes()
    assert [(n.gpu_type, n.gpus) for n in nodes] == [("H100", 4)]
    assert len(tenants["kaznu"].member.gpus()) == 4
    assert hub.client().version().fleet == "declared 4 x H100"


def test_submit_to_start_is_prompt(hub: HubProcess, tenants: dict[str, Tenant], jobs: Jobs) -> None:
    t = tenants["kaznu"]
    wait_for(lambda: not hub.client().queue().items, what="an idle hub")
    t0 = time.time()
    j = jobs.submit(t.member, m.JobSubmit(project=t.project, argv=["date", "+%s.%N"]))
    done = t.member.wait(j.id, timeout_s=10, poll_s=0.02)
    first_instruction_s = float(t.member.logs(j.id).data)
    assert done.start_s is not None and done.submit_s is not None
    assert t0 <= done.submit_s <= done.start_s <= first_instruction_s
    # An idle loop has no timer to wake it: the submission wakes it, and it starts the job in that
    # step. Its reaction is measured on the hub's own records, apart from the process launch (which
    # a loaded machine slows): at most the hub's target of 1 s.
    assert done.start_s - done.submit_s < 1.0
