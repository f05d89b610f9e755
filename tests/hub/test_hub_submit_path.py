"""The submission path, lean: the edge's fast route for ``POST /jobs``, the committed row handed to the loop,
the loop's inbox statements built once, SQLite transactions begun on the driver.

In process, with the mock executor; the hub is not started (its loop is stepped by hand) and the API is
driven over ASGI (``httpx.ASGITransport``), so no server or process runs.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from steppe.api.app import create_app
from steppe.api.edge import Edge, Message, Receive, Scope, Send
from steppe.api.hub import Hub, HubSettings
from steppe.api.routes_jobs import submit_fast
from steppe.app import jobs
from steppe.app.auth import Principal
from steppe.app.submission import path_name
from steppe.client import models as m
from steppe.control.rows import launch_from_row, spec_from_row
from steppe.governance.residency import Dataset, Sensitivity
from steppe.store import db, open_store
from steppe.store import governance as gov_repo
from steppe.store import jobs as job_repo
from steppe.store import tenancy as tenancy_repo
from steppe.store.db import sqlite_url

PROJECT = "kaznu/nlp"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[Hub, Principal, str]]:
    """A hub (not started) with organisation kaznu, project nlp, member alice and her token."""
    h = Hub.open(HubSettings(data_dir=tmp_path / "data", gpus=4, gpu_type="H100", review_gate=False,
                             executor="mock", single_user=True), root=False)  # fmt: skip
    with h.store.write() as conn:
        org_id = tenancy_repo.create_org(conn, "kaznu", "KZ", 0.0)
        tenancy_repo.create_project(conn, org_id, "nlp", 0.0)
        user_id = tenancy_repo.create_user(conn, "alice", org_id, "member", 0.0)
        token, _ = tenancy_repo.create_token(conn, user_id, "t", 0.0, None)
        gov_repo.create_dataset(conn, Dataset("corpus", "KZ", Sensitivity.PUBLIC, "astana", 10**9), 0.0)
    try:
        yield h, Principal(user_id, "alice", "member", org_id, "kaznu"), token
    finally:
        h.close()


def _submit(h: Hub, who: Principal, fields: dict[str, object] | None = None, key: str | None = None) -> jobs.Submitted:
    body = m.JobSubmit.model_validate({"project": PROJECT, "argv": ["/bin/true"], **(fields or {})})
    return asyncio.run(jobs.submit(h, who, body, key))


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The ids of every ``jobs_by_id`` read from now on."""
    reads: list[list[int]] = []
    real = job_repo.jobs_by_id

    def spy(conn: Any, ids: Any) -> Any:
        reads.append(list(ids))
        return real(conn, reads[-1])

    monkeypatch.setattr(job_repo, "jobs_by_id", spy)
    return reads


VARIED: list[dict[str, object]] = [
    {},
    {"gpus": 2, "gpu_type": "h100", "walltime_s": 60, "name": "train", "env": {"A": "1", "B": "ω"}},
    {"argv": None, "script": "#!/bin/sh\necho hi\n", "workload": "inference", "qos": "normal"},
    {"output": "o-%j.txt", "error": "e-%j.txt", "datasets": ["corpus", "corpus"]},
]


# -- the committed row handed to the loop ----------------------------------------------------------------------
def test_a_handed_row_is_what_the_store_holds(hub: tuple[Hub, Principal, str]) -> None:
    h, alice, _ = hub
    done = [_submit(h, alice, fields) for fields in VARIED]
    handed = dict(h.loop._handed)
    assert sorted(handed) == [d.job_id for d in done]
    with h.store.read() as conn:
        stored = job_repo.jobs_by_id(conn, list(handed))
        linked = gov_repo.datasets_of_jobs(conn, list(handed))
    for job_id, (row, datasets) in handed.items():
        assert spec_from_row(row) == spec_from_row(stored[job_id])
        assert launch_from_row(row) == launch_from_row(stored[job_id])
        assert (row.project_id, row.state, row.reason) == (stored[job_id].project_id, "PENDING", "Priority")
        assert datasets == linked.get(job_id, [])
    assert handed[done[3].job_id][1] == ["corpus"]


