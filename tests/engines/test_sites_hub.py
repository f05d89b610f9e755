"""A real hub at two sites: ``astana`` run by the throwaway Slurm, ``almaty`` by the throwaway Ray head.

One ``steppe serve --cluster hub.toml`` drives both engines (``executors/sites.py``). Astana's
node is Slurm's own node (``names = [<slurm's NodeName>]``, 8 H200); Almaty declares one node of
4 H100 on the Ray head (plain ``GPU`` resource: the head declares H200, which Ray does not
check without a type resource). So a 6-GPU job fits only at astana and an H100 job only at
almaty: each must run on its own engine. The test follows both through ``steppe nodes``, the
job view, logs, a ``kill -9`` of the hub and its restart (both adopted from their own engine,
neither submitted again), and cancels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hubtest import ENTRY, HubProcess, make_tenant, wait_for
from ray_throwaway import RayHead
from slurm_throwaway import ThrowawaySlurm

from engines.slurmtest import serving
from steppe.client import models as m
from steppe.core.cluster_config import cluster_from_dict
from steppe.core.errors import ConfigError
from steppe.executors.mock import MockExecutor
from steppe.executors.sites import SiteExecutors

DEADLINE_S = 60.0
LONG = ["/bin/sh", "-c", "echo up; exec sleep 300"]


def hub_toml(slurm: ThrowawaySlurm, head: RayHead) -> str:
    return f"""
name = "two-engines"

[sites.astana]
executor = "slurm"
[sites.astana.executor_options]
conf = "{slurm.conf}"
poll_s = "0.25"

[sites.almaty]
executor = "ray"
[sites.almaty.executor_options]
address = "{head.job_api}"
poll_s = "0.2"
log_s = "0.5"
gpu_resource = ""

[[nodes]]
site = "astana"
names = ["{slurm.node}"]
gpus = 8
gpu_type = "H200"

