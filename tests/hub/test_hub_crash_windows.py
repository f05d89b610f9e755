"""Crash windows, one hub per data directory, the admin token reset and private files, on real servers.

Each crash window is reproduced exactly by putting the store and the job's records in the state
a ``kill -9`` at that instant leaves, then restarting the hub; ``test_kill_9_under_load`` then
kills a loaded hub at 30 random points, some during its start-up.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from hubtest import ENTRY, JOB_PY, HubProcess, Tenant, free_port, make_tenant, wait_for

from steppe.client import HubClient, HubError
from steppe.client import models as m
from steppe.executors.local import process_alive

HUB = ("--gpus", "2", "--gpu-type", "H100", "--grace", "1", "--no-review-gate")
SLEEP = "import time; print('up', flush=True); time.sleep(60)"


def sql(hub: HubProcess, statement: str, *args: object) -> list[tuple[object, ...]]:
    """Run one statement on a stopped hub's database."""
    with contextlib.closing(sqlite3.connect(hub.data_dir / "steppe.db")) as db:
        rows = db.execute(statement, args).fetchall()
        db.commit()
    return rows


def client_for(hub: HubProcess, user: str) -> HubClient:
    return hub.client(hub.client().create_token(user, f"t{time.monotonic_ns()}").token)


def test_start_committed_but_never_launched_is_requeued(fresh_hub: Callable[..., HubProcess]) -> None:
    hub = fresh_hub(*HUB)
    t = make_tenant(hub, "kaznu")
    blocker = t.member.submit(m.JobSubmit(project=t.project, argv=[JOB_PY, "-c", SLEEP], gpus=2))
    wait_for(lambda: t.member.logs(blocker.id).data.startswith("up"), what="blocker running")
    first = t.member.submit(m.JobSubmit(project=t.project, argv=["/bin/sh", "-c", "echo ran >> runs"]))
    second = t.member.submit(m.JobSubmit(project=t.project, argv=["/bin/true"]))
    wait_for(lambda: t.member.get_job(first.id).reason == "Resources", what="queued behind the blocker")
    hub.kill()
    # the state a kill -9 leaves between committing `first`'s start and launching it
    sql(hub, "UPDATE jobs SET state='RUNNING', reason='None', start_s=?, alloc='[[0, 1]]', alloc_gpu_type='H100', "
             "charged_until_s=start_s WHERE id=?", time.time(), first.id)  # fmt: skip
    sql(hub, "INSERT INTO job_events (job_id, t_s, state, reason) VALUES (?, ?, 'RUNNING', 'started on vm:1')",
        first.id, time.time())  # fmt: skip
    hub.start()
    member = client_for(hub, t.member_name)
    view = member.get_job(first.id)
    assert view.state == "PENDING" and "never launched" in (view.events or [])[-1].reason
    assert [j.id for j in member.queue().items if j.state == "PENDING"] == [first.id, second.id]  # its place kept
    member.cancel(blocker.id)
    assert member.wait(first.id, timeout_s=20).state == "COMPLETED"
    assert (hub.data_dir / "spool" / str(first.id) / "runs").read_text() == "ran\n"  # once


def test_launched_job_whose_handle_never_reached_the_store(fresh_hub: Callable[..., HubProcess]) -> None:
    hub = fresh_hub(*HUB)
    t = make_tenant(hub, "kaznu")
    alive = t.member.submit(m.JobSubmit(project=t.project, argv=[JOB_PY, "-c", SLEEP]))
    done = t.member.submit(m.JobSubmit(project=t.project, argv=[JOB_PY, "-c", "print('up', flush=True)"]))
    wait_for(lambda: t.member.logs(alive.id).data.startswith("up"), what="job running")
    wait_for(lambda: t.member.logs(done.id).data.startswith("up"), what="job ran")
    hub.kill()
    handle = json.loads((hub.data_dir / "jobs" / str(alive.id) / "handle.json").read_text())
    # the state a kill -9 leaves between Popen and recording the handle; `done` ends while the hub is down
    sql(hub, "UPDATE jobs SET handle=NULL, state='RUNNING', reason='None', end_s=NULL, exit_code=NULL "
             "WHERE id IN (?, ?)", alive.id, done.id)  # fmt: skip
    wait_for(lambda: (hub.data_dir / "jobs" / str(done.id) / "exit.json").exists(), what="done's exit file")
    hub.start()
    member = client_for(hub, t.member_name)
    assert member.get_job(done.id).state == "COMPLETED"  # its exit file says so: not LostOnRestart
    view = member.get_job(alive.id)
    assert view.state == "RUNNING" and process_alive(handle)  # re-adopted, not orphaned
    other = member.submit(m.JobSubmit(project=t.project, argv=["/bin/sh", "-c", "echo $CUDA_VISIBLE_DEVICES"]))
    assert member.wait(other.id, timeout_s=20).state == "COMPLETED"
    assert member.logs(other.id).data.strip() not in {str(d) for d in view.devices}  # its GPU was never handed out
    member.cancel(alive.id)
    assert member.wait(alive.id, timeout_s=20).state == "CANCELLED"


