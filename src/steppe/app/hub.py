"""The running hub: store, fleet, executor, loop and read model wired together (``bootstrap``),
plus the caches of the submission path and the first-start admin token.

``Hub.open(settings)`` builds one (``steppe.app.bootstrap.open_hub``); ``start`` restores the
state and starts the loop; on the very first start it creates the ``admin`` user (role
hub-admin) and writes its token to ``<data-dir>/admin-token`` (mode 0600).

Governance: ``today()`` is the hub's local date (its site's time zone:
``steppe.power.hub_clock``), on which approvals start and expire; ``governance_changed`` makes
the loop re-read approvals and datasets and waits for one cycle. The acceptable-use terms in
force and each user's acceptances are cached for the submission path (``terms_required``), as
are projects (never renamed or deleted) and allocations (until ``allocations_changed``). The
expiry sweep (``steppe.app.review.expire_sweep``) runs on start and every 5 minutes.

Reads: ``reads.model`` is the immutable read model the loop published after its last step
(``steppe.control.views``); the API's queue, node and metrics reads use it and never wait for
a scheduling step.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import date
from typing import TYPE_CHECKING, Any, Self

from steppe.app.auth import Authenticator
from steppe.control.views import ReadModelPublisher
from steppe.executors.accounts import AccountMap, running_as_root
from steppe.governance.admission import local_date
from steppe.governance.residency import load_topology
from steppe.governance.rules import RuleSet, load_rules
from steppe.governance.terms import TermsVersion, must_accept_terms, terms_in_force
from steppe.power import hub_clock
from steppe.store import Store, tenancy
from steppe.store import governance as gov_repo
from steppe.store.audit import record
from steppe.store.db import GroupCommit

if TYPE_CHECKING:
    from steppe.app.bootstrap import HubSettings
    from steppe.control.loop import HubLoop
    from steppe.control.machine import Fleet
    from steppe.scheduling.gate import PowerCeiling


class Hub:
    """Everything the API needs; see the module docstring."""

    def __init__(
        self,
        settings: HubSettings,
        store: Store,
        fleet: Fleet,
        loop: HubLoop,
        accounts: AccountMap | None = None,
        power_ceiling: PowerCeiling | None = None,
    ) -> None:
        self.settings = settings
        self.accounts = accounts or AccountMap(settings.uid_base, root=running_as_root())
        self.power_ceiling = power_ceiling  # the submission gate refuses what could never fit under the cap
        self.store = store
        self.fleet = fleet
        self.loop = loop
        # publishes the read model after each of the loop's steps (under a burst, at least every 0.1 s)
        self.reads = ReadModelPublisher(loop, max_lag_s=0.1)
        self.auth = Authenticator(store)
        self.admin_token_path = settings.data_dir / "admin-token"
        self.started_s = time.time()
        self._projects: dict[tuple[str, str], Any] = {}
        self._grants: dict[int, list[Any]] | None = None
        self._lock = threading.Lock()
        self.writes = GroupCommit(store)
        self.rules: RuleSet = load_rules()
        self._local_date = local_date(hub_clock(settings.site, load_topology()).zone)
        self._terms: list[TermsVersion] | None = None
        self._accepted: dict[int, set[str]] = {}
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()

    @classmethod
    def open(cls, settings: HubSettings, root: bool | None = None) -> Self:
        """A hub wired by ``steppe.app.bootstrap`` (``root``: whether it runs as root; default: ask)."""
        from steppe.app.bootstrap import wire

        return wire(settings, running_as_root() if root is None else root, cls)

    def start(self) -> None:
        from steppe.app.review import expire_sweep

        self.ensure_admin()
        self.loop.start()
        expire_sweep(self)

        def sweep() -> None:  # approvals expire at the end of their date: look every 5 minutes
            while not self._stop.wait(300.0):
                expire_sweep(self)

        self._sweeper = threading.Thread(target=sweep, name="steppe-expiry", daemon=True)
        self._sweeper.start()

    def close(self) -> None:
        self._stop.set()
        self.loop.close()
        self.writes.close()
        self.store.close()

    # -- caches for the submission path (projects are never renamed or deleted) -----------------------
    def project(self, org: str, name: str) -> Any | None:
        """The project ``org/name`` (cached once found)."""
        hit = self._projects.get((org, name))
        if hit is None:
            with self.store.read() as conn:
                hit = tenancy.get_project(conn, org, name)
            if hit is not None:
                self._projects[(org, name)] = hit
        return hit

    def grants(self, project_id: int) -> list[Any]:
        """A project's allocations (cached until ``allocations_changed``)."""
        with self._lock:
            cache = self._grants
        if cache is None:
            cache = {}
            with self.store.read() as conn:
                for a in tenancy.list_allocations(conn):
                    cache.setdefault(a.project_id, []).append(a)
            with self._lock:
                self._grants = cache
        return cache.get(project_id, [])

    def tenants_changed(self) -> None:
        """Make the loop re-read tenants' weights and quotas, and wait for the cycle that does."""
        self.loop.reload_tenants()
        self.loop.wake_and_wait(timeout=5.0)

    def allocations_changed(self) -> None:
        with self._lock:
            self._grants = None
        self.loop.reload_allocations()

    # -- governance ----------------------------------------------------------------------------------------
    def today(self) -> date:
        """The hub's local date (its site's time zone), shifted by ``clock_offset_days`` in tests."""
        return self._local_date(time.time() + self.settings.clock_offset_days * 86400.0)

    def governance_changed(self) -> None:
        """Make the loop re-read approvals and datasets, and wait for the cycle that does."""
        self.loop.reload_governance()
        self.loop.wake_and_wait(timeout=5.0)

    def terms_changed(self) -> None:
        with self._lock:
            self._terms = None
            self._accepted.clear()

    def terms_required(self, user_id: int, user: str) -> str | None:
        """Why ``user`` must (re)accept the terms before submitting, or None."""
        with self._lock:
            versions, accepted = self._terms, self._accepted.get(user_id)
        if versions is None or accepted is None:
            with self.store.read() as conn:
                versions = gov_repo.terms(conn) if versions is None else versions
                accepted = gov_repo.accepted_versions(conn, user_id) if accepted is None else accepted
            with self._lock:
                self._terms = versions
                self._accepted[user_id] = accepted
        current = terms_in_force(versions, self.today())
        if current is None or not must_accept_terms(current.version if current.version in accepted else None, current):
            return None
        had = "accepted an earlier version" if accepted else "not accepted any version"
        return (
            f"user {user} must accept the acceptable-use terms version {current.version} (in force since "
            f"{current.effective_on}) before submitting jobs; they have {had}: steppe terms accept"
        )

    def ensure_admin(self, reset: bool = False) -> bool:
        """Create the hub-admin and write its token on first start (or on ``reset``); True if written.

        A reset revokes every earlier ``admin-token`` of the ``admin`` user (audited), so a leaked
        admin token stops working the moment a new one is written.
        """
        now = time.time()
        with self.store.write() as conn:
            if tenancy.has_hub_admin(conn) and not reset:
                return False
            user = tenancy.get_user(conn, "admin")
            user_id = user.id if user is not None else tenancy.create_user(conn, "admin", None, "hub-admin", now)
            for old in tenancy.revoke_tokens_named(conn, user_id, "admin-token", now):
                record(
                    conn,
                    actor="steppe",
                    action="token.revoke",
                    subject=old,
                    time_s=now,
                    reason="admin token reset",
                    details={"prefix": old},
                )
            token, prefix = tenancy.create_token(conn, user_id, "admin-token", now, None)
            record(
                conn,
                actor="steppe",
                action="token.issue",
                subject="admin",
                time_s=now,
                details={"prefix": prefix, "name": "admin-token", "reset": reset},
            )
        self.auth.clear()
        fd = os.open(self.admin_token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        os.chmod(self.admin_token_path, 0o600)
        return True
