"""Tenants in the store: an organisation's fair-share weight and GPU quota, set through the API with a
reason (audited), used by the submission gate and the scheduler from the next cycle. In process,
with the mock executor (no processes run)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from steppe.api.app import create_app
from steppe.api.hub import Hub, HubSettings
from steppe.executors.mock import MockExecutor

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what this project has
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, Hub, dict[str, str]]]:
    hub = Hub.open(HubSettings(data_dir=tmp_path / "data", gpus=4, gpu_type="H100", review_gate=False,
                               executor="mock"))  # fmt: skip
    with TestClient(create_app(hub), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {(tmp_path / 'data' / 'admin-token').read_text().strip()}"
        for url, body in (("/api/v1/orgs", {"name": "kaznu", "country": "KZ"}),
                          ("/api/v1/orgs/kaznu/projects", {"name": "nlp"}),
                          ("/api/v1/orgs/kaznu/members", {"name": "alice"})):  # fmt: skip
            assert client.post(url, json=body).status_code == 201, url
        token = client.post("/api/v1/users/alice/tokens", json={}).json()["token"]
        yield client, hub, {"Authorization": f"Bearer {token}"}


def _state(client: TestClient, job_id: int) -> tuple[str, str]:
    job = client.get(f"/api/v1/jobs/{job_id}").json()
    return job["state"], job["reason"]


def _wait(client: TestClient, job_id: int, state: str) -> None:
    deadline = time.monotonic() + 10
    while _state(client, job_id)[0] != state:
        assert time.monotonic() < deadline, f"job {job_id} never reached {state}: {_state(client, job_id)}"
        time.sleep(0.02)


def test_shares_are_set_by_a_hub_admin_with_a_reason_and_audited(app: tuple[TestClient, Hub, dict[str, str]]) -> None:
    client, _, member = app
    body = {"fairshare_weight": 2.5, "gpu_quota": 3, "reason": "2027 call"}
    denied = client.put("/api/v1/orgs/kaznu/share", json=body, headers=member)
    assert denied.status_code == 403
    missing = client.put("/api/v1/orgs/kaznu/share", json={"gpu_quota": 3})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "reason"
    done = client.put("/api/v1/orgs/kaznu/share", json=body)
    assert done.status_code == 200 and (done.json()["fairshare_weight"], done.json()["gpu_quota"]) == (2.5, 3)
    assert client.get("/api/v1/orgs/kaznu").json()["gpu_quota"] == 3
    entry = [e for e in client.get("/api/v1/audit").json() if e["action"] == "quota.change"][-1]
    assert entry["subject"] == "kaznu" and entry["reason"] == "2027 call"
    assert entry["details"]["after"] == {"fairshare_weight": 2.5, "gpu_quota": 3}
    assert client.get("/api/v1/audit/verify").json()["ok"]


def test_a_quota_gates_submissions_and_a_raised_one_releases_held_jobs(
    app: tuple[TestClient, Hub, dict[str, str]],
) -> None:
    client, hub, member = app
    assert client.put("/api/v1/orgs/kaznu/share", json={"gpu_quota": 2, "reason": "pilot"}).status_code == 200
    job = {"project": "kaznu/nlp", "argv": ["/bin/true"]}
    over = client.post("/api/v1/jobs", json={**job, "gpus": 3}, headers=member)
    assert over.status_code == 422 and over.json()["errors"][0]["field"] == "gpus"  # could never start
    first = client.post("/api/v1/jobs", json={**job, "gpus": 2}, headers=member).json()["id"]
    second = client.post("/api/v1/jobs", json={**job, "gpus": 2}, headers=member).json()["id"]
    _wait(client, first, "RUNNING")
    deadline = time.monotonic() + 10
    while _state(client, second) != ("PENDING", "QOSGrpGRES"):
        assert time.monotonic() < deadline, _state(client, second)
        time.sleep(0.02)
    assert client.put("/api/v1/orgs/kaznu/share", json={"gpu_quota": 4, "reason": "grant"}).status_code == 200
    _wait(client, second, "RUNNING")  # released by the change alone: nothing started or stopped
    executor = hub.loop.executor
    assert isinstance(executor, MockExecutor) and set(executor.running) == {first, second}
    assert hub.loop.state.cluster.tenant("kaznu").gpu_quota == 4


def test_jobs_keep_their_workload_class(app: tuple[TestClient, Hub, dict[str, str]]) -> None:
    """The live hub stores what a job does (its power model needs it), as the twin's traces carry it."""
    client, hub, member = app
    made = client.post("/api/v1/jobs", json={"project": "kaznu/nlp", "argv": ["/bin/true"], "workload": "inference"},
                       headers=member)  # fmt: skip
    assert made.status_code == 201 and made.json()["workload"] == "inference"
    job_id = made.json()["id"]
    _wait(client, job_id, "RUNNING")
    assert hub.loop.state.jobs[job_id].spec.workload.value == "inference"
    bad = client.post("/api/v1/jobs", json={"project": "kaznu/nlp", "argv": ["/bin/true"], "workload": "mining"},
                      headers=member)  # fmt: skip
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "workload"