def test_second_hub_on_the_same_data_directory_is_refused(fresh_hub: Callable[..., HubProcess]) -> None:
    hub = fresh_hub(*HUB)
    t = make_tenant(hub, "kaznu")
    j = t.member.submit(m.JobSubmit(project=t.project, argv=["/bin/sh", "-c", "echo ran >> runs"]))
    t.member.wait(j.id, timeout_s=20)
    cmd = [sys.executable, "-c", ENTRY, "serve", "--port", str(free_port()), "--data-dir", str(hub.data_dir), *HUB]
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert f"another hub already uses this data directory (pid {hub.proc.pid if hub.proc else '?'} on host" in (
        second.stdout + second.stderr
    )
    assert "Traceback" not in second.stderr
    assert (hub.data_dir / "spool" / str(j.id) / "runs").read_text() == "ran\n"


def test_port_is_bound_before_recovery_or_scheduling(fresh_hub: Callable[..., HubProcess]) -> None:
    hub = fresh_hub(*HUB)
    t = make_tenant(hub, "kaznu")
    blocker = t.member.submit(m.JobSubmit(project=t.project, argv=[JOB_PY, "-c", SLEEP], gpus=2))
    wait_for(lambda: t.member.logs(blocker.id).data.startswith("up"), what="blocker running")
    waiting = t.member.submit(m.JobSubmit(project=t.project, argv=["/bin/true"], gpus=2))
    hub.stop()
    hub.kill_jobs()  # the blocker ends while the hub is down: the next start would launch `waiting`
    with contextlib.closing(__import__("socket").socket()) as taken:
        taken.bind(("127.0.0.1", hub.port))
        taken.listen(1)
        cmd = [sys.executable, "-c", ENTRY, "serve", "--port", str(hub.port), "--data-dir", str(hub.data_dir), *HUB]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and f"cannot listen on 127.0.0.1:{hub.port}" in out.stdout + out.stderr
    assert not (hub.data_dir / "jobs" / str(waiting.id) / "run.json").exists()  # nothing was launched
    assert sql(hub, "SELECT state FROM jobs WHERE id=?", blocker.id) == [("RUNNING",)]  # nothing was recovered


def test_reset_admin_token_revokes_the_old_one(fresh_hub: Callable[..., HubProcess]) -> None:
    hub = fresh_hub(*HUB)
    old = hub.admin_token
    assert hub.client(old).whoami().role == "hub-admin"
    hub.stop()
    hub.options = (*hub.options, "--reset-admin-token")
    hub.start()
    assert hub.admin_token != old and hub.client().whoami().role == "hub-admin"
    with pytest.raises(HubError) as err:
        hub.client(old).whoami()
    assert err.value.status == 401
    assert any(e.action == "token.revoke" and e.reason == "admin token reset" for e in hub.client().audit_entries())
    assert hub.client().audit_verify().ok


def test_files_at_rest_are_private(fresh_hub: Callable[..., HubProcess]) -> None:
    hub = fresh_hub(*HUB)
    t = make_tenant(hub, "kaznu")
    j = t.member.submit(m.JobSubmit(project=t.project, argv=["/bin/echo", "hi"]))
    t.member.wait(j.id, timeout_s=20)
    d = hub.data_dir

    def mode(p: Path) -> int:
        return p.stat().st_mode & 0o777

    assert mode(d) == 0o711 and mode(d / "spool") == 0o711 and mode(d / "jobs") == 0o700
    for name in ("steppe.db", "steppe.db-wal", "admin-token", "hub.lock"):
        assert mode(d / name) == 0o600, name
    for p in (d / "jobs" / str(j.id)).iterdir():
        assert mode(p) == 0o600, p
    work = d / "spool" / str(j.id)
    assert mode(work) == 0o700 and mode(work / "stdout") == 0o600 and work.stat().st_uid != 0


def test_logs_never_read_a_file_the_job_did_not_write(hub: HubProcess, tenants: dict[str, Tenant]) -> None:
    t = tenants["kaznu"]
    for bad in ({"output": str(hub.data_dir / "admin-token")}, {"workdir": "/tmp", "output": "../etc/passwd"},
                {"output": "/etc/shadow"}, {"output": str(hub.data_dir / "steppe.db")},
                {"output": str(hub.data_dir / "spool" / "1" / "stdout")}):  # fmt: skip
        with pytest.raises(HubError) as err:
            t.member.submit(m.JobSubmit(project=t.project, argv=["/bin/true"], **bad))  # type: ignore[arg-type]
        assert err.value.status == 422, bad
    j = t.member.submit(
        m.JobSubmit(project=t.project, argv=["/bin/sh", "-c", "echo hi; rm stdout; ln -s /etc/passwd stdout"])
    )
    assert t.member.wait(j.id, timeout_s=20).state == "COMPLETED"
    assert t.member.logs(j.id).data == ""  # the job swapped its output for a link: nothing is served


