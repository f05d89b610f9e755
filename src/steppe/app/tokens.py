"""API tokens: issue, list and revoke, under the rule of who may manage whose tokens.

``Principal.may_manage_tokens_of`` states the rule (a hub-admin anyone's; an org-admin those of
the members and org-admins of their own organisation; everyone their own). Here it is applied:

* a user outside the caller's organisation is ``NotFound`` (to anyone but a hub-admin), as a
  missing one; one inside it whose tokens the caller may not manage is ``Forbidden`` (an
  org-admin may not manage a reviewer's or a hub-admin's tokens, a member only their own);
* ``create_token``: a disabled user gets none (``Conflict``); the token is returned once, only
  its prefix is stored in clear; audited as ``token.issue``;
* ``revoke_token``: a token the caller may not manage is ``NotFound``, as a missing one; audited
  as ``token.revoke``, and the token cache is cleared at once, so the token stops working.

Example: ``create_token(hub, alice, "alice", m.TokenCreate(name="laptop"))`` returns
``m.TokenCreated(token="stp_...", prefix=..., user="alice", name="laptop", expires_s=None)``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from steppe.app.errors import Conflict, Forbidden, NotFound
from steppe.client import models as m
from steppe.store import tenancy
from steppe.store.audit import record

if TYPE_CHECKING:
    from steppe.app.auth import Principal
    from steppe.app.hub import Hub


def user_for_tokens(conn: Connection, who: Principal, name: str) -> Any:
    """The user whose tokens ``who`` manages: ``NotFound`` outside their organisation, ``Forbidden``
    without authority over the user's role (an org-admin may not mint a reviewer's or a hub-admin's token)."""
    user = tenancy.get_user(conn, name)
    if user is None or not (who.is_hub_admin or (user.org_id is not None and user.org_id == who.org_id)):
        raise NotFound(f"user {name!r}")
    if not who.may_manage_tokens_of(user.id, user.role, user.org_id):
        if who.role == "org-admin":
            raise Forbidden(f"an org-admin may not manage the tokens of a {user.role}")
        raise Forbidden("members may manage only their own tokens")
    return user


def create_token(hub: Hub, who: Principal, name: str, body: m.TokenCreate) -> m.TokenCreated:
    """Issue a token to the user ``name`` (module docstring); the secret is in the result only."""
    now = time.time()
    expires = now + body.expires_in_s if body.expires_in_s else None
    with hub.store.write() as conn:
        user = user_for_tokens(conn, who, name)
        if user.disabled_s is not None:
            raise Conflict(f"user {name!r} is disabled")
        token, prefix = tenancy.create_token(conn, user.id, body.name, now, expires)
        record(
            conn,
            actor=who.name,
            action="token.issue",
            subject=name,
            time_s=now,
            details={"prefix": prefix, "name": body.name, "expires_s": expires},
        )
    return m.TokenCreated(token=token, prefix=prefix, user=name, name=body.name, expires_s=expires)


def list_tokens(hub: Hub, who: Principal, name: str) -> list[m.TokenInfo]:
    """The tokens of the user ``name`` (prefix, name, times; never the secret)."""
    with hub.store.read() as conn:
        user = user_for_tokens(conn, who, name)
        return [m.TokenInfo(**dict(r)) for r in tenancy.list_tokens(conn, user.id)]


def may_revoke(conn: Connection, who: Principal, tok: Any) -> bool:
    """Whether ``who`` may revoke the token ``tok`` (a ``tenancy.get_token`` row)."""
    if who.is_hub_admin or who.user_id == tok.user_id:
        return True
    if tok.org_id is None or tok.org_id != who.org_id:
        return False
    owner = next((u for u in tenancy.list_users(conn, tok.org_id) if u.id == tok.user_id), None)
    return owner is not None and who.may_manage_tokens_of(owner.id, owner.role, owner.org_id)


def revoke_token(hub: Hub, who: Principal, prefix: str) -> None:
    """Revoke the token with ``prefix`` (module docstring)."""
    with hub.store.write() as conn:
        tok = tenancy.get_token(conn, prefix)
        if tok is None or not may_revoke(conn, who, tok):
            raise NotFound(f"token {prefix!r}")
        now = time.time()
        tenancy.revoke_token(conn, prefix, now)
        record(conn, actor=who.name, action="token.revoke", subject=prefix, time_s=now, details={"prefix": prefix})
    hub.auth.clear()
