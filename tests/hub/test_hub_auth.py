"""Authentication, roles and the API's edge (security review items 6, 11, 13 and 14).

Most tests run the app in process (``TestClient`` runs its lifespan, which starts and closes the
hub); the CLI test uses the shared ``steppe serve`` hub of conftest.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from hubtest import ENTRY, JOB_PY, HubProcess, Tenant, searchable_root, wait_for
from starlette.exceptions import StarletteDeprecationWarning

from steppe.api.app import create_app
from steppe.api.edge import MAX_BODY, Edge, FailureLimiter
from steppe.api.hub import Hub, HubSettings
from steppe.executors.accounts import running_as_root

with warnings.catch_warnings():  # starlette warns once, at import, that it prefers httpx2 to httpx
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

API = "/api/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def kill_jobs(data_dir: Path) -> None:
    """End every job process group the hub started (as hubtest.HubProcess.kill_jobs does)."""
    for handle in data_dir.glob("jobs/*/handle.json"):
        with contextlib.suppress(ProcessLookupError, PermissionError, ValueError, KeyError, OSError):
            os.killpg(int(json.loads(handle.read_text())["pgid"]), signal.SIGKILL)


@contextlib.contextmanager
def local_hub(name: str, limiter: FailureLimiter | None = None) -> Iterator[TestClient]:
    """An in-process hub (4 H100, no review gate) served by a ``TestClient``; the admin's token is in its
    headers. Its data directory is under one job accounts can pass through (see hubtest.searchable_root)."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=searchable_root()))
    settings = HubSettings(data_dir=data_dir, gpus=4, gpu_type="H100", review_gate=False, grace_s=1.0,
                           single_user=not running_as_root())  # fmt: skip
    hub = Hub.open(settings)
    try:
        with TestClient(create_app(hub, limiter=limiter), raise_server_exceptions=False) as client:
            client.headers["Authorization"] = f"Bearer {(data_dir / 'admin-token').read_text().strip()}"
            yield client
    finally:
        kill_jobs(data_dir)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(client: TestClient, user: str) -> str:
    resp = client.post(f"{API}/users/{user}/tokens", json={})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["token"])


def add_org(client: TestClient, org: str, **members: str) -> dict[str, str]:
    """An organisation with project ``nlp`` and the given ``name=role`` members; their tokens by name."""
    assert client.post(f"{API}/orgs", json={"name": org, "country": "KZ"}).status_code == 201
    assert client.post(f"{API}/orgs/{org}/projects", json={"name": "nlp"}).status_code == 201
    for name, role in members.items():
        resp = client.post(f"{API}/orgs/{org}/members", json={"name": name, "role": role})
        assert resp.status_code == 201, resp.text
    return {name: token_for(client, name) for name in members}


def assert_problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["status"] == status and body["title"] and "errors" in body
    return body


@pytest.fixture(scope="module")
def app_hub() -> Iterator[tuple[TestClient, dict[str, str]]]:
    """One in-process hub with two organisations: kaznu (org-admin, member, another member,
    reviewer, org-admin 2) and enu (member). Its failure limit is out of reach: tests send bad tokens."""
    with local_hub("auth", limiter=FailureLimiter(limit=10**6)) as client:
        tokens = add_org(client, "kaznu", **{"kz-admin": "org-admin", "kz-admin2": "org-admin", "kz-user": "member",
                                             "kz-user2": "member", "kz-rev": "reviewer"})  # fmt: skip
        tokens |= add_org(client, "enu", **{"enu-user": "member"})
        yield client, tokens


