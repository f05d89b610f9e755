"""A GPU power cap change reaching a running job on Slurm and on Ray, from a real hub under a facility cap.

``steppe serve --power-cap ... --site astana`` on one 8-GPU H200 node (the engine's). The facility
cap is chosen (at the site's PUE and windows of this hour) so that a 4-GPU job ``A`` starts at
full power, and a second 4-GPU job ``B`` starts only once ``A`` is capped below full power to
make room (``B`` alone at the 0.6 floor beside ``A`` at full power would break the cap; both at
the floor fit). The hub then asks the executor to recap ``A`` while it runs, and the new cap
reaches ``A`` as docs/executors.md says for each engine:

* Slurm: the job's comment becomes ``steppe:job=J:start=S:cap=0.80``; the job reads it with
  ``scontrol show job $SLURM_JOB_ID`` and prints it;
* Ray: the hub rewrites ``STEPPE_GPU_CAP_FILE`` (``{"cap_fraction": 0.8, ...}``); the job reads
  the file and prints it.

Both jobs print the cap they start with (``STEPPE_GPU_CAP``) and every change they see.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubtest import HubProcess, Tenant, make_tenant, wait_for
from ray_throwaway import RayHead
from slurm_throwaway import ThrowawaySlurm

from engines.slurmtest import serving
from steppe.client import models as m
from steppe.core.cluster import Cluster, Node
from steppe.core.gpu import gpu_type
from steppe.core.job import JobSpec
from steppe.core.records import JobRecord
from steppe.energy.fleet import FleetPower
from steppe.power import live_power

DEADLINE_S = 60.0
JOB_PY = "/usr/bin/python3"
FLOOR = 0.6

SLURM_WATCHER = """\
import os, re, subprocess, time
print('cap', os.environ['STEPPE_GPU_CAP'], flush=True)
seen = None
while True:
    out = subprocess.run(['scontrol', 'show', 'job', os.environ['SLURM_JOB_ID']], capture_output=True,
                         text=True).stdout
    found = re.search(r'Comment=\\S*:cap=([0-9.]+)', out)
    if found and found.group(1) != seen:
        seen = found.group(1)
        print('cap', seen, flush=True)
    time.sleep(0.5)
"""

RAY_WATCHER = """\
import json, os, time
print('cap', os.environ['STEPPE_GPU_CAP'], flush=True)
seen = None
while True:
    try:
        with open(os.environ['STEPPE_GPU_CAP_FILE']) as f:
            cap = json.load(f)['cap_fraction']
    except (OSError, ValueError, KeyError):
        cap = None
    if cap is not None and cap != seen:
        seen = cap
        print('cap', cap, flush=True)
    time.sleep(0.2)
