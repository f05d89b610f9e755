"""Members of an organisation: add, list, remove (disable).

* ``add_member``: a hub-admin or an org-admin of the organisation adds a member or an
  org-admin; only a hub-admin adds a reviewer (asked first, before the organisation is looked
  up). Audited as ``user.create``; a user name taken already (in any organisation) is a
  ``Conflict``;
* ``list_members``: the organisation's users, to anyone who may see the organisation;
* ``remove_member``: a hub-admin or an org-admin disables a user of the organisation and
  revokes all their tokens (their jobs and history stay), audited as ``user.disable``; the
  token cache is cleared at once, so the user's next request is refused.

Example: ``add_member(hub, kaznu_admin, "kaznu", m.MemberCreate(name="alice", role="member"))``
returns ``m.User(name="alice", org="kaznu", role="member", ...)``; the same call for a
``reviewer`` is ``Forbidden``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from steppe.app.errors import Conflict, NotFound
from steppe.app.tenancy import org_of
from steppe.client import models as m
from steppe.store import tenancy
from steppe.store.audit import record

if TYPE_CHECKING:
    from steppe.app.auth import Principal
    from steppe.app.hub import Hub


def user_view(row: Any) -> m.User:
    """A user as the API shows them."""
    return m.User(
        name=row.name, org=row.org, role=row.role, created_s=row.created_s, disabled=row.disabled_s is not None
    )


def add_member(hub: Hub, who: Principal, org: str, body: m.MemberCreate) -> m.User:
    """Add a user to ``org`` with the role ``body`` names (module docstring)."""
    now = time.time()
    if body.role == "reviewer":
        who.require_hub_admin()
    try:
        with hub.store.write() as conn:
            org_row = org_of(conn, who, org)
            who.require_org_admin(org_row.id)
            tenancy.create_user(conn, body.name, org_row.id, body.role, now)
            record(
                conn,
                actor=who.name,
                action="user.create",
                subject=body.name,
                time_s=now,
                details={"org": org, "role": body.role},
            )
    except IntegrityError:
        raise Conflict(f"user {body.name!r} already exists") from None
    return m.User(name=body.name, org=org, role=body.role, created_s=now)


def list_members(hub: Hub, who: Principal, org: str) -> list[m.User]:
    """The users of ``org``, if ``who`` may see it."""
    with hub.store.read() as conn:
        org_row = org_of(conn, who, org)
        return [user_view(r) for r in tenancy.list_users(conn, org_row.id)]


def remove_member(hub: Hub, who: Principal, org: str, name: str) -> None:
    """Disable ``name`` of ``org`` and revoke their tokens (module docstring)."""
    with hub.store.write() as conn:
        org_row = org_of(conn, who, org)
        who.require_org_admin(org_row.id)
        user = tenancy.get_user(conn, name)
        if user is None or user.org_id != org_row.id:
            raise NotFound(f"member {name!r} of {org}")
        now = time.time()
        tenancy.disable_user(conn, user.id, now)
        record(
            conn,
            actor=who.name,
            action="user.disable",
            subject=name,
            time_s=now,
            details={"org": org, "tokens": "all revoked"},
        )
    hub.auth.clear()