def test_the_loop_queues_handed_jobs_without_reading_them_back(
    hub: tuple[Hub, Principal, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    h, alice, _ = hub
    h.loop.restore()
    done = [_submit(h, alice, fields) for fields in VARIED]
    reads = _count_reads(monkeypatch)
    h.loop.step()
    assert reads == []  # every submitted row was handed over
    assert {d.job_id for d in done} <= set(h.loop.state.jobs)
    assert h.loop._handed == {}
    assert h.loop.governance.datasets_of[done[3].job_id] == ["corpus"]
    with h.store.read() as conn:
        assert job_repo.pending_requests(conn) == []


def test_a_request_without_a_handed_row_is_read_from_the_store(
    hub: tuple[Hub, Principal, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    h, alice, _ = hub
    h.loop.restore()
    first = _submit(h, alice)
    values = {
        "project_id": first.row.project_id, "user_id": alice.user_id, "name": "direct", "argv": ["true"],
        "script": None, "workdir": "/tmp", "env": {}, "gpus": 1, "gpu_type": None, "walltime_s": 60.0,
        "qos": "normal", "submit_s": 1.0, "stdout_path": "/tmp/o", "stderr_path": "/tmp/e",
    }  # fmt: skip
    with h.store.write() as conn:  # as the harness and the bench write jobs: no handover
        direct = job_repo.insert_job(conn, values, "alice")
    reads = _count_reads(monkeypatch)
    h.loop.step()
    assert reads == [[direct]]
    assert h.loop.state.jobs[direct].spec.name == "direct"
    assert first.job_id in h.loop.state.jobs


def test_a_handed_row_whose_request_was_already_taken_is_dropped(hub: tuple[Hub, Principal, str]) -> None:
    h, alice, _ = hub
    h.loop.restore()
    done = _submit(h, alice)
    late = h.loop._handed.pop(done.job_id)  # the step below reads the request before the handover arrives
    h.loop.step()
    assert done.job_id in h.loop.state.jobs
    h.loop.submitted(*late)  # the handover, late
    h.loop.step()
    assert h.loop._handed == {}  # dropped, not kept for a request that will never come
    assert list(h.loop.state.jobs) == [done.job_id]


def test_only_a_job_with_an_idempotency_key_stores_the_request_digest(hub: tuple[Hub, Principal, str]) -> None:
    h, alice, _ = hub
    plain, keyed = _submit(h, alice), _submit(h, alice, key="k1")
    with h.store.read() as conn:
        rows = {r.id: r.request_sha256 for r in job_repo.list_jobs(conn)[0]}
    body = m.JobSubmit.model_validate({"project": PROJECT, "argv": ["/bin/true"]})
    assert rows == {plain.job_id: None, keyed.job_id: jobs.request_digest(body)}


# -- the edge's fast route --------------------------------------------------------------------------------------
def _post(app: Any, token: str, content: str, **headers: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            return await client.post(
                "/api/v1/jobs",
                content=content,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers},
            )

    return asyncio.run(go())


def _job_count(h: Hub) -> int:
    with h.store.read() as conn:
        return job_repo.list_jobs(conn, limit=1)[1]


def test_the_edge_answers_a_valid_submission_itself_and_passes_anything_else_on(
    hub: tuple[Hub, Principal, str],
) -> None:
    h, _, token = hub
    reached: list[str] = []

    async def route(scope: Scope, receive: Receive, send: Send) -> None:  # stands for FastAPI's routing
        body = b""
        while True:
            message: Message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        reached.append(body.decode())
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    edge = Edge(route, h, fast={("POST", "/api/v1/jobs"): submit_fast})
    ok = _post(edge, token, json.dumps({"project": PROJECT, "argv": ["true"]}))
    assert ok.status_code == 201 and reached == []
    assert ok.headers["location"] == f"/api/v1/jobs/{ok.json()['id']}"
    assert m.Job.model_validate(ok.json()).state == "PENDING"
    passed_on = [
        json.dumps({"project": PROJECT, "argv": ["true"], "gpus": "2"}),  # not a valid JobSubmit
        "not json",
        "[" * 100_000 + "]" * 100_000,
    ]
    for body in passed_on:
        assert _post(edge, token, body).status_code == 299
    assert _post(edge, token, json.dumps({"project": PROJECT, "argv": ["true"]}), **{"Idempotency-Key": "k" * 129})
    assert len(reached) == len(passed_on) + 1
    assert reached[: len(passed_on)] == passed_on  # the route gets the body unchanged


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"project": PROJECT, "argv": ["true"], "gpus": 2, "env": {"X": "1"}}, {}),
        ({"project": PROJECT, "argv": ["true"]}, {"Idempotency-Key": "same"}),
        ({"project": PROJECT, "argv": ["true"], "gpus": "2"}, {}),  # the route's 422 (validation)
        ({"project": PROJECT, "argv": ["true"], "gpus": 5}, {}),  # the application's 422 (the submission gate)
        ({"project": "kaznu/none", "argv": ["true"]}, {}),  # no such project
        ({"project": PROJECT, "argv": ["true"], "datasets": ["nope"]}, {}),
        ({"project": PROJECT, "argv": ["true"], "workdir": "/etc"}, {}),
        ({"project": PROJECT, "argv": ["true"]}, {"Idempotency-Key": "k" * 129}),
    ],
)
def test_the_fast_route_answers_as_the_route_does(
    hub: tuple[Hub, Principal, str], body: dict[str, object], headers: dict[str, str]
) -> None:
    h, _, token = hub
    answers = []
    for fast in (True, False):
        app = create_app(h, manage=False, fast_routes=fast)
        before = _job_count(h)
        r = _post(app, token, json.dumps(body), **headers)
        stored = _job_count(h) - before
        doc = r.json()
        if r.status_code in (200, 201):
            doc = {k: v for k, v in doc.items() if k not in ("id", "submit_s", "workdir", "stdout_path", "stderr_path")}
            assert r.headers["location"] == f"/api/v1/jobs/{r.json()['id']}"
        answers.append((r.status_code, r.headers["content-type"], doc, stored))
    assert answers[0] == answers[1] or (
        headers.get("Idempotency-Key") == "same" and answers[0][0] == 201 and answers[1][0] == 200
    )  # the second with the same key is the first job's replay
    if answers[0][0] >= 400:
        assert answers[0][3] == 0  # nothing stored on bad input


