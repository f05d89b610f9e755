"""The running hub: store, fleet, executor and loop wired together, plus the first-start admin token.

``Hub.open(settings)`` opens (and migrates) the store, reads the GPU inventory, builds the
executor named by ``settings.executor`` (``steppe.executors.EXECUTORS``) and the loop;
``start`` restores the state and starts the loop; on the very first start it creates the
``admin`` user (role hub-admin) and writes its token to
``<data-dir>/admin-token`` (mode 0600).

Governance: the loop gets a ``GovernanceView`` (review gate on unless ``review_gate`` is False;
the hub's ``site``, whose jurisdiction comes from the topology). ``today()`` is the hub's local
date (its site's time zone: ``steppe.power.hub_clock``), on which approvals start and expire;
``governance_changed`` makes the loop re-read approvals and datasets and waits for one cycle.
The acceptable-use terms in force and each user's acceptances are cached for the submission
path (``terms_required``).

Power: with ``power_cap_w`` the loop's policy schedules under the facility cap of ``site``'s
site file (``steppe.power.live``: its timeline starts at the site-local hour the hub starts in).

Metering: the loop's meter (``steppe.metering.Meter``) integrates running jobs' energy against
``site``'s timeline (with or without a cap), every ``charge_interval_s``; where NVML reads the
GPUs' energy counters (``open_nvml_counter``), it uses them for the jobs' IT energy.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from steppe.api.auth import Authenticator
from steppe.control.datadir import secure
from steppe.control.governance import GovernanceView
from steppe.control.ledger import Ledger
from steppe.control.loop import HubLoop
from steppe.control.machine import Fleet, build_fleet
from steppe.core.errors import SteppeError
from steppe.energy.site import load_site
from steppe.executors import ExecutorSetup, make_executor
from steppe.executors.accounts import UID_BASE, AccountMap, running_as_root
from steppe.governance.admission import local_date
from steppe.governance.residency import load_topology
from steppe.governance.rules import RuleSet, load_rules
from steppe.governance.terms import TermsVersion, must_accept_terms, terms_in_force
from steppe.metering import MeterSetup, open_nvml_counter
from steppe.power import PowerSetup, build_power, hour_start, hub_clock, live_power, power_ceiling_w
from steppe.scheduling.gate import PowerCeiling
from steppe.store import Store, open_store, tenancy
from steppe.store import governance as gov_repo
from steppe.store.audit import record
from steppe.store.db import GroupCommit, sqlite_url

log = logging.getLogger("steppe.hub")


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
    review_gate: bool = True
    site: str = "astana"
    clock_offset_days: float = 0.0  # tests only: shift the hub's calendar (approval dates and expiry)
    single_user: bool = False
    uid_base: int = UID_BASE
    accounts_file: Path | None = None
    executor: str = "local"
    power_cap_w: float | None = None  # schedule under this facility base cap (the site's windows keep their ratio)
    cap_floor: float = 0.6  # lowest per-job GPU cap under the facility cap, fraction of TDP


def single_user_refusal() -> str:
    """Why a hub not running as root does not start without ``--single-user``."""
    return (
        f"steppe serve runs each job as its user's own Unix account, which needs root; as uid {os.geteuid()} "
        "every job would run as this account and could read the hub's admin token and database. Start the hub "
        "as root, or pass --single-user for a hub whose jobs all belong to one person"
    )


def live_meter(fleet: Fleet, settings: HubSettings, power: PowerSetup | None, executor: Any) -> MeterSetup:
    """The loop's meter: the site's timeline (the cap's, or one for metering only), NVML where it reads."""
    if power is None:
        try:
            site = load_site(settings.site)
            power = build_power(
                fleet.cluster, settings.site, enforce=False, start=hour_start(time.time(), site.clock)
            )
        except SteppeError as exc:  # a site named for governance only: meter GPU-seconds
            log.warning("site %r has no energy data (%s): metering GPU-seconds only", settings.site, exc)
            return MeterSetup(charge_interval_s=settings.charge_interval_s)
    devices_of = getattr(executor, "devices_of", None)  # the local executor's; others: the power model
    counter = open_nvml_counter(devices_of) if callable(devices_of) else None
    return MeterSetup(power.fleet, power.timeline, 0.0, settings.charge_interval_s, counter)


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

    @staticmethod
    def open(settings: HubSettings) -> Hub:
        root = running_as_root()
        if not root and not settings.single_user:
            raise SteppeError(single_user_refusal())
        accounts = AccountMap.load(settings.accounts_file, settings.uid_base, root=root)
        secure(settings.data_dir, shared_spool=root)
        store = open_store(settings.db_url or sqlite_url(settings.data_dir / "steppe.db"))
        secure(settings.data_dir, shared_spool=root)  # the database file the store may just have created
        fleet = build_fleet(settings.cluster, settings.gpus, settings.gpu_type)
        setup = ExecutorSetup(settings.data_dir, fleet.devices, fleet.node_names, settings.grace_s, accounts)
        executor = make_executor(settings.executor, setup)
        ledger = Ledger(settings.require_allocation)
        shift = settings.clock_offset_days * 86400.0
        today = local_date(hub_clock(settings.site, load_topology()).zone)
        governance = GovernanceView(ledger, review_gate=settings.review_gate, site=settings.site,
                                    today=lambda now: today(now + shift))
        power = None
        ceiling = None
        power_setup = None
        if settings.power_cap_w is not None:  # the site timeline starts at the site-local hour of this start
            try:
                power_setup = live_power(fleet.cluster, settings.site, time.time(), power_cap_w=settings.power_cap_w,
                                     floor=settings.cap_floor)
            except SteppeError as exc:
                raise SteppeError(f"--power-cap at site {settings.site!r}: {exc}") from None
            power = power_setup.budget
            if power is not None:  # the submission gate refuses what could never fit under the cap, as the twin
                ceiling = PowerCeiling(power, power_ceiling_w(power_setup))
        meter = live_meter(fleet, settings, power_setup, executor)
        loop = HubLoop(store, fleet, executor, policy=settings.policy, ledger=ledger, governance=governance,
                       power=power, metering=meter)
        return Hub(settings, store, fleet, loop, accounts, ceiling)

    def start(self) -> None:
        from steppe.api.review_ops import expire_sweep

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
        if current is None or not must_accept_terms(current.version if current.version in accepted else None,
                                                    current):
            return None
        had = "accepted an earlier version" if accepted else "not accepted any version"
        return (f"user {user} must accept the acceptable-use terms version {current.version} (in force since "
                f"{current.effective_on}) before submitting jobs; they have {had}: steppe terms accept")

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
                record(conn, actor="steppe", action="token.revoke", subject=old, time_s=now,
                       reason="admin token reset", details={"prefix": old})
            token, prefix = tenancy.create_token(conn, user_id, "admin-token", now, None)
            record(conn, actor="steppe", action="token.issue", subject="admin", time_s=now,
                   details={"prefix": prefix, "name": "admin-token", "reset": reset})
        self.auth.clear()
        fd = os.open(self.admin_token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        os.chmod(self.admin_token_path, 0o600)
        return True
