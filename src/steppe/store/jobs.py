"""Repositories for jobs, their event history and the loop's request inbox.

The API inserts a job, its first event (``PENDING``, "submitted") and a ``submit`` request in
one transaction; cancels are ``cancel`` requests. Only the control loop changes a job's state,
and it writes each change as an update of the job row plus an event row (``apply_changes``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, delete, func, select, update

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


_INSERT_JOB = jobs.insert()
_INSERT_EVENT = job_events.insert()
_INSERT_REQUEST = job_requests.insert()
NEW_JOB = {"state": "PENDING", "reason": "Priority", "executed_s": 0.0}


def insert_job(conn: Connection, values: dict[str, Any], actor: str) -> int:
    """Insert a new pending job with its first event and a submit request; returns its id.

    The statements are built once and take their values as parameters: this is the hub's
    hottest write, and building a statement costs more than running it.
    """
    now = values["submit_s"]
    key = conn.execute(_INSERT_JOB, {**NEW_JOB, **values}).inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no id for a new job")
    job_id = int(key[0])
    conn.execute(_INSERT_EVENT, {"job_id": job_id, "t_s": now, "state": "PENDING", "reason": "submitted"})
    conn.execute(_INSERT_REQUEST, {"job_id": job_id, "kind": "submit", "t_s": now, "actor": actor})
    return job_id


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


def jobs_by_id(conn: Connection, ids: Iterable[int]) -> dict[int, RowMapping]:
    wanted = list(ids)
    if not wanted:
        return {}
    return {r.id: r for r in conn.execute(_view().where(jobs.c.id.in_(wanted))).mappings()}


def count_events_by_state(conn: Connection) -> dict[str, int]:
    """How many times jobs entered each state, over the hub's whole history."""
    stmt = select(job_events.c.state, func.count()).group_by(job_events.c.state)
    return {state: int(n) for state, n in conn.execute(stmt)}


# -- the loop's inbox ------------------------------------------------------------------------------
def add_request(conn: Connection, job_id: int, kind: str, actor: str, now: float) -> None:
    conn.execute(_INSERT_REQUEST, {"job_id": job_id, "kind": kind, "t_s": now, "actor": actor})


def pending_requests(conn: Connection) -> list[RowMapping]:
    return list(conn.execute(select(job_requests).order_by(job_requests.c.id)).mappings())


def delete_requests(conn: Connection, ids: Sequence[int]) -> None:
    if ids:
        conn.execute(delete(job_requests).where(job_requests.c.id.in_(list(ids))))


def delete_submit_requests(conn: Connection) -> None:
    conn.execute(delete(job_requests).where(job_requests.c.kind == "submit"))


# -- the loop's writes ------------------------------------------------------------------------------
def apply_changes(conn: Connection, updates: dict[int, dict[str, Any]], events: list[dict[str, Any]]) -> None:
    """Update job rows (``{job id: {column: value}}``) and append events, in the caller's transaction.

    Updates with the same set of columns go in one ``executemany``.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for job_id, cols in updates.items():
        groups[tuple(sorted(cols))].append({"_id": job_id, **{f"v_{c}": v for c, v in cols.items()}})
    for cols_key, rows in groups.items():
        stmt = update(jobs).where(jobs.c.id == bindparam("_id")).values({c: bindparam(f"v_{c}") for c in cols_key})
        conn.execute(stmt, rows)
    if events:
        conn.execute(job_events.insert(), events)