# -- item 6: who may mint whose tokens ----------------------------------------------------------------------
def test_org_admin_may_not_mint_or_list_a_reviewers_tokens(app_hub: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_hub
    admin = bearer(tokens["kz-admin"])
    assert_problem(client.post(f"{API}/users/kz-rev/tokens", json={}, headers=admin), 403)
    assert_problem(client.get(f"{API}/users/kz-rev/tokens", headers=admin), 403)
    assert_problem(client.post(f"{API}/users/admin/tokens", json={}, headers=admin), 404)  # the hub-admin
    assert_problem(client.post(f"{API}/users/enu-user/tokens", json={}, headers=admin), 404)
    # their own organisation's members and org-admins, and themselves: yes
    for user in ("kz-user", "kz-admin2", "kz-admin"):
        assert client.post(f"{API}/users/{user}/tokens", json={}, headers=admin).status_code == 201
        assert client.get(f"{API}/users/{user}/tokens", headers=admin).status_code == 200


def test_org_admin_may_not_revoke_a_reviewers_token(app_hub: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_hub
    prefix = client.post(f"{API}/users/kz-rev/tokens", json={}).json()["prefix"]
    assert_problem(client.delete(f"{API}/tokens/{prefix}", headers=bearer(tokens["kz-admin"])), 404)
    mine = client.post(f"{API}/users/kz-user2/tokens", json={}).json()["prefix"]
    assert client.delete(f"{API}/tokens/{mine}", headers=bearer(tokens["kz-admin"])).status_code == 204


def test_members_manage_only_their_own_tokens(app_hub: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_hub
    user = bearer(tokens["kz-user"])
    assert client.post(f"{API}/users/kz-user/tokens", json={}, headers=user).status_code == 201
    for other in ("kz-user2", "kz-admin", "kz-rev"):
        assert_problem(client.post(f"{API}/users/{other}/tokens", json={}, headers=user), 403)
    assert_problem(client.post(f"{API}/users/enu-user/tokens", json={}, headers=user), 404)
    reviewer = bearer(tokens["kz-rev"])  # a reviewer has no authority over anyone's tokens but their own
    assert_problem(client.post(f"{API}/users/kz-user/tokens", json={}, headers=reviewer), 403)
    assert client.post(f"{API}/users/kz-rev/tokens", json={}, headers=reviewer).status_code == 201


# -- item 11: nodes and GPUs hide other organisations' jobs ------------------------------------------------
def test_nodes_and_gpus_hide_other_organisations_jobs(app_hub: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_hub
    own, other = bearer(tokens["kz-user"]), bearer(tokens["enu-user"])
    body = {"project": "kaznu/nlp", "argv": [JOB_PY, "-c", "import time; time.sleep(60)"], "gpus": 2, "walltime_s": 120}
    job = client.post(f"{API}/jobs", json=body, headers=own).json()["id"]
    try:
        wait_for(lambda: client.get(f"{API}/jobs/{job}").json()["state"] != "PENDING", what="the job to start")
        assert client.get(f"{API}/jobs/{job}").json()["state"] == "RUNNING", client.get(f"{API}/jobs/{job}").text
        for headers, sees in ((other, False), (own, True), ({}, True)):  # {}: the hub-admin
            nodes = client.get(f"{API}/nodes", headers=headers).json()
            assert [n["free"] for n in nodes] == [2]  # free counts are the truth for everyone
            assert (job in nodes[0]["jobs"]) is sees
            gpus = client.get(f"{API}/gpus", headers=headers).json()
            assert sum(g["busy"] for g in gpus) == 2
            assert sum(g["job_id"] == job for g in gpus) == (2 if sees else 0)
            assert all(g["job_id"] is None for g in gpus if not g["busy"])
    finally:
        client.post(f"{API}/jobs/{job}/cancel")
    wait_for(lambda: client.get(f"{API}/jobs/{job}").json()["state"] == "CANCELLED", what="the cancel")


# -- item 13: the OpenAPI document -------------------------------------------------------------------------
def test_openapi_declares_bearer_security_and_every_status(app_hub: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = app_hub
    resp = client.get(f"{API}/openapi.json", headers={"Authorization": ""})
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "stp_<prefix>_<secret>",
        "description": "an API token: `Authorization: Bearer stp_...`",
    }  # fmt: skip
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            codes = set(op["responses"])
            if path == f"{API}/version":
                assert "security" not in op and {"200", "413", "422"} <= codes
                continue
            assert op["security"] == [{"bearer": []}], (method, path)
            assert {"401", "413", "422", "429"} <= codes, (method, path)
            if path != "/metrics":
                assert {"400", "403", "404", "409"} <= codes, (method, path)
            for code, response in op["responses"].items():
                if code[0] == "4":
                    assert response["content"] == {
                        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                    }, (method, path, code)
    assert {"200", "201"} <= set(doc["paths"][f"{API}/jobs"]["post"]["responses"])  # replay and new
    assert {"200", "401", "403"} <= set(doc["paths"]["/metrics"]["get"]["responses"])
    assert "Retry-After" in doc["paths"][f"{API}/jobs"]["get"]["responses"]["429"]["headers"]


def test_idempotent_replay_answers_200(app_hub: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_hub
    headers = {**bearer(tokens["kz-user"]), "Idempotency-Key": "replay-1"}
    body = {"project": "kaznu/nlp", "argv": ["true"], "gpus": 4, "walltime_s": 1}
    first = client.post(f"{API}/jobs", json=body, headers=headers)
    again = client.post(f"{API}/jobs", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200) and first.json()["id"] == again.json()["id"]
    client.post(f"{API}/jobs/{first.json()['id']}/cancel")


def test_metrics_needs_a_hub_admin(app_hub: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_hub
    assert_problem(client.get("/metrics", headers={"Authorization": ""}), 401)
    assert_problem(client.get("/metrics", headers=bearer(tokens["kz-admin"])), 403)
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")


# -- item 14: 401 before the body, failed logins limited, the token never on a command line --------------
def test_an_unauthenticated_request_is_401_whatever_its_body(app_hub: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = app_hub
    for headers in ({"Authorization": ""}, bearer("stp_nope_nothing"), {"Authorization": "Basic eDp5"}):
        headers = {**headers, "Content-Type": "application/json"}
        for body in (b"{not json", b'{"project": 3}', b"\x00" * 10, b""):
            body_401 = assert_problem(client.post(f"{API}/jobs", content=body, headers=headers), 401)
            assert body_401["type"].endswith("/unauthorized")
        resp = client.post(f"{API}/jobs", content=b"x" * (MAX_BODY + 1), headers=headers)
        assert_problem(resp, 401)
        assert resp.headers["www-authenticate"] == "Bearer"
        assert_problem(client.get(f"{API}/no-such-route", headers=headers), 401)  # no hint of what exists
        assert_problem(client.get(f"{API}/orgs/a%00b", headers=headers), 401)
    assert_problem(client.get(f"{API}/no-such-route"), 404)
    assert_problem(client.post(f"{API}/jobs", content=b"{not json", headers={"Content-Type": "application/json"}), 400)
    assert client.get(f"{API}/version", headers={"Authorization": ""}).status_code == 200


def test_failed_logins_are_limited_per_client() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=10, window_s=60.0, clock=clock)
    with local_hub("limits", limiter=limiter) as client:
        good = dict(client.headers)
        other = TestClient(client.app, client=("10.0.0.2", 4000))
        for _ in range(30):  # successes and requests without a token are not counted
            assert client.get(f"{API}/whoami").status_code == 200
            assert client.get(f"{API}/whoami", headers={"Authorization": ""}).status_code == 401
        for _ in range(10):
            assert_problem(client.get(f"{API}/whoami", headers=bearer("stp_guess_wrong")), 401)
        clock.now += 30
        for headers in (bearer("stp_guess_wrong"), good, {"Authorization": ""}):
            resp = client.post(f"{API}/jobs", json={}, headers=headers)
            assert_problem(resp, 429)
            assert resp.headers["retry-after"] == "30"
        assert client.get(f"{API}/version").status_code == 200  # open paths stay open
        assert other.get(f"{API}/whoami", headers=good).status_code == 200  # another client is not limited
        clock.now += 29.5
        assert client.get(f"{API}/whoami").headers["retry-after"] == "1"
        clock.now += 0.5
        assert client.get(f"{API}/whoami").status_code == 200
        assert_problem(client.get(f"{API}/whoami", headers=bearer("stp_guess_wrong")), 401)
        assert len(limiter) == 1


def test_the_failure_record_is_bounded_and_thread_safe() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=3, window_s=60.0, max_clients=50, clock=clock)

    def fail(n: int) -> None:
        for i in range(300):
            limiter.failed(f"10.{n}.0.{i % 100}")
            limiter.retry_after(f"10.{n}.0.{i % 100}")

    threads = [threading.Thread(target=fail, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(limiter) == 50
    assert {limiter.retry_after(f"10.{n}.0.{i}") for n in range(8) for i in range(100)} <= {0.0, 60.0}
    for _ in range(3):
        limiter.failed("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") == 60.0 and len(limiter) == 50  # the newest is kept
    clock.now += 60
    assert limiter.retry_after("192.0.2.1") == 0.0 and len(limiter) == 49  # and forgotten once old


def test_login_takes_the_token_from_stdin_or_a_file_only(hub: HubProcess, tenants: dict[str, Tenant],
                                                         tmp_path: Path) -> None:  # fmt: skip
    t = tenants["kaznu"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPPE_")}
    env["STEPPE_CONFIG"] = str(tmp_path / "config.toml")

    def steppe(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", ENTRY, "login", "--url", hub.url, *args], env=env, input=stdin,
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    refused = steppe("--token", t.member_token)
    assert refused.returncode == 2 and "No such option" in refused.stderr
    assert not (tmp_path / "config.toml").exists()
    (tmp_path / "token").write_text(t.member_token + "\n")
    assert steppe("--token-file", str(tmp_path / "token")).returncode == 0
    assert steppe(stdin=t.member_token + "\n").returncode == 0
    empty = steppe(stdin="\n")
    assert empty.returncode == 2 and "no token" in empty.stderr


# -- the edge: body size and NUL bytes ---------------------------------------------------------------------
def test_a_body_over_the_limit_is_413(app_hub: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_hub
    big = b'{"name": "' + b"x" * MAX_BODY + b'"}'
    for headers in ({"Content-Type": "application/json"}, bearer(tokens["kz-user"])):
        body = assert_problem(client.post(f"{API}/orgs", content=big, headers=headers), 413)
        assert "4 MiB" in body["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the edge counts what it reads
        yield b'{"name": "'
        for _ in range(5):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    assert_problem(client.post(f"{API}/orgs", content=chunks(), headers={"Content-Type": "application/json"}), 413)
    assert client.post(f"{API}/orgs", json={"name": "ok-size", "country": "KZ"}).status_code == 201
    assert_problem(client.get(f"{API}/orgs", headers={"Content-Length": "many"}), 400)


def test_a_body_streamed_in_chunks_reaches_the_app_whole(app_hub: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = app_hub

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "chunky",'
        yield b' "country": "KZ"}'

    resp = client.post(f"{API}/orgs", content=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 201 and resp.json()["name"] == "chunky"


def test_a_streamed_body_is_cut_at_the_limit() -> None:
    """Straight through the middleware: it stops reading at the limit and never calls the app."""
    import asyncio

    called: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(True)

    class OpenHub:
        class settings:  # noqa: N801
            public_metrics = True

    edge = Edge(app, OpenHub(), max_body=100)  # type: ignore[arg-type]
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 40, "more_body": True}

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/healthz", "query_string": b"", "headers": []}
    asyncio.run(edge(scope, receive, send))
    assert not called and reads == 3 and sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["detail"] == "the request body exceeds the limit of 100 bytes"


def test_nul_bytes_in_the_path_or_query_are_422(app_hub: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = app_hub
    for url, field in ((f"{API}/orgs/a%00b", "org"), (f"{API}/orgs/kaznu/projects/n%00/usage", "project"),
                       (f"{API}/jobs?project=kaznu/nlp%00", "project"), (f"{API}/jobs?st%00ate=x", "st\\x00ate"),
                       (f"{API}/version?x=%00", "x"), (f"{API}/no%00where", "path")):  # fmt: skip
        body = assert_problem(client.get(url), 422)
        assert body["errors"] == [{"field": field, "message": "contains a NUL byte"}], url


def test_a_hub_mounted_under_a_root_path_still_needs_tokens(app_hub: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = app_hub
    mounted = TestClient(client.app, root_path="/steppe")
    assert_problem(mounted.get("/steppe/api/v1/whoami"), 401)
    headers = {"Content-Type": "application/json"}
    assert_problem(mounted.post("/steppe/api/v1/jobs", content=b"{not json", headers=headers), 401)  # not 400
    assert mounted.get("/steppe/api/v1/whoami", headers=bearer(tokens["kz-user"])).json()["name"] == "kz-user"
    assert mounted.get("/steppe/api/v1/version", headers={"Authorization": ""}).status_code == 200
