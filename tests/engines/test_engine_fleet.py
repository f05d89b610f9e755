"""A hub whose nodes and GPUs are read from its engine at start, not declared.

``steppe serve --executor slurm --gpus-from-engine`` takes the throwaway Slurm's node (its
``NodeName``, 8 GPUs of GRES type ``h200`` -> H200), ``--executor ray --gpus-from-engine`` the Ray
head's (its host name, 8 GPUs of resource ``gpu_type:H200``), and a cluster file's site with
``gpus = "engine"`` its engine's nodes beside the other sites' declared ones; jobs then run on
them. An engine that does not answer within ``--engine-wait`` fails the start in one line.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubtest import ENTRY, HubProcess, free_port, make_tenant, searchable_root
from ray_throwaway import RayHead
from slurm_throwaway import ThrowawaySlurm
from typer.testing import CliRunner

from steppe.cli.main import app as cli_app
from steppe.client import models as m
from steppe.core.cluster_config import cluster_from_dict
from steppe.core.errors import ConfigError

DEADLINE_S = 60.0
JOB_PY = "/usr/bin/python3"


def accounts_file(tmp_path: Path, account: str) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(f'[accounts]\n"kaznu-user" = "{account}"\n"kaznu-admin" = "{account}"\n')
    return path


def scancel_all(slurm: ThrowawaySlurm) -> None:
    ids = subprocess.run(["squeue", "-h", "-o", "%i"], env=slurm.env(), capture_output=True, text=True).stdout
    if ids.split():
        subprocess.run(["scancel", *ids.split()], env=slurm.env(), check=False)


def serve_error(tmp_path: Path, *options: str) -> str:
    """The one ``error:`` line of a ``steppe serve`` that refuses to start."""
    data = searchable_root() / f"refused-{tmp_path.name}"
    cmd = [sys.executable, "-c", ENTRY, "serve", "--data-dir", str(data), "--single-user", *options]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode != 0 and "Traceback" not in done.stderr and len(errors) == 1, done.stderr
    return errors[0]


@pytest.fixture
def slurm_engine_hub(slurm: ThrowawaySlurm, job_account: str, tmp_path: Path) -> Iterator[HubProcess]:
    hub = HubProcess(
        tmp_path / "data", "--executor", "slurm", "--executor-opt", f"conf={slurm.conf}", "--executor-opt",
        "poll_s=0.25", "--gpus-from-engine", "--grace", "1", "--no-review-gate",
        "--accounts", str(accounts_file(tmp_path, job_account)),
    )  # fmt: skip
    try:
        yield hub.start()
    finally:
        hub.stop()
        scancel_all(slurm)


def test_a_slurm_hub_reads_its_nodes_and_gpu_types_from_slurm(
    slurm_engine_hub: HubProcess, slurm: ThrowawaySlurm
) -> None:
    t = make_tenant(slurm_engine_hub, "kaznu")
    assert [(n.name, n.gpu_type, n.gpus) for n in t.admin.nodes()] == [(slurm.node, "H200", 8)]
    job = t.member.submit(m.JobSubmit(project=t.project, gpus=8, gpu_type="H200", argv=[JOB_PY, "-c", "print('all')"]))
    done = t.member.wait(job.id, timeout_s=DEADLINE_S)
    assert (done.state, done.exit_code, done.nodes) == ("COMPLETED", "0:0", [slurm.node])
    assert t.member.logs(job.id).data == "all\n"


def test_a_ray_hub_reads_its_nodes_and_gpu_types_from_ray(tmp_path: Path, live_head: RayHead) -> None:
    hub = HubProcess(
        tmp_path / "data", "--executor", "ray", "--executor-opt", f"address={live_head.job_api}",
        "--executor-opt", "poll_s=0.2", "--executor-opt", "log_s=0.5", "--executor-opt", "inventory_s=0.5",
        "--gpus-from-engine", "--grace", "1", "--no-review-gate",
    ).start()  # fmt: skip
    try:
        t = make_tenant(hub, "kaznu")
        nodes = t.admin.nodes()
        assert [(n.gpu_type, n.gpus) for n in nodes] == [("H200", 8)]  # the head's declared GPUs and type
        job = t.member.submit(m.JobSubmit(project=t.project, gpus=8, gpu_type="H200", argv=["/bin/echo", "all"]))
        done = t.member.wait(job.id, timeout_s=DEADLINE_S)
        assert (done.state, done.exit_code, done.nodes) == ("COMPLETED", "0:0", [nodes[0].name])
        assert t.member.logs(job.id).data == "all\n"
    finally:
        hub.stop()


def test_a_cluster_files_site_may_read_its_nodes_from_its_engine(
    slurm: ThrowawaySlurm, live_head: RayHead, job_account: str, tmp_path: Path
) -> None:
    cluster = tmp_path / "hub.toml"
    cluster.write_text(f"""