[[nodes]]
site = "almaty"
prefix = "alm-"
gpus = 4
gpu_type = "H100"
"""


@pytest.fixture
def sites_hub(
    slurm: ThrowawaySlurm, live_head: RayHead, job_account: str, tmp_path: Path
) -> Iterator[HubProcess]:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(f'[accounts]\n"kaznu-user" = "{job_account}"\n"kaznu-admin" = "{job_account}"\n')
    cluster = tmp_path / "hub.toml"
    cluster.write_text(hub_toml(slurm, live_head))
    hub = HubProcess(
        tmp_path / "data", "--cluster", str(cluster), "--grace", "1", "--charge-interval", "0.2",
        "--no-review-gate", "--accounts", str(accounts),
    )  # fmt: skip
    with serving(hub, slurm) as running:
        yield running


def steppe_cli(hub: HubProcess, *args: str) -> str:
    env = {**os.environ, "STEPPE_URL": hub.url, "STEPPE_TOKEN": hub.admin_token}
    done = subprocess.run([sys.executable, "-c", ENTRY, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def slurm_comments(slurm: ThrowawaySlurm) -> list[str]:
    return subprocess.run(["squeue", "-h", "-t", "all", "-o", "%k"], env=slurm.env(), capture_output=True,
                          text=True, check=True).stdout.split()  # fmt: skip


def ray_submissions(head: RayHead, hub: HubProcess, job_id: int) -> list[dict[str, object]]:
    """Ray's jobs that ran ``hub``'s job ``job_id`` (claims excluded: they never run anything; the
    head is shared with other tests' hubs, whose job ids repeat)."""
    hub_id = (hub.data_dir / "ray-hub-id").read_text().strip()
    jobs = httpx.get(f"{head.job_api}/api/jobs/", timeout=10).json()
    return [j for j in jobs if (j.get("metadata") or {}).get("steppe_job") == str(job_id)
            and (j.get("metadata") or {}).get("steppe_hub") == hub_id
            and "steppe_claim" not in (j.get("metadata") or {})]  # fmt: skip


def test_a_hub_at_two_sites_runs_each_job_on_its_sites_engine_and_adopts_both_after_a_restart(
    sites_hub: HubProcess, slurm: ThrowawaySlurm, live_head: RayHead
) -> None:
    t = make_tenant(sites_hub, "kaznu")
    nodes = steppe_cli(sites_hub, "nodes").splitlines()
    assert nodes[0].split()[:4] == ["SITE", "NODE", "STATE", "GPU_TYPE"]
    assert {tuple(line.split()[:4]) for line in nodes[1:]} == {
        ("astana", slurm.node, "idle", "H200"), ("almaty", "alm-001", "idle", "H100")}  # fmt: skip
    big = t.member.submit(m.JobSubmit(project=t.project, gpus=6, argv=LONG))  # 6 GPUs: only astana has them
    h100 = t.member.submit(m.JobSubmit(project=t.project, gpus=2, gpu_type="H100", argv=LONG))  # only almaty
    wait_for(lambda: all(t.member.logs(j.id).data == "up\n" for j in (big, h100)), DEADLINE_S, "both jobs' output")
    astana, almaty = t.member.get_job(big.id), t.member.get_job(h100.id)
    assert (astana.state, astana.site, almaty.state, almaty.site) == ("RUNNING", "astana", "RUNNING", "almaty")
    pairs = [word.split("=", 1) for line in steppe_cli(sites_hub, "show", str(big.id)).splitlines()
             for word in line.split() if "=" in word]  # scontrol's Key=Value words
    shown = {key: value for key, value in pairs}
    assert shown["Site"] == "astana" and shown["EngineJobId"] == astana.engine_job_id
    record = json.loads((sites_hub.data_dir / "slurm" / f"{big.id}.json").read_text())
    assert astana.engine_job_id == str(record["slurm_id"])  # Slurm's job id: it ran in Slurm
    assert slurm_comments(slurm).count(record["marker"]) == 1
    assert not (sites_hub.data_dir / "slurm" / f"{h100.id}.json").exists()  # never given to Slurm
    ran = ray_submissions(live_head, sites_hub, h100.id)
    assert [(j["submission_id"], j["status"]) for j in ran] == [(almaty.engine_job_id, "RUNNING")]
    assert ray_submissions(live_head, sites_hub, big.id) == []  # never given to Ray

    sites_hub.kill()  # kill -9: both jobs run on in their engines
    sites_hub.start()
    for job, before in ((big, astana), (h100, almaty)):  # adopted: running, the same engine job, its logs
        now = t.member.get_job(job.id)
        assert (now.state, now.site, now.engine_job_id) == ("RUNNING", before.site, before.engine_job_id)
        assert t.member.logs(job.id).data == "up\n"
    t.member.cancel(big.id)
    t.member.cancel(h100.id)
    done = {j.id: t.member.wait(j.id, timeout_s=DEADLINE_S) for j in (big, h100)}
    assert {j: (v.state, v.site) for j, v in done.items()} == {big.id: ("CANCELLED", "astana"),
                                                                 h100.id: ("CANCELLED", "almaty")}  # fmt: skip
    assert slurm_comments(slurm).count(record["marker"]) == 1  # each ran once on its engine
    wait_for(lambda: [j["status"] for j in ray_submissions(live_head, sites_hub, h100.id)] == ["STOPPED"], DEADLINE_S,
             "Ray's job stopped")  # fmt: skip
    assert t.member.get_job(big.id).engine_job_id == astana.engine_job_id


def test_a_node_group_may_name_its_nodes_as_the_engine_does() -> None:
    group = {"site": "astana", "names": ["vm", "gpu-b"], "gpus": 8, "gpu_type": "H200"}
    cluster = cluster_from_dict({"sites": {"astana": {}}, "nodes": [group]}, "hub.toml")
    assert [(n.name, n.site, n.gpus) for n in cluster.nodes] == [("vm", "astana", 8), ("gpu-b", "astana", 8)]
    with pytest.raises(ConfigError, match="either names, or prefix and count"):
        cluster_from_dict({"nodes": [{"names": ["a"], "count": 2, "gpus": 1, "gpu_type": "H200"}]}, "hub.toml")
    with pytest.raises(ConfigError, match="non-empty list"):
        cluster_from_dict({"nodes": [{"names": [], "gpus": 1, "gpu_type": "H200"}]}, "hub.toml")


def test_each_sites_engine_reports_only_its_own_sites_nodes() -> None:
    """Two engines that both see a host ``vm`` (a Slurm node and a Ray head on one machine): the GPUs
    others hold there count at the site whose node it is, never overwritten by the other engine's."""
    slurm_side, ray_side = MockExecutor(), MockExecutor()
    slurm_side.gpus, slurm_side.busy = {"vm": (0, 1, 2, 3)}, {"vm": 3}
    ray_side.gpus, ray_side.busy = {"vm": (0, 1)}, {"vm": 0}
    sites = SiteExecutors({"astana": slurm_side, "almaty": ray_side}, ["astana", "almaty"], ["vm", "alm-001"])
    seen = sites.inventory()
    assert (seen.gpus, seen.busy) == ({"vm": (0, 1, 2, 3)}, {"vm": 3})


class TakesEveryStartAsLaunched(MockExecutor):
    """An engine that cannot tell (Ray while its head is silent): every start counts as launched."""

    def find_launch(self, job_id: int, start_s: float, wait_s: float = 10.0) -> dict[str, object] | None:
        return {"job_id": job_id, "start_s": start_s, "unconfirmed": True}


def test_a_restart_asks_only_the_engine_of_the_site_the_job_was_placed_at() -> None:
    """A start at astana that never reached Slurm is not launched, whatever almaty's engine says."""
    slurm_side, ray_side = MockExecutor(), TakesEveryStartAsLaunched()
    sites = SiteExecutors({"astana": slurm_side, "almaty": ray_side}, ["astana", "almaty"], ["vm", "alm-001"])
    assert sites.find_launch_at(0, 7, 100.0) is None  # astana's engine never saw it: requeue it
    assert sites.find_launch(7, 100.0) == {"job_id": 7, "start_s": 100.0, "unconfirmed": True, "site": "almaty"}
    assert sites.find_launch_at(1, 7, 100.0) == {"job_id": 7, "start_s": 100.0, "unconfirmed": True, "site": "almaty"}
