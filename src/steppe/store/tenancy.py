"""Repositories for organisations (tenants), projects, users, API tokens and allocations.

Tokens look like ``stp_<prefix>_<secret>``: the prefix (8 hex digits) finds the row, the
SHA-256 of the whole token is compared in constant time, and the token itself is never
stored, so a copy of the database gives no working credentials.

>>> token, prefix, digest = new_token()
>>> token.startswith("stp_" + prefix + "_"), len(digest)
(True, 64)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import Connection, RowMapping, func, select, update

from steppe.store.schema import allocations, api_tokens, jobs, organisations, projects, usage_records, users


def new_token() -> tuple[str, str, str]:
    """A fresh token, its lookup prefix and its SHA-256 digest (hex)."""
    prefix = secrets.token_hex(4)
    token = f"stp_{prefix}_{secrets.token_urlsafe(32)}"
    return token, prefix, hashlib.sha256(token.encode()).hexdigest()


def token_prefix(token: str) -> str | None:
    """The lookup prefix of a well-formed token, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "stp" or len(parts[1]) != 8:
        return None
    return parts[1]


def _insert(conn: Connection, stmt: Any) -> int:
    """Run an insert and return the new row's id (portable across SQLite and PostgreSQL)."""
    key = conn.execute(stmt).inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no id for a new row")
    return int(key[0])


# -- organisations and projects ----------------------------------------------------------------
def create_org(conn: Connection, name: str, country: str, now: float) -> int:
    return _insert(conn, organisations.insert().values(name=name, country=country, created_s=now))


def get_org(conn: Connection, name: str) -> RowMapping | None:
    return conn.execute(select(organisations).where(organisations.c.name == name)).mappings().first()


def set_org_share(conn: Connection, org_id: int, weight: float | None, gpu_quota: int | None) -> None:
    """Set an organisation's fair-share weight and GPU quota (None: as the cluster file says)."""
    conn.execute(
        update(organisations).where(organisations.c.id == org_id).values(fairshare_weight=weight, gpu_quota=gpu_quota)
    )


def org_shares(conn: Connection) -> list[RowMapping]:
    """Organisations with a stored weight or quota: ``name, fairshare_weight, gpu_quota``."""
    stmt = select(organisations.c.name, organisations.c.fairshare_weight, organisations.c.gpu_quota).where(
        organisations.c.fairshare_weight.is_not(None) | organisations.c.gpu_quota.is_not(None)
    )
    return list(conn.execute(stmt).mappings())


def list_orgs(conn: Connection, org_id: int | None = None) -> list[RowMapping]:
    stmt = select(organisations).order_by(organisations.c.name)
    if org_id is not None:
        stmt = stmt.where(organisations.c.id == org_id)
    return list(conn.execute(stmt).mappings())


_PROJECT_COLS = (
    projects.c.id,
    projects.c.name,
    projects.c.org_id,
    projects.c.created_s,
    organisations.c.name.label("org"),
)


def create_project(conn: Connection, org_id: int, name: str, now: float) -> int:
    return _insert(conn, projects.insert().values(org_id=org_id, name=name, created_s=now))


def get_project(conn: Connection, org: str, name: str) -> RowMapping | None:
    stmt = (
        select(*_PROJECT_COLS)
        .join(organisations, organisations.c.id == projects.c.org_id)
        .where(organisations.c.name == org, projects.c.name == name)
    )
    return conn.execute(stmt).mappings().first()


def list_projects(conn: Connection, org_id: int | None = None) -> list[RowMapping]:
    stmt = select(*_PROJECT_COLS).join(organisations, organisations.c.id == projects.c.org_id)
    if org_id is not None:
        stmt = stmt.where(projects.c.org_id == org_id)
    return list(conn.execute(stmt.order_by(organisations.c.name, projects.c.name)).mappings())


def project_keys(conn: Connection) -> dict[int, str]:
    """``{project id: "org/project"}`` for every project."""
    return {r.id: f"{r.org}/{r.name}" for r in list_projects(conn)}


# -- users and tokens --------------------------------------------------------------------------
_USER_COLS = (
    users.c.id,
    users.c.name,
    users.c.org_id,
    users.c.role,
    users.c.created_s,
    users.c.disabled_s,
    organisations.c.name.label("org"),
)


def create_user(conn: Connection, name: str, org_id: int | None, role: str, now: float) -> int:
    return _insert(conn, users.insert().values(name=name, org_id=org_id, role=role, created_s=now))


def get_user(conn: Connection, name: str) -> RowMapping | None:
    stmt = select(*_USER_COLS).outerjoin(organisations, organisations.c.id == users.c.org_id)
    return conn.execute(stmt.where(users.c.name == name)).mappings().first()


def list_users(conn: Connection, org_id: int | None = None) -> list[RowMapping]:
    stmt = select(*_USER_COLS).outerjoin(organisations, organisations.c.id == users.c.org_id)
    if org_id is not None:
        stmt = stmt.where(users.c.org_id == org_id)
    return list(conn.execute(stmt.order_by(users.c.name)).mappings())


def disable_user(conn: Connection, user_id: int, now: float) -> None:
    """Disable a user and revoke every token they hold (their jobs and history stay)."""
    conn.execute(update(users).where(users.c.id == user_id).values(disabled_s=now))
    conn.execute(
        update(api_tokens)
        .where(api_tokens.c.user_id == user_id, api_tokens.c.revoked_s.is_(None))
        .values(revoked_s=now)
    )