def test_kill_9_under_load(fresh_hub: Callable[..., HubProcess]) -> None:
    """30 kill -9 points under a submission load, some during start-up; then every invariant holds."""
    hub = fresh_hub("--gpus", "4", "--gpu-type", "H100", "--grace", "1", "--no-review-gate", "--charge-interval", "0.2")
    t = make_tenant(hub, "kaznu")
    token = t.member_token
    rng = random.Random(8)
    acknowledged: dict[str, int] = {}
    stop = threading.Event()
    job_sh = 'echo "start $(date +%s.%N) $CUDA_VISIBLE_DEVICES" >> runs; sleep 0.4; echo "end $(date +%s.%N)" >> runs'

    def load() -> None:
        n = 0
        while not stop.is_set():
            key = f"k{n}"
            body = {"project": t.project, "argv": ["/bin/sh", "-c", job_sh], "name": key, "gpus": 1 + n % 2}
            while not stop.is_set():  # retry the same key until the hub acknowledges it
                try:
                    r = httpx.post(f"{hub.url}/api/v1/jobs", json=body, timeout=5,
                                   headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})  # fmt: skip
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue
                if r.status_code in (200, 201):
                    acknowledged[key] = r.json()["id"]
                    break
                time.sleep(0.05)
            n += 1
            time.sleep(0.02)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    try:
        _kill9(hub)
        for i in range(30):
            if i % 3 == 0:  # during start-up: it may not have bound its port, recovered or stepped yet
                _start_async(hub)
                time.sleep(rng.uniform(0.05, 1.5))
            else:
                hub.start()
                time.sleep(rng.uniform(0.1, 0.8))
            _kill9(hub)
        hub.start()
    finally:
        stop.set()
        worker.join(10)
    admin = hub.client()
    member = client_for(hub, t.member_name)
    wait_for(lambda: all(j.state not in ("PENDING", "RUNNING") for j in _all_jobs(admin)), timeout_s=120,
             what="every job to end")  # fmt: skip
    jobs = _all_jobs(admin)
    by_name: dict[str, list[m.Job]] = {}
    for j in jobs:
        by_name.setdefault(j.name, []).append(j)
    assert len(acknowledged) >= 30
    for key, job_id in acknowledged.items():  # every acknowledged submission exists, once
        assert [j.id for j in by_name.get(key, [])] == [job_id], key
    spans: list[tuple[float, float, str, int]] = []
    for j in jobs:
        runs = hub.data_dir / "spool" / str(j.id) / "runs"
        lines = runs.read_text().splitlines() if runs.exists() else []
        starts = [ln for ln in lines if ln.startswith("start")]
        assert len(starts) <= 1, f"job {j.id} ran {len(starts)} times"
        assert j.reason != "LostOnRestart", f"job {j.id} lost although jobs only end by themselves here"
        if starts and len(lines) == 2:
            _, begun, gpus = (starts[0].split() + [""])[:3]
            ended_s = float(lines[1].split()[1])
            spans.extend((float(begun), ended_s, g, j.id) for g in gpus.split(",") if g)
    spans.sort()
    by_gpu: dict[str, list[tuple[float, float, int]]] = {}
    for t0, t1, g, job_id in spans:
        by_gpu.setdefault(g, []).append((t0, t1, job_id))
    for g, items in by_gpu.items():
        for (_, end_a, ja), (start_b, _, jb) in zip(items, items[1:], strict=False):
            assert end_a <= start_b, f"GPU {g} held by jobs {ja} and {jb}"
    assert admin.audit_verify().ok
    assert member.whoami().name == t.member_name


def _all_jobs(client: HubClient) -> list[m.Job]:
    out: list[m.Job] = []
    while True:
        page = client.list_jobs(limit=1000, offset=len(out))
        out.extend(page.items)
        if len(out) >= page.total or not page.items:
            return out


def _start_async(hub: HubProcess) -> None:
    """Start the server process without waiting for it to answer."""
    cmd = [sys.executable, "-c", ENTRY, "serve", "--port", str(hub.port), "--data-dir", str(hub.data_dir)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPPE_")}
    with open(hub.log, "ab") as log:
        hub.proc = subprocess.Popen([*cmd, *hub.options], stdout=log, stderr=log, env=env)


def _kill9(hub: HubProcess) -> None:
    if hub.proc is not None and hub.proc.poll() is None:
        hub.kill()
