"""End to end: a real ``steppe serve --executor ray`` hub running its jobs on the throwaway Ray head.

The SDK submits; the hub schedules onto its 8 declared H200 GPUs (the head's), the Ray executor
submits each start as a Ray job; the job's output comes back through the hub's logs endpoint,
a cancel through Ray's stop, an exit code through Ray's job table.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hubtest import ENTRY, HubProcess, make_tenant, searchable_root, wait_for
from ray_throwaway import RayHead

from steppe.client import models as m

DEADLINE_S = 60.0


@pytest.fixture
def ray_hub(tmp_path: Path, live_head: RayHead) -> Iterator[HubProcess]:
    hub = HubProcess(
        tmp_path / "data", "--gpus", "8", "--gpu-type", "H200", "--grace", "1", "--no-review-gate",
        "--executor", "ray", "--executor-opt", f"address={live_head.job_api}", "--executor-opt", "poll_s=0.2",
        "--executor-opt", "log_s=0.5",
    ).start()  # fmt: skip
    yield hub
    hub.stop()


def test_hub_runs_cancels_and_fails_jobs_through_ray(ray_hub: HubProcess, live_head: RayHead) -> None:
    t = make_tenant(ray_hub, "kaznu")
    ok = t.member.submit(m.JobSubmit(project=t.project, gpus=2, argv=["/bin/sh", "-c", 'echo "hello $STEPPE_GPUS"']))
    failing = t.member.submit(m.JobSubmit(project=t.project, gpus=1, argv=["/bin/sh", "-c", "echo bye; exit 7"]))
    running = t.member.submit(m.JobSubmit(project=t.project, gpus=4, argv=["/bin/sh", "-c", "echo up; exec sleep 300"]))
    done = t.member.wait(ok.id, timeout_s=DEADLINE_S)
    assert (done.state, done.exit_code) == ("COMPLETED", "0:0")
    assert t.member.logs(ok.id).data == "hello 2\n"
    assert done.engine_job_id is not None and done.engine_job_id.startswith("steppe-")  # Ray's submission id
    bad = t.member.wait(failing.id, timeout_s=DEADLINE_S)
    assert (bad.state, bad.reason, bad.exit_code) == ("FAILED", "NonZeroExitCode", "7:0")
    assert t.member.logs(failing.id).data == "bye\n"
    wait_for(lambda: t.member.logs(running.id).data == "up\n", DEADLINE_S, "the long job's output")
    t.member.cancel(running.id)
    cancelled = t.member.wait(running.id, timeout_s=DEADLINE_S)
    assert (cancelled.state, cancelled.exit_code) == ("CANCELLED", "0:15")
    ray_jobs = httpx.get(f"{live_head.job_api}/api/jobs/", timeout=10).json()
    mine = [j for j in ray_jobs if (j.get("metadata") or {}).get("steppe_job") in {str(ok.id), str(failing.id),
                                                                                    str(running.id)}]  # fmt: skip
    assert sorted(j["status"] for j in mine) == ["FAILED", "STOPPED", "SUCCEEDED"]  # each start ran once


def test_serve_refuses_a_public_ray_address_in_one_line(tmp_path: Path) -> None:
    data = searchable_root() / f"refused-{tmp_path.name}"
    cmd = [sys.executable, "-c", ENTRY, "serve", "--data-dir", str(data), "--gpus", "1", "--single-user",
           "--executor", "ray", "--executor-opt", "address=http://8.8.8.8:8265"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode != 0 and "Traceback" not in done.stderr and len(errors) == 1
    assert "is public" in errors[0] and "allow_public=yes" in errors[0]