def create_token(conn: Connection, user_id: int, name: str, now: float, expires_s: float | None) -> tuple[str, str]:
    """Create a token for a user; returns ``(token, prefix)``. The token is shown once."""
    token, prefix, digest = new_token()
    conn.execute(
        api_tokens.insert().values(
            prefix=prefix, secret_sha256=digest, user_id=user_id, name=name, created_s=now, expires_s=expires_s
        )
    )
    return token, prefix


def authenticate(conn: Connection, token: str, now: float) -> RowMapping | None:
    """The user a token belongs to (``id, name, org_id, org, role``), or None if it is not valid now."""
    prefix = token_prefix(token)
    if prefix is None:
        return None
    stmt = (
        select(api_tokens.c.secret_sha256, api_tokens.c.expires_s, api_tokens.c.revoked_s, *_USER_COLS)
        .join(users, users.c.id == api_tokens.c.user_id)
        .outerjoin(organisations, organisations.c.id == users.c.org_id)
        .where(api_tokens.c.prefix == prefix)
    )
    row = conn.execute(stmt).mappings().first()
    if row is None or row.revoked_s is not None or row.disabled_s is not None:
        return None
    if row.expires_s is not None and row.expires_s <= now:
        return None
    if not hmac.compare_digest(row.secret_sha256, hashlib.sha256(token.encode()).hexdigest()):
        return None
    return row


def list_tokens(conn: Connection, user_id: int) -> list[RowMapping]:
    stmt = select(
        api_tokens.c.prefix, api_tokens.c.name, api_tokens.c.created_s, api_tokens.c.expires_s, api_tokens.c.revoked_s
    ).where(api_tokens.c.user_id == user_id)
    return list(conn.execute(stmt.order_by(api_tokens.c.id)).mappings())


def get_token(conn: Connection, prefix: str) -> RowMapping | None:
    stmt = (
        select(api_tokens.c.prefix, api_tokens.c.user_id, api_tokens.c.revoked_s, users.c.org_id)
        .join(users, users.c.id == api_tokens.c.user_id)
        .where(api_tokens.c.prefix == prefix)
    )
    return conn.execute(stmt).mappings().first()


def revoke_token(conn: Connection, prefix: str, now: float) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.prefix == prefix).values(revoked_s=now))


def revoke_tokens_named(conn: Connection, user_id: int, name: str, now: float) -> list[str]:
    """Revoke a user's live tokens called ``name``; returns their prefixes."""
    live = (api_tokens.c.user_id == user_id) & (api_tokens.c.name == name) & api_tokens.c.revoked_s.is_(None)
    prefixes = [r.prefix for r in conn.execute(select(api_tokens.c.prefix).where(live))]
    if prefixes:
        conn.execute(update(api_tokens).where(live).values(revoked_s=now))
    return prefixes


def has_hub_admin(conn: Connection) -> bool:
    return conn.execute(select(users.c.id).where(users.c.role == "hub-admin").limit(1)).first() is not None


# -- allocations and usage -----------------------------------------------------------------------
_ALLOC_COLS = (
    allocations.c.id,
    allocations.c.project_id,
    allocations.c.period,
    allocations.c.start_s,
    allocations.c.end_s,
    allocations.c.gpu_hours,
    allocations.c.max_gpus,
    allocations.c.gpu_types,
    allocations.c.created_s,
    projects.c.name.label("project"),
    organisations.c.name.label("org"),
)


def create_allocation(conn: Connection, values: dict[str, Any]) -> int:
    return _insert(conn, allocations.insert().values(**values))


def list_allocations(conn: Connection, *, project_id: int | None = None, org_id: int | None = None) -> list[RowMapping]:
    stmt = (
        select(*_ALLOC_COLS)
        .join(projects, projects.c.id == allocations.c.project_id)
        .join(organisations, organisations.c.id == projects.c.org_id)
    )
    if project_id is not None:
        stmt = stmt.where(allocations.c.project_id == project_id)
    if org_id is not None:
        stmt = stmt.where(projects.c.org_id == org_id)
    return list(conn.execute(stmt.order_by(organisations.c.name, projects.c.name, allocations.c.start_s)).mappings())


def usage_by_month(conn: Connection, project_id: int | None = None) -> list[RowMapping]:
    """Metered GPU-seconds and energy (IT and facility kWh, kg CO2e, KZT) per ``(project_id, period,
    gpu_type)`` over all jobs (of one project if given)."""
    c = usage_records.c
    stmt = select(
        c.project_id,
        c.period,
        c.gpu_type,
        func.sum(c.gpu_seconds).label("gpu_seconds"),
        func.sum(c.it_kwh).label("it_kwh"),
        func.sum(c.facility_kwh).label("facility_kwh"),
        func.sum(c.carbon_kg).label("carbon_kg"),
        func.sum(c.cost_kzt).label("cost_kzt"),
    )
    if project_id is not None:
        stmt = stmt.where(usage_records.c.project_id == project_id)
    stmt = stmt.group_by(usage_records.c.project_id, usage_records.c.period, usage_records.c.gpu_type)
    return list(conn.execute(stmt).mappings())


def usage_by_user(conn: Connection, project_id: int, months: set[str] | None = None) -> list[RowMapping]:
    """Metered GPU-seconds and the number of jobs per user of one project (in ``months`` if given), by user name."""
    c = usage_records.c
    stmt = (
        select(
            users.c.name.label("user"),
            func.count(func.distinct(c.job_id)).label("jobs"),
            func.sum(c.gpu_seconds).label("gpu_seconds"),
        )
        .join(jobs, jobs.c.id == c.job_id)
        .join(users, users.c.id == jobs.c.user_id)
        .where(c.project_id == project_id)
    )
    if months is not None:
        stmt = stmt.where(c.period.in_(sorted(months)))
    return list(conn.execute(stmt.group_by(users.c.name).order_by(users.c.name)).mappings())
