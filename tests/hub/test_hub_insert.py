"""The one insert path of a new job (``store.jobs.insert_job`` over ``DriverInsert``): the row, its first
event and the loop's request as SQLAlchemy would write them, and a duplicate key reported as SQLAlchemy's
``IntegrityError`` (what the API's idempotent replay relies on)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from steppe.store import Store, open_store, tenancy
from steppe.store import jobs as job_repo
from steppe.store.db import sqlite_url

pytestmark = pytest.mark.filterwarnings("error")


def alice_store(tmp_path: Path) -> tuple[Store, int, int]:
    """A new SQLite store with org kaznu, its project nlp and its member alice: (store, project, user)."""
    store = open_store(sqlite_url(tmp_path / "s.db"))
    with store.write() as conn:
        org = tenancy.create_org(conn, "kaznu", "KZ", 0.0)
        pid = tenancy.create_project(conn, org, "nlp", 0.0)
        uid = tenancy.create_user(conn, "alice", org, "member", 0.0)
    return store, pid, uid


def test_insert_job_writes_the_row_its_event_and_its_request(tmp_path: Path) -> None:
    store, pid, uid = alice_store(tmp_path)
    values = {
        "project_id": pid, "user_id": uid, "name": "train", "argv": ["python", "-c", "print('ą')"], "script": None,
        "workdir": "/srv/%j", "env": {"A": "1", "Ω": "x"}, "gpus": 2, "gpu_type": "H100", "walltime_s": 60.0,
        "qos": "normal", "submit_s": 123.5, "stdout_path": "/srv/%j/o", "stderr_path": "/srv/%j/e",
        "idempotency_key": "k", "request_sha256": "ab" * 32,
    }  # fmt: skip
    with store.write() as conn:
        first = job_repo.insert_job(conn, values, "alice")
        second = job_repo.insert_job(conn, {**values, "idempotency_key": None, "workload": "inference"}, "alice")
    assert second == first + 1
    with store.read() as conn:
        row = job_repo.get_job(conn, first)
        requests = job_repo.pending_requests(conn)
        events = job_repo.events_of(conn, first)
    assert row is not None
    assert (row.argv, row.env, row.gpus, row.walltime_s, row.state, row.reason, row.executed_s) == (
        ["python", "-c", "print('ą')"], {"A": "1", "Ω": "x"}, 2, 60.0, "PENDING", "Priority", 0.0,
    )  # fmt: skip
    assert row.workload == "training"  # the column's default when a caller gives none
    assert [(r.job_id, r.kind, r.actor) for r in requests] == [(first, "submit", "alice"), (second, "submit", "alice")]
    assert [(e.state, e.reason, e.t_s) for e in events] == [("PENDING", "submitted", 123.5)]
    with pytest.raises(IntegrityError), store.write() as conn:
        job_repo.insert_job(conn, values, "alice")  # the same user and idempotency key again
    with store.read() as conn:
        assert job_repo.list_jobs(conn)[1] == 2  # the failed transaction left nothing behind
    store.close()


def test_inbox_statements_take_any_number_of_ids(tmp_path: Path) -> None:
    store, pid, uid = alice_store(tmp_path)
    with store.write() as conn:
        values = {
            "project_id": pid, "user_id": uid, "name": "j", "argv": ["true"], "script": None, "workdir": "/w",
            "env": {}, "gpus": 1, "gpu_type": None, "walltime_s": 60.0, "qos": "normal", "submit_s": 0.0,
            "stdout_path": "/o", "stderr_path": "/e",
        }  # fmt: skip
        ids = [job_repo.insert_job(conn, values, "alice") for _ in range(5)]
    with store.read() as conn:
        assert list(job_repo.jobs_by_id(conn, ids[:1])) == ids[:1]
        assert sorted(job_repo.jobs_by_id(conn, ids)) == ids
        assert job_repo.jobs_by_id(conn, []) == {}
        requests = job_repo.pending_requests(conn)
    assert [r.job_id for r in requests] == ids
    with store.write() as conn:
        job_repo.delete_requests(conn, [r.id for r in requests[:2]])
        job_repo.delete_requests(conn, [])
    with store.read() as conn:
        assert [r.job_id for r in job_repo.pending_requests(conn)] == ids[2:]
    store.close()
