"""Reading the audit log: only hub-admins and reviewers may (``Forbidden`` for anyone else).

* ``audit_entries``: entries after ``since_seq`` in stored order, at most ``limit``;
* ``audit_verify``: the hash chain checked as stored (``steppe.governance.audit.verify``); with
  an earlier head ``(seq, hash)`` a truncation after it is detected too;
* ``audit_export``: every entry as a JSON line in the canonical encoding, with its ``hash``.

Every change the application layer makes writes its entry in the same transaction
(``steppe.store.audit.record``); nothing here writes.

Example: ``audit_verify(hub, admin, (41, "9f2c..."))`` on a log that now ends at entry 40 is
``ok=False`` with ``problem="log ends at seq 40 but the recorded head is seq 41 (entries removed
from the end)"``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from steppe.app.errors import Forbidden
from steppe.client import models as m
from steppe.governance.audit import canonical, verify
from steppe.store import audit as audit_repo

if TYPE_CHECKING:
    from steppe.app.auth import Principal
    from steppe.app.hub import Hub


def require_auditor(who: Principal) -> None:
    """``Forbidden`` unless ``who`` is a hub-admin or a reviewer."""
    if not (who.is_hub_admin or who.is_reviewer):
        raise Forbidden("only hub-admins and reviewers may read the audit log")


def audit_entries(hub: Hub, who: Principal, since_seq: int, limit: int) -> list[m.AuditEntry]:
    """At most ``limit`` entries after ``since_seq``."""
    require_auditor(who)
    with hub.store.read() as conn:
        return [m.AuditEntry(**asdict(e)) for e in audit_repo.entries(conn, since_seq, limit)]


def audit_verify(hub: Hub, who: Principal, head: tuple[int, str] | None = None) -> m.AuditVerify:
    """The chain checked as stored; with ``head`` (an earlier ``(seq, hash)``), truncation detected."""
    require_auditor(who)
    with hub.store.read() as conn:
        r = verify(audit_repo.entries(conn), head)
    return m.AuditVerify(
        ok=r.ok,
        checked=r.checked,
        first_bad_seq=r.first_bad_seq,
        problem=r.problem,
        head_seq=r.head[0] if r.head else None,
        head_hash=r.head[1] if r.head else None,
    )


def audit_export(hub: Hub, who: Principal) -> bytes:
    """Every entry as a canonical JSON line with its hash, in stored order."""
    require_auditor(who)
    with hub.store.read() as conn:
        return b"".join(canonical(asdict(e)) + b"\n" for e in audit_repo.entries(conn))
