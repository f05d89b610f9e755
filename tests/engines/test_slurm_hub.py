"""A real ``steppe serve --executor slurm`` on the throwaway cluster, driven through the SDK.

The hub runs as root and maps its tenant's users to the session's job account (Slurm runs jobs
only as accounts with a passwd entry). Its jobs are submitted together, so the test takes about
as long as its slowest job (the walltime one).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubtest import JOB_PY, HubProcess, make_tenant, searchable_root, wait_for
from slurm_throwaway import ThrowawaySlurm

from engines.slurmtest import serving
from steppe.client import models as m


@pytest.fixture
def slurm_hub(slurm: ThrowawaySlurm, job_account: str, tmp_path: Path) -> Iterator[HubProcess]:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(f'[accounts]\n"kaznu-user" = "{job_account}"\n"kaznu-admin" = "{job_account}"\n')
    hub = HubProcess(
        tmp_path / "data", "--executor", "slurm", "--executor-opt", f"conf={slurm.conf}", "--executor-opt",
        "poll_s=0.25", "--gpus", "8", "--gpu-type", "H200", "--grace", "1", "--charge-interval", "0.2",
        "--no-review-gate", "--accounts", str(accounts),
    )  # fmt: skip
    with serving(hub, slurm) as running:
        yield running


def py(project: str, code: str, **kw: object) -> m.JobSubmit:
    return m.JobSubmit(project=project, argv=[JOB_PY, "-c", code], **kw)  # type: ignore[arg-type]


def test_hub_runs_logs_cancels_and_times_out_jobs_through_slurm(slurm_hub: HubProcess, slurm: ThrowawaySlurm) -> None:
    t = make_tenant(slurm_hub, "kaznu")
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )
    ok = t.member.submit(py(t.project, "import os; print(os.environ['STEPPE_JOB_ID'], os.environ['STEPPE_GPUS'])",
                            gpus=2, name="train"))  # fmt: skip
    failing = t.member.submit(py(t.project, "import sys; sys.exit(3)"))
    cancelled = t.member.submit(py(t.project, stubborn, gpus=4))
    timed_out = t.member.submit(py(t.project, "import time; time.sleep(60)", walltime_s=2.0))
    wait_for(lambda: t.member.logs(cancelled.id).data.startswith("up"), timeout_s=30, what="the job's output")
    t.member.cancel(cancelled.id)  # it ignores SIGTERM: SIGKILL after the 1 s grace period
    done = {j.id: t.member.wait(j.id, timeout_s=30) for j in (ok, failing, cancelled, timed_out)}
    assert (done[ok.id].state, done[ok.id].exit_code) == ("COMPLETED", "0:0")
    assert t.member.logs(ok.id).data == f"{ok.id} 2\n"
    assert (done[failing.id].state, done[failing.id].reason, done[failing.id].exit_code) == (
        "FAILED", "NonZeroExitCode", "3:0",
    )  # fmt: skip
    assert (done[cancelled.id].state, done[cancelled.id].exit_code) == ("CANCELLED", "0:9")
    assert (done[timed_out.id].state, done[timed_out.id].reason) == ("TIMEOUT", "TimeLimit")
    comments = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%k"], env=slurm.env(), capture_output=True,
                              text=True, check=True).stdout.split()  # fmt: skip
    for job in (ok, failing, cancelled, timed_out):  # each ran in Slurm exactly once
        record = json.loads((slurm_hub.data_dir / "slurm" / f"{job.id}.json").read_text())
        assert comments.count(record["marker"]) == 1
        assert t.member.get_job(job.id).engine_job_id == str(record["slurm_id"])  # what `steppe show` prints


def test_a_hub_killed_while_slurm_runs_its_jobs_adopts_them_after_a_restart(
    slurm_hub: HubProcess, slurm: ThrowawaySlurm, tmp_path: Path
) -> None:
    """``kill -9`` of the hub with a job running in Slurm and one that ends while the hub is down:
    the restarted hub follows the first to its end and records the second's exit code; each ran once."""
    t = make_tenant(slurm_hub, "kaznu")
    go = searchable_root() / f"go-{tmp_path.name}"  # the job's account can look here (pytest's dirs are 0700)
    long = t.member.submit(py(t.project, f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.1)"))
    short = t.member.submit(py(t.project, f"import os, sys, time\nwhile not os.path.exists({str(go)!r}): "
                                          "time.sleep(0.1)\nsys.exit(4)"))  # fmt: skip
    wait_for(lambda: all(t.member.get_job(j.id).engine_job_id for j in (long, short)), timeout_s=30,
             what="both jobs in Slurm")  # fmt: skip
    engine_ids = {j.id: t.member.get_job(j.id).engine_job_id for j in (long, short)}
    slurm_hub.kill()
    go.touch()  # both end while no hub watches
    slurm_hub.start()
    done = {j.id: t.member.wait(j.id, timeout_s=60) for j in (long, short)}
    go.unlink()
    assert (done[long.id].state, done[long.id].exit_code) == ("COMPLETED", "0:0")
    assert (done[short.id].state, done[short.id].exit_code) == ("FAILED", "4:0")
    assert {j: done[j].engine_job_id for j in done} == engine_ids  # adopted, not submitted again
    comments = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%k"], env=slurm.env(), capture_output=True,
                              text=True, check=True).stdout.split()  # fmt: skip
    for job in (long, short):
        record = json.loads((slurm_hub.data_dir / "slurm" / f"{job.id}.json").read_text())
        assert comments.count(record["marker"]) == 1


def test_while_slurmctld_is_down_jobs_wait_with_engine_down_and_start_once_it_is_back(
    slurm_hub: HubProcess, slurm: ThrowawaySlurm
) -> None:
    """The hub learns of the outage from its executor's poller (``hub_engine_up`` 0); from then on a
    new job waits with ``EngineDown``, and it runs once slurmctld answers again."""
    t = make_tenant(slurm_hub, "kaznu")
    metrics = slurm_hub.client()
    slurm.stop_controller()
    try:
        wait_for(lambda: "hub_engine_up 0.0" in metrics.metrics(), timeout_s=60, what="hub_engine_up 0")
        job = t.member.submit(py(t.project, "print('ran')"))
        wait_for(lambda: t.member.get_job(job.id).reason == "EngineDown", timeout_s=30, what="reason EngineDown")
        assert t.member.get_job(job.id).state == "PENDING"
    finally:
        slurm.start_controller()
    done = t.member.wait(job.id, timeout_s=60)
    assert (done.state, done.exit_code) == ("COMPLETED", "0:0")
    assert t.member.logs(job.id).data == "ran\n"
    assert "hub_engine_up 1.0" in metrics.metrics()
