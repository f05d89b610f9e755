"""kill -9 the hub while jobs run and wait, restart it on the same data: nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from functools import partial

from hubtest import JOB_PY, HubProcess, make_tenant, wait_for

from steppe.client import HubClient
from steppe.client import models as m
from steppe.executors.local import process_alive


def test_crash_and_restart(fresh_hub: Callable[..., HubProcess]) -> None:
    hub = fresh_hub("--gpus", "3", "--gpu-type", "H100", "--grace", "1", "--no-review-gate")
    t = make_tenant(hub, "kaznu")
    py = JOB_PY

    def submit(code: str, gpus: int = 1) -> int:
        return t.member.submit(m.JobSubmit(project=t.project, argv=[py, "-c", code], gpus=gpus, walltime_s=300)).id

    survivor = submit("import time; print('up', flush=True); time.sleep(120)")
    finisher = submit("import time; print('up', flush=True); time.sleep(1.5); print('bye')")
    victim = submit("import time; print('up', flush=True); time.sleep(120)")
    pending = [submit("print('later')", gpus=3) for _ in range(3)]
    for job_id in (survivor, finisher, victim):
        wait_for(partial(_printed_up, t.member, job_id), what=f"job {job_id} running")
    wait_for(lambda: [j.reason for j in t.member.queue().items if j.state == "PENDING"][:1] == ["Resources"],
             what="reasons")  # fmt: skip
    before = {j: t.member.get_job(j) for j in (survivor, finisher, victim, *pending)}
    order_before = [j.id for j in t.member.queue().items if j.state == "PENDING"]
    assert order_before == pending

    hub.kill()  # kill -9, with three jobs running and three waiting
    crashed_at = time.time()
    victim_handle = json.loads((hub.data_dir / "jobs" / str(victim) / "handle.json").read_text())
    os.killpg(victim_handle["pgid"], signal.SIGKILL)  # dies with the hub down, leaving no exit status
    wait_for(lambda: not process_alive(victim_handle), what="victim gone")
    time.sleep(2.0)  # the finisher ends while the hub is down
    hub.start()
    member = make_tenant_clients(hub, t.member_name)

    after = {j: member.get_job(j) for j in before}
    for job_id, old in before.items():  # no transition recorded before the crash is lost
        old_events = [(e.t_s, e.state, e.reason) for e in old.events or []]
        new_events = [(e.t_s, e.state, e.reason) for e in after[job_id].events or []]
        assert new_events[: len(old_events)] == old_events
    assert after[survivor].state == "RUNNING" and after[survivor].start_s == before[survivor].start_s
    assert after[finisher].state == "COMPLETED" and after[finisher].exit_code == "0:0"
    finished_s = after[finisher].end_s
    assert finished_s is not None and finished_s < time.time()
    assert member.logs(finisher).data == "up\nbye\n"
    assert after[victim].state == "FAILED" and after[victim].reason == "LostOnRestart"
    assert "lost on restart" in (after[victim].events or [])[-1].reason
    assert [j.id for j in member.queue().items if j.state == "PENDING"] == order_before  # pending keep their place
    assert all(after[j].events is not None and len(after[j].events or []) == 1 for j in pending)
    survived_from = after[survivor].start_s
    assert survived_from is not None and survived_from < crashed_at

    member.cancel(survivor)  # the adopted process is under the hub's control again
    done = member.wait(survivor, timeout_s=20)
    assert done.state == "CANCELLED" and done.exit_code == "0:15"
    wait_for(lambda: member.get_job(pending[0]).state != "PENDING", what="the head job to start")
    for job_id in pending:
        member.wait(job_id, timeout_s=20)


def _printed_up(client: HubClient, job_id: int) -> bool:
    return client.logs(job_id).data.startswith("up")


def make_tenant_clients(hub: HubProcess, member: str) -> HubClient:
    """A fresh client for ``member`` after a restart (tokens survive it)."""
    return hub.client(hub.client().create_token(member, "after-restart").token)
