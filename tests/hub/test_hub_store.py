"""The store against SQLite and a real PostgreSQL server, and the control loop on each."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from steppe.control.harness import LoopHarness
from steppe.control.loop import HubLoop
from steppe.control.machine import Fleet
from steppe.core.cluster import Cluster
from steppe.executors.base import ExitInfo
from steppe.executors.mock import MockExecutor
from steppe.store import Store, open_store, tenancy
from steppe.store import jobs as job_repo
from steppe.store.db import GroupCommit, sqlite_url
from steppe.store.schema import api_tokens, jobs, metadata


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = open_store(sqlite_url(tmp_path / "t.db"))
    else:
        s = open_store(request.getfixturevalue("postgres_url"))
        with s.write() as conn:  # each test starts from an empty schema
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
    yield s
    s.close()


def _tenant(store: Store) -> tuple[int, int, int]:
    now = time.time()
    with store.write() as conn:
        org = tenancy.create_org(conn, "kaznu", "KZ", now)
        project = tenancy.create_project(conn, org, "nlp", now)
        user = tenancy.create_user(conn, "alice", org, "member", now)
    return org, project, user


def _job(project: int, user: int, **kw: Any) -> dict[str, Any]:
    values = {"project_id": project, "user_id": user, "name": "j", "argv": ["true"], "script": None, "workdir": "/",
              "env": {}, "gpus": 1, "gpu_type": None, "walltime_s": 60.0, "qos": "normal", "submit_s": time.time(),
              "stdout_path": "/dev/null", "stderr_path": "/dev/null"}  # fmt: skip
    return {**values, **kw}


def _insert_keyed(project: int, user: int, key: str, conn: Any) -> int:
    return job_repo.insert_job(conn, _job(project, user, idempotency_key=key), "alice")


def test_migrations_match_the_tables(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0007"
    open_store(str(store.engine.url.render_as_string(hide_password=False))).close()  # re-opening is a no-op


def test_tokens_are_hashed_at_rest(store: Store) -> None:
    _, _, user = _tenant(store)
    now = time.time()
    with store.write() as conn:
        token, prefix = tenancy.create_token(conn, user, "laptop", now, expires_s=now + 60)
        stored = conn.execute(select(api_tokens.c.secret_sha256)).scalar_one()
    assert stored == hashlib.sha256(token.encode()).hexdigest() and token not in stored
    with store.read() as conn:
        who = tenancy.authenticate(conn, token, now)
        assert who is not None and who.name == "alice"
        assert tenancy.authenticate(conn, token + "x", now) is None
        assert tenancy.authenticate(conn, token, now + 120) is None  # expired
    with store.write() as conn:
        tenancy.revoke_token(conn, prefix, now)
    with store.read() as conn:
        assert tenancy.authenticate(conn, token, now) is None


def test_jobs_events_requests_and_filters(store: Store) -> None:
    _, project, user = _tenant(store)
    with store.write() as conn:
        ids = [job_repo.insert_job(conn, _job(project, user, gpus=g), "alice") for g in (1, 2, 4)]
    with store.write() as conn:
        job_repo.apply_changes(conn, {ids[0]: {"state": "RUNNING", "start_s": 5.0}},
                               [{"job_id": ids[0], "t_s": 5.0, "state": "RUNNING", "reason": "started"}])  # fmt: skip
    with store.read() as conn:
        assert [r.kind for r in job_repo.pending_requests(conn)] == ["submit"] * 3
        assert [e.state for e in job_repo.events_of(conn, ids[0])] == ["PENDING", "RUNNING"]
        rows, total = job_repo.list_jobs(conn, states=["PENDING"], limit=1, offset=1)
        assert total == 2 and [r.id for r in rows] == [ids[2]] and rows[0].org == "kaznu"
        assert [r.id for r in job_repo.active_jobs(conn)] == ids
        assert job_repo.count_events_by_state(conn) == {"PENDING": 3, "RUNNING": 1}


def test_idempotency_key_is_unique_per_user(store: Store) -> None:
    _, project, user = _tenant(store)
    with store.write() as conn:
        job_repo.insert_job(conn, _job(project, user, idempotency_key="k"), "alice")
    with pytest.raises(IntegrityError), store.write() as conn:
        job_repo.insert_job(conn, _job(project, user, idempotency_key="k"), "alice")
    with store.read() as conn:
        assert job_repo.list_jobs(conn)[1] == 1


def test_usage_upsert_accumulates(store: Store) -> None:
    _, project, user = _tenant(store)
    with store.write() as conn:
        job_id = job_repo.insert_job(conn, _job(project, user), "alice")
        row = {"job_id": job_id, "project_id": project, "period": "2026-01", "gpu_type": "H100",
               "gpu_seconds": 10.0, "first_s": 0.0, "last_s": 10.0}  # fmt: skip
        store.add_usage(conn, [row])
        store.add_usage(conn, [{**row, "gpu_seconds": 5.0, "first_s": 10.0, "last_s": 15.0}])
    with store.read() as conn:
        (usage,) = tenancy.usage_by_month(conn, project)
    assert (usage.period, usage.gpu_type, usage.gpu_seconds) == ("2026-01", "H100", 15.0)


def test_group_commit_isolates_a_failing_write(store: Store) -> None:
    _, project, user = _tenant(store)
    with store.write() as conn:
        job_repo.insert_job(conn, _job(project, user, idempotency_key="dup"), "alice")
    writes = GroupCommit(store)
    futures = [writes.run(partial(_insert_keyed, project, user, k)) for k in ("a", "dup", "b")]
    assert isinstance(futures[1].exception(10), IntegrityError)
    assert futures[0].result(10) > 0 and futures[2].result(10) > 0
    writes.close()


def test_group_commit_from_an_event_loop_keeps_order_and_fails_alone(store: Store) -> None:
    """``run_soon``: the functions of one turn of the loop go together, in order; a duplicate key fails alone."""
    _, project, user = _tenant(store)
    with store.write() as conn:
        job_repo.insert_job(conn, _job(project, user, idempotency_key="dup"), "alice")
    writes = GroupCommit(store)
    sizes: list[int] = []
    real_hand_over = writes._hand_over

    def hand_over(loop: asyncio.AbstractEventLoop) -> None:
        sizes.append(len(writes._gathered[loop]))
        real_hand_over(loop)

    writes._hand_over = hand_over  # type: ignore[method-assign]

    async def submit_all() -> list[Any]:
        keys = ("a", "b", "dup", "c", "d")
        futures = [writes.run_soon(partial(_insert_keyed, project, user, k)) for k in keys]
        return await asyncio.gather(*futures, return_exceptions=True)

    try:
        results = asyncio.run(submit_all())
    finally:
        writes.close()
    assert sizes == [5]  # one hand-over for the whole turn
    assert isinstance(results[2], IntegrityError)
    ids = [r for i, r in enumerate(results) if i != 2]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(ids)  # stored in the order handed over
    with store.read() as conn:
        keys = {r.id: r.idempotency_key for r in job_repo.list_jobs(conn)[0]}
    assert [keys[i] for i in ids] == ["a", "b", "c", "d"]


def test_loop_persists_every_transition(store: Store) -> None:
    _, project, user = _tenant(store)
    cluster = Cluster.uniform(1, 2, "H100")
    executor = MockExecutor()
    loop = HubLoop(store, Fleet(cluster, {0: [0, 1]}, "test"), executor)
    loop.restore()
    with store.write() as conn:
        ids = [job_repo.insert_job(conn, _job(project, user, gpus=2), "alice") for _ in range(2)]
    loop.step()
    assert executor.calls == [("start", ids[0])]
    executor.end(ids[0], 0, 0, time.time())
    loop.step()
    assert executor.calls == [("start", ids[0]), ("start", ids[1])]
    with store.read() as conn:
        first, second = job_repo.get_job(conn, ids[0]), job_repo.get_job(conn, ids[1])
        assert first is not None and second is not None
        assert (first.state, first.exit_code, second.state) == ("COMPLETED", 0, "RUNNING")
        assert [e.state for e in job_repo.events_of(conn, ids[0])] == ["PENDING", "RUNNING", "COMPLETED"]
        assert job_repo.pending_requests(conn) == []
        assert tenancy.usage_by_month(conn, project)[0].gpu_type == "H100"


def test_a_launch_that_fails_fails_only_that_job_and_frees_its_gpus(tmp_path: Path) -> None:
    h = LoopHarness(tmp_path, gpus=2)
    ids = [h.submit(gpus=1) for _ in range(3)]
    h.executor.fail_starts.add(ids[0])
    assert h.step()  # the step goes on: the second job starts beside the failed first
    assert h.executor.running.keys() == {ids[1]}
    h.step(1.0)  # the failure is taken like an exit: its GPU is free, the third job starts
    assert h.executor.running.keys() == {ids[1], ids[2]}
    assert (h.job(ids[0]).state, h.job(ids[0]).reason) == ("FAILED", "LaunchFailed")
    assert h.events(ids[0])[-1] == ("FAILED", "launch failed: refused by the mock executor")
    h.close()


def test_a_failing_step_never_leaves_a_committed_start_without_a_process(tmp_path: Path) -> None:
    h = LoopHarness(tmp_path, gpus=2)
    ids = [h.submit(gpus=2) for _ in range(2)]
    flush = h.loop.journal.flush
    calls = iter([RuntimeError("disk full")])

    def failing_flush(*args: Any) -> None:
        err = next(calls, None)
        if err is not None:
            raise err
        flush(*args)

    h.loop.journal.flush = failing_flush  # type: ignore[method-assign,assignment]
    assert not h.step()  # fails after the plan committed the first job's start
    assert h.executor.calls == []
    h.step(1.0)  # the start it never launched ends LaunchFailed, freeing both GPUs for the next job
    assert h.executor.calls == [("start", ids[1])]
    assert (h.job(ids[0]).state, h.job(ids[0]).reason) == ("FAILED", "LaunchFailed")
    h.close()


def test_recovery_requeues_adopts_and_reports_ends(tmp_path: Path) -> None:
    """After a restart: a start never launched is requeued in its place, a live job adopted, an ended
    job ends as its exit record says, and only a job with neither is lost."""
    h = LoopHarness(tmp_path, gpus=4)
    alive, ended, lost = (h.submit(gpus=1) for _ in range(3))
    h.step()
    h.executor.exits[ended] = ExitInfo(3, 0, h.clock())  # ends while the hub is down
    h.executor.running.pop(ended)
    h.executor.running.pop(lost)  # gone without a trace
    unlaunched = h.submit(gpus=1)
    waiting = h.submit(gpus=4)
    h.step(1.0)  # commits `unlaunched`'s start ...
    h.executor.launched.pop(unlaunched)  # ... but the hub dies before launching it
    h.executor.running.pop(unlaunched)
    with h.store.write() as conn:
        conn.execute(update(jobs).where(jobs.c.id == unlaunched).values(handle=None))
    h.restart()
    assert h.job(alive).state == "RUNNING"
    assert (h.job(ended).state, h.job(ended).exit_code) == ("FAILED", 3)
    assert (h.job(lost).state, h.job(lost).reason) == ("FAILED", "LostOnRestart")
    assert h.job(unlaunched).state == "PENDING" and "never launched" in h.events(unlaunched)[-1][1]
    queued = [r.job_id for r in h.loop.state.queue.ordered(h.clock())]
    assert queued == [unlaunched, waiting]
    h.step(1.0)
    assert h.job(unlaunched).state == "RUNNING" and h.job(waiting).state == "PENDING"
    h.close()


def test_a_check_that_raises_leaks_no_gpu_in_the_live_loop(tmp_path: Path) -> None:
    h = LoopHarness(tmp_path, gpus=8)
    ids = [h.submit(gpus=2) for _ in range(4)]
    residency = h.loop.governance.residency
    real, calls = residency.check, iter(range(100))

    def flaky(*args: Any) -> Any:
        if next(calls) == 2:
            raise RuntimeError("registry unavailable")
        return real(*args)

    residency.check = flaky  # type: ignore[method-assign,assignment]
    assert not h.step()  # the cycle raised after placing two jobs tentatively
    assert h.loop.state.inventory.total_free == 8 and h.executor.calls == []
    assert h.step(1.0)
    assert sorted(j for _, j in h.executor.calls) == ids  # all 8 GPUs were still there
    h.close()


def test_no_job_starts_before_it_was_submitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A submission written while a step is already under way starts at or after its submit time."""
    h = LoopHarness(tmp_path, gpus=2)
    real = job_repo.pending_requests
    made: list[int] = []

    def racing(conn: Any) -> Any:  # the API inserts a job just as the loop reads its inbox
        if not made:
            h.clock.advance(0.005)
            made.append(h.submit(gpus=1))
        return real(conn)

    monkeypatch.setattr(job_repo, "pending_requests", racing)  # the module the loop reads it through
    assert h.step()
    job = h.job(made[0])
    assert job.state == "RUNNING" and job.start_s >= job.submit_s
    h.close()


