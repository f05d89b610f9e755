"""The audit log in the database: ``SqlAuditSink`` implements ``steppe.governance.audit.AuditSink``.

Entries are appended in the caller's transaction, so an entry is committed together with the
change it records (or not at all). Appends are serialised: SQLite transactions that write start
with ``BEGIN IMMEDIATE`` (one writer at a time), and on PostgreSQL the sink takes a
transaction-scoped advisory lock before reading the last entry; ``seq`` is unique besides.

``entries()`` returns rows in physical insertion order (the ``id`` column), not sorted by
``seq``: then a deleted row shows as a gap in ``seq``, rows whose ``seq`` values were swapped as
a ``seq`` out of sequence, and an edited row as a hash mismatch (``steppe.governance.audit.verify``).
Each entry is also logged (``steppe.audit``) as a structured line (``event``: its action, with
actor, subject, reason and details; ``steppe.api.logs``), so the server log shows every admin
action. ``details`` is stored as the canonical JSON text that was hashed; text that no longer parses is
handed to ``verify`` as ``{"unparseable": text}``, which cannot match its hash.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select, text

from steppe.governance.audit import AuditEntry, append, canonical
from steppe.store.schema import audit_log

ADVISORY_LOCK_KEY = 864_201
log = logging.getLogger("steppe.audit")


def _entry(row: Any) -> AuditEntry:
    try:
        details = json.loads(row.details)
    except ValueError:
        details = {"unparseable": row.details}
    if not isinstance(details, dict):
        details = {"unparseable": row.details}
    return AuditEntry(row.seq, row.time_s, row.actor, row.action, row.subject, row.reason, details, row.prev_hash,
                      row.hash)


class SqlAuditSink:
    """An ``AuditSink`` over the ``audit_log`` table, bound to one connection (and its transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._locked = False

    def _lock(self) -> None:
        if not self._locked and self.conn.dialect.name == "postgresql":
            self.conn.execute(text(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})"))
        self._locked = True

    def append(self, entry: AuditEntry) -> None:
        self._lock()
        self.conn.execute(
            audit_log.insert().values(
                seq=entry.seq, time_s=entry.time_s, actor=entry.actor, action=entry.action, subject=entry.subject,
                reason=entry.reason, details=canonical(entry.details).decode("utf-8"), prev_hash=entry.prev_hash,
                hash=entry.hash,
            )
        )  # fmt: skip

    def entries(self) -> Sequence[AuditEntry]:
        return [_entry(r) for r in self.conn.execute(select(audit_log).order_by(audit_log.c.id))]

    def last(self) -> AuditEntry | None:
        self._lock()
        row = self.conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1)).first()
        return _entry(row) if row is not None else None


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    subject: str,
    time_s: float,
    reason: str = "",
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in ``conn``'s transaction (raises ``AuditError`` e.g. for a missing reason), and
    log it as a structured line (``event`` = its action, with actor, subject, reason and details)."""
    entry = append(SqlAuditSink(conn), actor=actor, action=action, subject=subject, time_s=time_s, reason=reason,
                   details=details)
    log.info("%s %s by %s%s", action, subject, actor, f": {reason}" if reason else "",
             extra={"fields": {"event": action, "actor": actor, "subject": subject, "reason": reason,
                               "details": dict(details or {}), "seq": entry.seq}})  # fmt: skip
    return entry


def entries(conn: Connection, since_seq: int = 0, limit: int | None = None) -> list[AuditEntry]:
    """Entries in insertion order, optionally from ``since_seq`` on (exclusive) and at most ``limit``."""
    stmt = select(audit_log).where(audit_log.c.seq > since_seq).order_by(audit_log.c.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_entry(r) for r in conn.execute(stmt)]