[sites.astana]
executor = "slurm"
gpus = "engine"
[sites.astana.executor_options]
conf = "{slurm.conf}"
poll_s = "0.25"

[sites.almaty]
executor = "ray"
[sites.almaty.executor_options]
address = "{live_head.job_api}"
gpu_resource = ""

[[nodes]]
site = "almaty"
prefix = "alm-"
gpus = 4
gpu_type = "H100"
""")
    hub = HubProcess(tmp_path / "data", "--cluster", str(cluster), "--grace", "1", "--no-review-gate",
                     "--accounts", str(accounts_file(tmp_path, job_account))).start()  # fmt: skip
    try:
        t = make_tenant(hub, "kaznu")
        assert sorted((n.site, n.name, n.gpu_type, n.gpus) for n in t.admin.nodes()) == [
            ("almaty", "alm-001", "H100", 4), ("astana", slurm.node, "H200", 8),
        ]  # fmt: skip
        job = t.member.submit(m.JobSubmit(project=t.project, gpus=6, argv=[JOB_PY, "-c", "print('at astana')"]))
        done = t.member.wait(job.id, timeout_s=DEADLINE_S)
        assert (done.state, done.site, done.exit_code) == ("COMPLETED", "astana", "0:0")
        assert (hub.data_dir / "slurm" / f"{job.id}.json").exists()  # Slurm ran it
    finally:
        hub.stop()
        scancel_all(slurm)
    almaty = '[sites.almaty]\nexecutor = "ray"'
    text = cluster.read_text().replace(almaty, almaty + '\ngpus = "engine"')
    cluster.write_text(text.split("[[nodes]]")[0])  # both engines report this host: refused, naming both sites
    error = serve_error(tmp_path, "--cluster", str(cluster), "--engine-wait", "20")
    assert "site almaty" in error and f"node {slurm.node} is also a node of site astana" in error


def test_serve_fails_in_one_line_when_the_engine_does_not_answer(tmp_path: Path) -> None:
    silent = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    error = serve_error(tmp_path, "--executor", "ray", "--executor-opt", f"address={silent}", "--gpus-from-engine",
                        "--engine-wait", "2")  # fmt: skip
    assert "the ray engine did not answer within 2 s" in error


def test_serve_refuses_gpus_from_engine_beside_declared_gpus_or_a_local_executor(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--gpus-from-engine", "--gpus", "8"])
    assert result.exit_code != 0 and "--gpus-from-engine" in result.output
    error = serve_error(tmp_path, "--gpus-from-engine")
    assert "remote engine" in error and "local" in error


def test_a_site_reads_its_gpus_from_its_engine_or_declares_them_never_both() -> None:
    sites = {"astana": {"executor": "slurm", "gpus": "engine"}, "almaty": {}}
    cluster = cluster_from_dict({"sites": sites, "nodes": [{"site": "almaty", "gpus": 8, "gpu_type": "H100"}]}, "h")
    assert cluster.sites["astana"].gpus_from_engine and not cluster.sites["almaty"].gpus_from_engine
    assert {n.site for n in cluster.nodes} == {"almaty"}  # astana's come from its engine at start
    assert cluster_from_dict({"sites": {"astana": {"gpus": "engine"}}}, "h").nodes == ()
    with pytest.raises(ConfigError, match="declare them here or there"):
        cluster_from_dict({"sites": sites, "nodes": [{"site": "astana", "gpus": 8, "gpu_type": "H100"}]}, "h")
    with pytest.raises(ConfigError, match='"declared"'):
        cluster_from_dict({"sites": {"astana": {"gpus": "sinfo"}}, "nodes": []}, "h")