def test_migration_0004_keeps_usage_rows_written_before_it(tmp_path: Path) -> None:
    """A store at revision 0003 with a usage row: after the upgrade the row keeps its GPU-seconds and
    reads as no energy from source ``none``; new energy then adds to it."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    url = sqlite_url(tmp_path / "old.db")
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", "steppe.store:migrations")
    with engine.connect() as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        conn.execute(text("INSERT INTO organisations (name, country, created_s) VALUES ('kaznu', 'KZ', 0)"))
        conn.execute(text("INSERT INTO projects (org_id, name, created_s) VALUES (1, 'nlp', 0)"))
        conn.execute(text("INSERT INTO users (name, org_id, role, created_s) VALUES ('alice', 1, 'member', 0)"))
        job = job_repo.insert_job(conn, _job(1, 1), "alice")  # the jobs table is the same at 0003
        conn.execute(text("INSERT INTO usage_records (job_id, project_id, period, gpu_type, gpu_seconds, first_s, "
                          "last_s) VALUES (:j, 1, '2026-01', 'H100', 7200, 0, 3600)"), {"j": job})  # fmt: skip
    engine.dispose()
    store = open_store(url)  # upgrades to the head
    with store.read() as conn:
        (old,) = tenancy.usage_by_month(conn)
    assert (old.gpu_seconds, old.it_kwh, old.cost_kzt) == (7200.0, 0.0, 0.0)
    row = {"job_id": job, "project_id": 1, "period": "2026-01", "gpu_type": "H100", "gpu_seconds": 10.0,
           "it_kwh": 0.5, "facility_kwh": 0.6, "carbon_kg": 0.3, "cost_kzt": 20.0, "energy_source": "model",
           "first_s": 3600.0, "last_s": 3610.0}  # fmt: skip
    with store.write() as conn:
        store.add_usage(conn, [row])
    with store.read() as conn:
        (after,) = tenancy.usage_by_month(conn)
        source = conn.execute(text("SELECT energy_source FROM usage_records")).scalar_one()
    assert (after.gpu_seconds, after.it_kwh, after.facility_kwh) == (7210.0, 0.5, 0.6)
    assert source == "mixed"  # GPU-seconds from before the meter had energy, and after
    store.close()


def test_migration_0007_adds_drained_nodes_and_goes_back(tmp_path: Path) -> None:
    """A store at 0006 gains ``node_drains`` on open; a drain round-trips; the downgrade drops the table."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, inspect

    from steppe.store import nodes as node_repo

    url = sqlite_url(tmp_path / "old.db")
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", "steppe.store:migrations")
    with engine.connect() as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
        assert "node_drains" not in inspect(conn).get_table_names()
    engine.dispose()
    store = open_store(url)
    with store.write() as conn:
        assert node_repo.drain(conn, "node001", "bad fan", "root", 5.0) is None
        before = node_repo.drain(conn, "node001", "firmware", "ops", 9.0)  # a new reason
        assert before is not None and before.reason == "bad fan"
    with store.read() as conn:
        assert [(d.node, d.reason, d.actor, d.since_s) for d in node_repo.drained(conn)] == [
            ("node001", "firmware", "ops", 5.0)]  # fmt: skip
    with store.write() as conn:
        gone = node_repo.resume(conn, "node001")
        assert gone is not None and gone.reason == "firmware"
        assert node_repo.resume(conn, "node001") is None
    store.close()
    engine = create_engine(url)
    with engine.connect() as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
        assert "node_drains" not in inspect(conn).get_table_names()
    engine.dispose()
