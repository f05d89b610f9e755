"""One submission gate for both modes: a job that could never start is refused at submission by
the twin's replay (counted) and by the live API (a 422 naming the field, nothing stored)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import job

from steppe.api.app import create_app
from steppe.api.hub import Hub, HubSettings
from steppe.core.cluster import Cluster, TenantSpec
from steppe.core.cluster_config import load_cluster
from steppe.core.records import JobRecord
from steppe.scheduling.gate import (
    NO_POOL,
    OUTSIDE_ALLOCATION,
    OVER_POWER,
    OVER_QUOTA,
    PowerCeiling,
    SubmissionGate,
    default_gpu_type,
)
from steppe.scheduling.power import ConstantLimits, PowerBudget
from steppe.twin.replay import replay
from steppe.twin.trace import Trace

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what this project has
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

# Two nodes of 4 H100 and one of 2 A100; the organisation kaznu may hold at most 3 GPUs at once.
CLUSTER_TOML = """\
name = "gate-test"

[[nodes]]
prefix = "h100-"
count = 2
gpus = 4
gpu_type = "H100"

[[nodes]]
prefix = "a100-"
count = 1
gpus = 2
gpu_type = "A100"

[tenants.kaznu]
gpu_quota = 3
"""
OVER_QUOTA_GPUS = 4  # fits the H100 pool (8) but not kaznu's quota (3)


@pytest.fixture(scope="module")
def cluster_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gate") / "cluster.toml"
    path.write_text(CLUSTER_TOML)
    return path


# -- the gate's rules, table-driven ------------------------------------------------------------------------------
CLUSTER = Cluster.uniform(2, 4, "H100").with_tenants({"kaznu": TenantSpec("kaznu", gpu_quota=3)})


@pytest.mark.parametrize(
    ("name", "gpus", "gpu_type", "tenant", "limits", "expected"),
    [
        ("fits", 3, "H100", "kaznu", {}, []),
        ("no quota for the tenant", 8, None, "enu", {}, []),
        ("unknown type", 1, "A100", "enu", {}, [("gpu_type", NO_POOL)]),
        ("larger than the pool", 9, "H100", "enu", {}, [("gpus", NO_POOL)]),
        ("larger than any pool", 9, None, "enu", {}, [("gpus", NO_POOL)]),
        ("over the tenant's quota", 4, "H100", "kaznu", {}, [("gpus", OVER_QUOTA)]),
        ("over pool and quota", 9, "H100", "kaznu", {}, [("gpus", NO_POOL), ("gpus", OVER_QUOTA)]),
        ("type not allowed", 1, "H100", "enu", {"allowed_types": ["A100"]}, [("gpu_type", OUTSIDE_ALLOCATION)]),
        ("type required", 1, None, "enu", {"allowed_types": ["A100", "H100"]}, [("gpu_type", OUTSIDE_ALLOCATION)]),
        ("over max_gpus", 3, "H100", "enu", {"max_gpus": 2}, [("gpus", OUTSIDE_ALLOCATION)]),
        ("at max_gpus", 2, "H100", "enu", {"max_gpus": 2}, []),
    ],
)
def test_gate_rules(name: str, gpus: int, gpu_type: str | None, tenant: str, limits: dict[str, Any],
                    expected: list[tuple[str, str]]) -> None:  # fmt: skip
    refused = SubmissionGate(CLUSTER).refusals(gpus, gpu_type, tenant, project=f"{tenant}/p", **limits)
    assert [(r.field, r.rule) for r in refused] == expected, name
    assert all(r.message for r in refused)


def test_quota_message_names_the_tenant_and_its_quota() -> None:
    (refusal,) = SubmissionGate(CLUSTER).refusals(4, "H100", "kaznu")
    assert refusal.message == "4 asked, but kaznu may hold at most 3 GPUs at once (its quota)"


def test_default_gpu_type_is_the_allocations_only_type() -> None:
    assert default_gpu_type(None, ["A100"]) == "A100"
    assert default_gpu_type(None, ["A100", "H100"]) is None
    assert default_gpu_type("H100", ["A100"]) == "H100"


class LinearPower:
    """A power model: 100 W per GPU at full power, in proportion to the cap."""

    def added_w(self, rec: JobRecord, gpu_type: str, cap_fraction: float) -> float:
        return rec.gpus * 100.0 * cap_fraction

    def cappable(self, rec: JobRecord) -> bool:
        return True


@pytest.mark.parametrize(("gpus", "refused"), [(6, False), (7, True)])
def test_power_ceiling(gpus: int, refused: bool) -> None:
    budget = PowerBudget(LinearPower(), ConstantLimits(1e6), 0.0, capping=True, floor=0.6)  # lowest cap 0.6: 60 W a GPU
    gate = SubmissionGate(CLUSTER, PowerCeiling(budget, ceiling_w=400.0))
    rules = [r.rule for r in gate.refusals_of(job(1, gpus, tenant="enu"))]
    assert rules == ([OVER_POWER] if refused else [])


# -- the same over-quota job in both modes --------------------------------------------------------------------
def test_twin_refuses_and_counts_the_over_quota_job(cluster_file: Path) -> None:
    cluster = load_cluster(str(cluster_file))
    trace = Trace("t", [job(1, 2, tenant="kaznu"), job(2, OVER_QUOTA_GPUS, tenant="kaznu", submit=1.0),
                        job(3, OVER_QUOTA_GPUS, tenant="enu", submit=2.0)])  # fmt: skip
    result = replay(trace, cluster, "fifo")
    assert result.rejected == {OVER_QUOTA: 1}
    assert result.summary["rejected"] == 1 and result.summary["jobs"] == 2


@pytest.fixture(scope="module")
def client(cluster_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("gate-hub") / "data"
    hub = Hub.open(HubSettings(data_dir=data, cluster=str(cluster_file), review_gate=False, single_user=True))
    with TestClient(create_app(hub), raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {(data / 'admin-token').read_text().strip()}"
        for url, body in (("/api/v1/orgs", {"name": "kaznu", "country": "KZ"}),
                          ("/api/v1/orgs/kaznu/projects", {"name": "nlp"})):  # fmt: skip
            assert c.post(url, json=body).status_code == 201, url
        yield c


def jobs_stored(c: TestClient) -> int:
    return int(c.get("/api/v1/jobs", params={"limit": 1}).json()["total"])


def test_live_api_refuses_the_over_quota_job(client: TestClient) -> None:
    before = jobs_stored(client)
    body = {"project": "kaznu/nlp", "argv": ["/bin/true"], "gpus": OVER_QUOTA_GPUS, "gpu_type": "H100"}
    r = client.post("/api/v1/jobs", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    errors = r.json()["errors"]
    assert errors == [{"field": "gpus", "message": "4 asked, but kaznu may hold at most 3 GPUs at once (its quota)"}]
    assert jobs_stored(client) == before


def test_live_api_lists_every_refusal(client: TestClient) -> None:
    before = jobs_stored(client)
    r = client.post("/api/v1/jobs", json={"project": "kaznu/nlp", "argv": ["/bin/true"], "gpus": 9, "gpu_type": "H100"})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert [e["field"] for e in problem["errors"]] == ["gpus", "gpus"]
    assert "at most 8 H100 GPUs" in problem["detail"] and "its quota" in problem["detail"]
    assert jobs_stored(client) == before