"""


def facility_cap(node: str) -> str:
    """``--power-cap`` for the scenario of the module docstring, on one node ``node`` of 8 H200 now.

    The IT budget is 6 GPUs at the floor and 2 at full power: ``A`` at full power (4) fits, ``A``
    at full power and ``B`` at the floor (4 + 4) do not, both at the floor do; the middle of that
    range leaves room for the PUE of the next hour."""
    cluster = Cluster("hub", (Node(0, node, gpu_type("H200"), 8),))
    probe = JobRecord(JobSpec(0, 0.0, 1, 1.0, 1.0, "kaznu"), 0)
    fleet = FleetPower(cluster)
    full_w, floor_w = fleet.added_w(probe, "H200", 1.0), fleet.added_w(probe, "H200", FLOOR)
    now = time.time()
    unit = live_power(cluster, "astana", now, power_cap_w=1e9).budget
    assert unit is not None
    ratio = unit.limits.cap_w_at(now) / 1e9  # the site's window now, as a share of the base cap
    it_w = 6 * floor_w + 2 * full_w
    return f"{unit.limits.pue_at(now) * (unit.static_it_w + it_w) / ratio:.0f}W"


def caps_seen(t: Tenant, job_id: int) -> list[float]:
    """The caps job ``job_id`` printed, each change once (Ray's cap file holds the start cap too)."""
    seen: list[float] = []
    for line in t.member.logs(job_id).data.splitlines():
        if line.startswith("cap ") and (not seen or float(line.split()[1]) != seen[-1]):
            seen.append(float(line.split()[1]))
    return seen


def recap_scenario(hub: HubProcess, watcher: str) -> tuple[Tenant, int, int, float]:
    """Run ``A`` then ``B`` (module docstring); ``A``'s cap as ``A`` saw it change, once ``B`` runs."""
    t = make_tenant(hub, "kaznu")
    a = t.member.submit(m.JobSubmit(project=t.project, gpus=4, argv=[JOB_PY, "-c", watcher], name="A"))
    wait_for(lambda: caps_seen(t, a.id) == [1.0], DEADLINE_S, "A at full power")
    time.sleep(1.0)  # A's watcher has looked at its cap again
    b = t.member.submit(m.JobSubmit(project=t.project, gpus=4, argv=[JOB_PY, "-c", watcher], name="B"))
    try:
        wait_for(lambda: len(caps_seen(t, a.id)) == 2 and caps_seen(t, b.id), DEADLINE_S, "A recapped, B running")
    except AssertionError:
        got = t.member.get_job(b.id)
        raise AssertionError(f"A printed {t.member.logs(a.id).data!r}, B is {got.state} ({got.reason})") from None
    assert t.member.get_job(b.id).state == "RUNNING"
    new_cap = caps_seen(t, a.id)[1]
    assert FLOOR - 1e-6 <= new_cap < 1.0  # capped to make room, never below the floor
    assert FLOOR - 1e-6 <= caps_seen(t, b.id)[0] < 1.0  # B started capped too
    return t, a.id, b.id, new_cap


@pytest.fixture
def slurm_power_hub(slurm: ThrowawaySlurm, job_account: str, tmp_path: Path) -> Iterator[HubProcess]:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(f'[accounts]\n"kaznu-user" = "{job_account}"\n"kaznu-admin" = "{job_account}"\n')
    hub = HubProcess(
        tmp_path / "data", "--executor", "slurm", "--executor-opt", f"conf={slurm.conf}", "--executor-opt",
        "poll_s=0.25", "--gpus", "8", "--gpu-type", "H200", "--grace", "1", "--no-review-gate",
        "--accounts", str(accounts), "--site", "astana", "--power-cap", facility_cap(slurm.node),
    )  # fmt: skip
    with serving(hub, slurm) as running:
        yield running


@pytest.fixture
def ray_power_hub(live_head: RayHead, tmp_path: Path) -> Iterator[HubProcess]:
    import socket

    host = socket.gethostname().split(".")[0] or "localhost"  # --gpus names the node after the host
    hub = HubProcess(
        tmp_path / "data", "--gpus", "8", "--gpu-type", "H200", "--grace", "1", "--no-review-gate",
        "--executor", "ray", "--executor-opt", f"address={live_head.job_api}", "--executor-opt", "poll_s=0.2",
        "--executor-opt", "log_s=0.5", "--site", "astana", "--power-cap", facility_cap(host),
    ).start()  # fmt: skip
    yield hub
    hub.stop()


def test_a_recap_reaches_a_running_slurm_job_through_its_comment(
    slurm_power_hub: HubProcess, slurm: ThrowawaySlurm
) -> None:
    t, a, b, new_cap = recap_scenario(slurm_power_hub, SLURM_WATCHER)
    record = json.loads((slurm_power_hub.data_dir / "slurm" / f"{a}.json").read_text())
    comment = subprocess.run(["squeue", "-h", "-j", str(record["slurm_id"]), "-o", "%k"], env=slurm.env(),
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert comment == f"{record['marker']}:cap={new_cap:.2f}"  # what a node's prolog or agent reads
    assert round(record["cap"], 2) == new_cap  # the executor's record, kept for a restart
    for job_id in (a, b):
        t.member.cancel(job_id)
    assert {t.member.wait(j, timeout_s=DEADLINE_S).state for j in (a, b)} == {"CANCELLED"}


def test_a_recap_reaches_a_running_ray_job_through_its_cap_file(ray_power_hub: HubProcess) -> None:
    t, a, b, new_cap = recap_scenario(ray_power_hub, RAY_WATCHER)
    cap_file = ray_power_hub.data_dir / "spool" / str(a) / "gpu-cap.json"
    assert json.loads(cap_file.read_text())["cap_fraction"] == new_cap  # what the job and a node agent read
    for job_id in (a, b):
        t.member.cancel(job_id)
    assert {t.member.wait(j, timeout_s=DEADLINE_S).state for j in (a, b)} == {"CANCELLED"}