# -- the store ---------------------------------------------------------------------------------------------------
def test_a_write_begins_immediate_and_a_busy_database_is_sqlalchemys_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "s.db"
    store = open_store(sqlite_url(path))
    other = sqlite3.connect(path, isolation_level=None, timeout=0.05)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with store.read() as conn:  # a read begins deferred: it does not wait for the writer
            assert tenancy_repo.get_user(conn, "nobody") is None
        with pytest.raises(OperationalError, match="database is locked"), store.write():
            pass
        other.execute("ROLLBACK")
        with store.write() as conn:  # the write lock is taken at BEGIN, before anything is written
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
            tenancy_repo.create_org(conn, "kaznu", "KZ", 0.0)
        with store.read() as conn:
            assert tenancy_repo.get_org(conn, "kaznu") is not None
    finally:
        other.close()
        store.close()


@pytest.mark.parametrize(
    "arg",
    ["python", "/usr/bin/python3", "./train.py", "train.py/", "a/.", "a/./", "/", "", ".", "..", "a/..", "//x",
     "///x//y//", "a//b", " spaced name ", "ω/λ", "./", "x/./."],
)  # fmt: skip
def test_a_jobs_default_name_is_its_commands_path_name(arg: str) -> None:
    assert path_name(arg) == Path(arg).name


def test_a_revoked_token_is_refused_at_once_though_it_was_cached(hub: tuple[Hub, Principal, str]) -> None:
    h, _, token = hub
    app = create_app(h, manage=False)
    body = json.dumps({"project": PROJECT, "argv": ["true"]})
    assert _post(app, token, body).status_code == 201  # the token is now in the authenticator's cache
    prefix = tenancy_repo.token_prefix(token)

    async def revoke() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            r = await client.delete(f"/api/v1/tokens/{prefix}", headers={"Authorization": f"Bearer {token}"})
            return r.status_code

    assert asyncio.run(revoke()) == 204
    before = _job_count(h)
    refused = _post(app, token, body)
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    assert _job_count(h) == before


@pytest.mark.parametrize("failing", ["authentication", "fast route"])
def test_a_failure_in_the_edges_own_work_is_a_logged_500_problem(
    hub: tuple[Hub, Principal, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, failing: str
) -> None:
    """The edge runs before FastAPI's error handling: its own failures still answer as the app's do."""
    h, _, token = hub
    app = create_app(h, manage=False)

    def broken(*_: object) -> None:
        raise RuntimeError("store unreachable")

    if failing == "authentication":
        monkeypatch.setattr(h.auth, "verify", broken)
    else:
        monkeypatch.setattr(jobs, "submit", broken)
    r = _post(app, token, json.dumps({"project": PROJECT, "argv": ["true"]}))
    assert (r.status_code, r.headers["content-type"]) == (500, "application/problem+json")
    assert r.json()["detail"] == "the hub failed to handle this request; see its log"
    assert "store unreachable" in caplog.text
    assert _job_count(h) == 0
