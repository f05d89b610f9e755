"""Who calls: bearer-token authentication and the roles (application layer; ``steppe.api`` reads the
header and maps a failure to a 401).

* ``hub-admin``: everything (organisations, allocations, every job);
* ``org-admin``: their organisation's projects, members, tokens and jobs;
* ``member``: submits to their organisation's projects, sees its jobs and queue, cancels and
  reads the logs of their own jobs;
* ``reviewer``: decides on AI-use proposals of other organisations (never their own: conflict
  of interest), sees every proposal and the audit log; otherwise like a member of their
  organisation, if they have one.

Another organisation's jobs and projects answer 404, as if they did not exist. Verified tokens
are cached for a few seconds (revoking a token clears the cache at once).

Tokens are checked before routing, by ``steppe.api.edge`` (which also limits failed attempts per
client); the ``Who`` dependency reads the principal it stored in the request's scope.

Who may manage whose tokens (``may_manage_tokens_of``): a hub-admin anyone's; an org-admin those
of the members and org-admins of their own organisation (not reviewers', whose authority spans
organisations, nor hub-admins'); everyone their own.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from steppe.app.errors import Forbidden, Unauthenticated
from steppe.governance.review import Actor, Role
from steppe.store import Store, tenancy

CACHE_S = 30.0


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    user_id: int
    name: str
    role: str
    org_id: int | None
    org: str | None

    @property
    def is_hub_admin(self) -> bool:
        return self.role == "hub-admin"

    @property
    def is_reviewer(self) -> bool:
        return self.role == "reviewer"

    @property
    def actor(self) -> Actor:
        """Who acts, as the review workflow sees them."""
        return Actor(self.name, Role(self.role), self.org)

    def sees_org(self, org_id: int) -> bool:
        return self.is_hub_admin or self.org_id == org_id

    def admins_org(self, org_id: int) -> bool:
        return self.is_hub_admin or (self.role == "org-admin" and self.org_id == org_id)

    def acts_on_job(self, org_id: int, owner_id: int) -> bool:
        return self.admins_org(org_id) or self.user_id == owner_id

    def may_manage_tokens_of(self, user_id: int, role: str, org_id: int | None) -> bool:
        """Whether this caller may mint, list and revoke the tokens of that user (see the module docstring)."""
        if self.is_hub_admin or user_id == self.user_id:
            return True
        return (
            self.role == "org-admin" and org_id is not None and org_id == self.org_id
            and role in ("member", "org-admin")
        )  # fmt: skip

    def require_hub_admin(self) -> None:
        if not self.is_hub_admin:
            raise Forbidden("only a hub-admin may do this")

    def require_org_admin(self, org_id: int) -> None:
        if not self.admins_org(org_id):
            raise Forbidden("only a hub-admin or an org-admin of this organisation may do this")


class HasHeaders(Protocol):
    """A request: anything with a ``headers`` mapping (a Starlette ``Request``)."""

    @property
    def headers(self) -> Mapping[str, str]: ...


class Authenticator:
    """Verifies bearer tokens against the store, with a short cache."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __call__(self, request: HasHeaders) -> Principal:
        return self.verify(request.headers.get("authorization", ""))

    def verify(self, header: str) -> Principal:
        """The caller an ``Authorization`` header names; ``Unauthenticated`` if it names nobody."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("send an API token as 'Authorization: Bearer <token>'")
        key = hashlib.sha256(token.strip().encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self.store.read() as conn:
            row = tenancy.authenticate(conn, token.strip(), time.time())
        if row is None:
            raise Unauthenticated("the API token is unknown, expired or revoked")
        who = Principal(row.id, row.name, row.role, row.org_id, row.org)
        expires = now + CACHE_S
        if row.expires_s is not None:
            expires = min(expires, now + (row.expires_s - time.time()))
        with self._lock:
            self._cache[key] = (who, expires)
        return who
