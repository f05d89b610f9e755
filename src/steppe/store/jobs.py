"""Repositories for jobs, their event history and the loop's request inbox.

The API inserts a job, its first event (``PENDING``, "submitted") and a ``submit`` request in
one transaction; cancels are ``cancel`` requests. Those three inserts are the hub's hottest
writes, so they run through ``DriverInsert``: the statement is compiled once per dialect and set
of columns, and executed on the driver's cursor, in the caller's transaction. Going through
SQLAlchemy's ``execute`` costs about ten times the driver's own work per statement (execution
context, parameter construction, result set-up). Only the control loop changes a job's state,
and it writes each change as an update of the job row plus an event row (``apply_changes``).

The loop's reads and deletes of its inbox run every step; their statements are built once, at
import, with an expanding ``IN`` parameter (``jobs_by_id``, ``delete_requests``), so a step
pays only for SQLAlchemy's cached execution, not for building and compiling a statement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, Table, bindparam, delete, func, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from steppe.store.schema import job_events, job_requests, jobs, organisations, projects, users

JOB_VIEW_COLS = (
    *jobs.c,
    projects.c.name.label("project_name"),
    organisations.c.name.label("org"),
    organisations.c.id.label("org_id"),
    users.c.name.label("user"),
)


def _view() -> Any:
    return (
        select(*JOB_VIEW_COLS)
        .join(projects, projects.c.id == jobs.c.project_id)
        .join(organisations, organisations.c.id == projects.c.org_id)
        .join(users, users.c.id == jobs.c.user_id)
    )


class DriverInsert:
    """``INSERT INTO table (columns) VALUES (...)`` run on the driver's cursor; returns the new row's id.

    For each dialect and tuple of column names (the keys of ``values``, in their order) the
    statement is compiled once, with its columns' bind processors (JSON encoding and the like)
    and, where the database supports it, ``RETURNING id`` (PostgreSQL; SQLite reports
    ``lastrowid``). Example: ``DriverInsert(job_events)(conn, {"job_id": 7, "t_s": 0.0, "state":
    "PENDING", "reason": "submitted"})`` -> the event's id.
    """

    def __init__(self, table: Table) -> None:
        self.table = table
        self._compiled: dict[tuple[str, tuple[str, ...]], tuple[str, tuple[tuple[str, Any], ...], bool, bool]] = {}

    def _compile(self, dialect: Dialect, keys: tuple[str, ...]) -> tuple[str, tuple[tuple[str, Any], ...], bool, bool]:
        cols = self.table.c
        stmt = self.table.insert().values({k: bindparam(k, type_=cols[k].type) for k in keys})
        returning = dialect.name != "sqlite" and bool(dialect.insert_returning)
        if returning:
            stmt = stmt.returning(cols.id)
        compiled = stmt.compile(dialect=dialect)
        order = tuple(compiled.positiontup or ()) if compiled.positional else keys
        procs = tuple((k, cols[k].type.dialect_impl(dialect).bind_processor(dialect)) for k in order)
        return compiled.string, procs, compiled.positional, returning

    def __call__(self, conn: Connection, values: dict[str, Any]) -> int:
        key = (conn.dialect.name, tuple(values))
        hit = self._compiled.get(key)
        if hit is None:
            hit = self._compiled[key] = self._compile(conn.dialect, key[1])
        sql, procs, positional, returning = hit
        if positional:
            params: Any = [values[k] if p is None else p(values[k]) for k, p in procs]
        else:
            params = {k: values[k] if p is None else p(values[k]) for k, p in procs}
        cursor = conn.connection.cursor()
        dbapi_error = conn.dialect.loaded_dbapi.Error
        try:
            cursor.execute(sql, params)
            row = cursor.fetchone() if returning else None
            new_id = row[0] if row is not None else None if returning else cursor.lastrowid
        except dbapi_error as exc:  # as SQLAlchemy reports it (IntegrityError for a duplicate key, ...)
            raise DBAPIError.instance(sql, params, exc, dbapi_error, dialect=conn.dialect) from exc
        finally:
            cursor.close()
        if new_id is None:
            raise RuntimeError(f"the database returned no id for a new row of {self.table.name}")
        return int(new_id)


_INSERT_JOB = DriverInsert(jobs)
_INSERT_EVENT = DriverInsert(job_events)
_INSERT_REQUEST = DriverInsert(job_requests)
NEW_JOB = {"state": "PENDING", "reason": "Priority", "executed_s": 0.0}


def insert_job(conn: Connection, values: dict[str, Any], actor: str) -> int:
    """Insert a new pending job with its first event and a submit request; returns its id.

    The one insert path of a new job (the API, the tests' harness and the bench use it).
    """
    now = values["submit_s"]
    job_id = _INSERT_JOB(conn, {**NEW_JOB, **values})
    _INSERT_EVENT(conn, {"job_id": job_id, "t_s": now, "state": "PENDING", "reason": "submitted"})
    _INSERT_REQUEST(conn, {"job_id": job_id, "kind": "submit", "t_s": now, "actor": actor})
    return job_id


def set_array_job(conn: Connection, job_id: int, array_job_id: int) -> None:
    """Name the array a task belongs to (its first task's id, known once that one is inserted)."""
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(array_job_id=array_job_id))


def find_by_idempotency_key(conn: Connection, user_id: int, key: str) -> RowMapping | None:
    stmt = select(jobs.c.id, jobs.c.request_sha256).where(jobs.c.user_id == user_id, jobs.c.idempotency_key == key)
    return conn.execute(stmt).mappings().first()


def get_job(conn: Connection, job_id: int) -> RowMapping | None:
    return conn.execute(_view().where(jobs.c.id == job_id)).mappings().first()


def list_jobs(
    conn: Connection,
    *,
    org_id: int | None = None,
    project_id: int | None = None,
    user_id: int | None = None,
    states: Sequence[str] = (),
    ids: Sequence[int] | None = None,
    since_s: float | None = None,
    until_s: float | None = None,
    limit: int = 100,
    offset: int = 0,
    newest_first: bool = False,
) -> tuple[list[RowMapping], int]:
    """Jobs matching every given filter, one page of them, and how many match in all."""
    conds: list[Any] = []
    if org_id is not None:
        conds.append(projects.c.org_id == org_id)
    if project_id is not None:
        conds.append(jobs.c.project_id == project_id)
    if user_id is not None:
        conds.append(jobs.c.user_id == user_id)
    if states:
        conds.append(jobs.c.state.in_(list(states)))
    if ids is not None:
        conds.append(jobs.c.id.in_(list(ids)))
    if since_s is not None:
        conds.append(jobs.c.submit_s >= since_s)
    if until_s is not None:
        conds.append(jobs.c.submit_s < until_s)
    total_stmt = select(func.count()).select_from(jobs.join(projects, projects.c.id == jobs.c.project_id))
    total = int(conn.execute(total_stmt.where(*conds)).scalar_one())
    order = jobs.c.id.desc() if newest_first else jobs.c.id
    rows = conn.execute(_view().where(*conds).order_by(order).limit(limit).offset(offset)).mappings()
    return list(rows), total


def events_of(conn: Connection, job_id: int) -> list[RowMapping]:
    stmt = select(job_events.c.t_s, job_events.c.state, job_events.c.reason).where(job_events.c.job_id == job_id)
    return list(conn.execute(stmt.order_by(job_events.c.id)).mappings())


def active_jobs(conn: Connection) -> list[RowMapping]:
    """Pending and running jobs, in submission order (what the loop restores on start)."""
    stmt = _view().where(jobs.c.state.in_(["PENDING", "RUNNING"])).order_by(jobs.c.submit_s, jobs.c.id)
    return list(conn.execute(stmt).mappings())


_BY_IDS = _view().where(jobs.c.id.in_(bindparam("ids", expanding=True)))


def jobs_by_id(conn: Connection, ids: Iterable[int]) -> dict[int, RowMapping]:
    wanted = list(ids)
    if not wanted:
        return {}
    return {r.id: r for r in conn.execute(_BY_IDS, {"ids": wanted}).mappings()}


def count_events_by_state(conn: Connection) -> dict[str, int]:
    """How many times jobs entered each state, over the hub's whole history."""
    stmt = select(job_events.c.state, func.count()).group_by(job_events.c.state)
    return {state: int(n) for state, n in conn.execute(stmt)}


# -- the loop's inbox ------------------------------------------------------------------------------
def add_request(conn: Connection, job_id: int, kind: str, actor: str, now: float) -> None:
    _INSERT_REQUEST(conn, {"job_id": job_id, "kind": kind, "t_s": now, "actor": actor})


_PENDING_REQUESTS = select(job_requests).order_by(job_requests.c.id)
_DELETE_REQUESTS = delete(job_requests).where(job_requests.c.id.in_(bindparam("ids", expanding=True)))


def pending_requests(conn: Connection) -> list[RowMapping]:
    return list(conn.execute(_PENDING_REQUESTS).mappings())


def delete_requests(conn: Connection, ids: Sequence[int]) -> None:
    if ids:
        conn.execute(_DELETE_REQUESTS, {"ids": list(ids)})


def delete_submit_requests(conn: Connection) -> None:
    conn.execute(delete(job_requests).where(job_requests.c.kind == "submit"))


# -- the loop's writes ------------------------------------------------------------------------------
_UPDATES: dict[tuple[str, ...], Any] = {}  # the update statement of each set of columns, built on first use


def apply_changes(conn: Connection, updates: dict[int, dict[str, Any]], events: list[dict[str, Any]]) -> None:
    """Update job rows (``{job id: {column: value}}``) and append events, in the caller's transaction.

    Updates with the same set of columns go in one ``executemany``.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for job_id, cols in updates.items():
        groups[tuple(sorted(cols))].append({"_id": job_id, **{f"v_{c}": v for c, v in cols.items()}})
    for cols_key, rows in groups.items():
        stmt = _UPDATES.get(cols_key)
        if stmt is None:  # a few sets of columns recur every step (a reason; a start; an end): built once each
            stmt = _UPDATES[cols_key] = (
                update(jobs).where(jobs.c.id == bindparam("_id")).values({c: bindparam(f"v_{c}") for c in cols_key})
            )
        conn.execute(stmt, rows)
    if events:
        conn.execute(job_events.insert(), events)
