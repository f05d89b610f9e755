"""The running hub: store, fleet, executor and loop wired together, plus the first-start admin token.

``Hub.open(settings)`` opens (and migrates) the store, reads the GPU inventory, builds the
local executor and the loop; ``start`` restores the state and starts the loop; on the very
first start it creates the ``admin`` user (role hub-admin) and writes its token to
``<data-dir>/admin-token`` (mode 0600).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steppe.api.auth import Authenticator
from steppe.control.ledger import Ledger
from steppe.control.loop import HubLoop
from steppe.control.machine import Fleet, build_fleet
from steppe.executors.local import LocalExecutor
from steppe.store import Store, open_store, tenancy
from steppe.store.db import GroupCommit, sqlite_url


@dataclass(frozen=True)
class HubSettings:
    """What ``steppe serve`` configures."""

    data_dir: Path
    db_url: str | None = None
    policy: str = "easy-backfill"
    cluster: str | None = None
    gpus: int | None = None
    gpu_type: str = "GENERIC"
    grace_s: float = 10.0
    charge_interval_s: float = 10.0
    require_allocation: bool = False
    max_walltime_s: float = 30 * 86400.0
    public_metrics: bool = False


class Hub:
    """Everything the API needs; see the module docstring."""

    def __init__(self, settings: HubSettings, store: Store, fleet: Fleet, loop: HubLoop) -> None:
        self.settings = settings
        self.store = store
        self.fleet = fleet
        self.loop = loop
        self.auth = Authenticator(store)
        self.admin_token_path = settings.data_dir / "admin-token"
        self.started_s = time.time()
        self._projects: dict[tuple[str, str], Any] = {}
        self._grants: dict[int, list[Any]] | None = None
        self._lock = threading.Lock()
        self.writes = GroupCommit(store)

    @staticmethod
    def open(settings: HubSettings) -> Hub:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(settings.db_url or sqlite_url(settings.data_dir / "steppe.db"))
        fleet = build_fleet(settings.cluster, settings.gpus, settings.gpu_type)
        executor = LocalExecutor(settings.data_dir, fleet.devices, fleet.node_names, settings.grace_s)
        ledger = Ledger(settings.charge_interval_s, settings.require_allocation)
        loop = HubLoop(store, fleet, executor, policy=settings.policy, ledger=ledger)
        return Hub(settings, store, fleet, loop)

    def start(self) -> None:
        self.ensure_admin()
        self.loop.start()

    def close(self) -> None:
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

    def allocations_changed(self) -> None:
        with self._lock:
            self._grants = None
        self.loop.reload_allocations()

    def ensure_admin(self, reset: bool = False) -> bool:
        """Create the hub-admin and write its token on first start (or on ``reset``); True if written."""
        now = time.time()
        with self.store.write() as conn:
            if tenancy.has_hub_admin(conn) and not reset:
                return False
            user = tenancy.get_user(conn, "admin")
            user_id = user.id if user is not None else tenancy.create_user(conn, "admin", None, "hub-admin", now)
            token, _ = tenancy.create_token(conn, user_id, "admin-token", now, None)
        fd = os.open(self.admin_token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        os.chmod(self.admin_token_path, 0o600)
        return True
