"""Start-up wiring: one place builds a hub from its settings, for ``steppe serve`` and the tests.

``open_hub(settings)`` in order:

1. refuse a hub that is not root without ``--single-user`` (nothing written yet);
2. load the account map, make the data directory private (``control/datadir.py``), open (and
   migrate) the store named by ``--db`` or ``<data-dir>/steppe.db``;
3. read the GPU inventory (a cluster file, ``--gpus``, the engine's own with
   ``--gpus-from-engine``, or NVML) and build the executor named by ``--executor``
   (``steppe.executors.EXECUTORS``: ``local``, ``slurm``, ``ray``, ``mock``); a cluster file
   that declares sites names each site's engine and its options instead, and the hub drives
   them all (``executors/sites.py``). Reading the engine's inventory is bounded: ``read_engine``
   asks a first executor for its nodes, waits at most ``--engine-wait`` seconds for an answer
   that lists GPUs, closes it, and the hub's executor is then built on the nodes it reported
   (an engine that does not answer fails the start in one line);
4. the allocation ledger, the governance view (review gate, site, the hub's calendar in its
   site's time zone: ``steppe.power.hub_clock``), with ``--power-cap`` the facility power budget
   and the submission gate's power ceiling, and the meter (``live_meter``: the site's timeline,
   NVML energy counters where they read);
5. the loop (``HubLoop``) and the ``Hub`` around it, whose read-model publisher subscribes to
   the loop's steps.

``lock_data_dir`` takes the data directory's exclusive lock and checks that job accounts can
reach its spool; ``steppe serve`` calls it before it binds the port and opens the hub.

Example (what an in-process test does)::

    hub = open_hub(HubSettings(data_dir=tmp / "data", gpus=4, gpu_type="H100", single_user=True))
    hub.start()   # restore, first step, admin token
    ...
    hub.close()
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from steppe.app.hub import Hub
from steppe.control.datadir import DataDirLock, secure, unreachable_ancestor
from steppe.control.governance import GovernanceView
from steppe.control.ledger import Ledger
from steppe.control.loop import HubLoop
from steppe.control.machine import Fleet, build_fleet, engine_nodes, fleet_from_engine
from steppe.core.cluster import Cluster
from steppe.core.errors import SteppeError
from steppe.energy.site import load_site
from steppe.executors import ExecutorSetup, make_executor
from steppe.executors.accounts import UID_BASE, AccountMap, running_as_root
from steppe.executors.base import Executor, Inventory
from steppe.executors.sites import SiteExecutors
from steppe.governance.admission import local_date
from steppe.governance.residency import load_topology
from steppe.metering import MeterSetup, open_nvml_counter
from steppe.power import PowerSetup, build_power, hour_start, hub_clock, live_power, power_ceiling_w
from steppe.scheduling.gate import PowerCeiling
from steppe.store import open_store
from steppe.store.db import sqlite_url

H = TypeVar("H", bound=Hub)
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
    executor_options: tuple[tuple[str, str], ...] = ()  # how to reach the engine (--executor-opt KEY=VALUE)
    gpus_from_engine: bool = False  # the fleet is the engine's nodes and GPUs (its inventory at start)
    engine_wait_s: float = 30.0  # the longest wait for the engine's first inventory
    power_cap_w: float | None = None  # schedule under this facility base cap (the site's windows keep their ratio)
    cap_floor: float = 0.6  # lowest per-job GPU cap under the facility cap, fraction of TDP


def single_user_refusal() -> str:
    """Why a hub not running as root does not start without ``--single-user``."""
    return (
        f"steppe serve runs each job as its user's own Unix account, which needs root; as uid {os.geteuid()} "
        "every job would run as this account and could read the hub's admin token and database. Start the hub "
        "as root, or pass --single-user for a hub whose jobs all belong to one person"
    )


def lock_data_dir(settings: HubSettings, root: bool) -> DataDirLock:
    """Make the data directory private and take its lock; with ``root``, check job accounts reach its spool."""
    secure(settings.data_dir, shared_spool=root)
    lock = DataDirLock(settings.data_dir).acquire()
    if root:
        blocked = unreachable_ancestor(settings.data_dir)
        if blocked is not None:
            lock.release()
            raise SteppeError(
                f"job accounts cannot reach {settings.data_dir}/spool: {blocked} is not searchable by others "
                f"(mode {blocked.stat().st_mode & 0o777:o}); choose a --data-dir whose parent directories "
                "have o+x, e.g. /srv/steppe"
            )
    return lock


def open_hub(settings: HubSettings, root: bool | None = None) -> Hub:
    """The hub ``settings`` describe, wired but not started; see the module docstring."""
    return wire(settings, running_as_root() if root is None else root, Hub)


def wire(settings: HubSettings, root: bool, hub_class: type[H]) -> H:
    """``open_hub`` building a ``hub_class`` (a subclass of ``Hub``); ``root``: whether the hub runs as root."""
    if not root and not settings.single_user:
        raise SteppeError(single_user_refusal())
    accounts = AccountMap.load(settings.accounts_file, settings.uid_base, root=root)
    secure(settings.data_dir, shared_spool=root)
    store = open_store(settings.db_url or sqlite_url(settings.data_dir / "steppe.db"))
    secure(settings.data_dir, shared_spool=root)  # the database file the store may just have created
    fleet = _fleet(settings, accounts)
    executor = _executor(settings, fleet, accounts)
    ledger = Ledger(settings.require_allocation)
    shift = settings.clock_offset_days * 86400.0
    sites = fleet.cluster.site_names
    home = settings.site if not sites or settings.site in sites else sites[0]  # the hub's calendar and meter
    today = local_date(hub_clock(home, load_topology()).zone)
    governance = GovernanceView(
        ledger, review_gate=settings.review_gate, site=home, sites=sites, today=lambda now: today(now + shift)
    )
    power_setup, ceiling = _power(settings, fleet.cluster, home)
    power = power_setup.budget if power_setup is not None else None
    meter = live_meter(fleet, settings, power_setup, executor)
    loop = HubLoop(
        store, fleet, executor, policy=settings.policy, ledger=ledger, governance=governance, power=power,
        metering=meter,
    )  # fmt: skip
    return hub_class(settings, store, fleet, loop, accounts, ceiling)


def _fleet(settings: HubSettings, accounts: AccountMap) -> Fleet:
    """The fleet the settings name: declared, NVML's, or (``gpus_from_engine``) the engine's."""
    if not settings.gpus_from_engine:
        fleet = build_fleet(settings.cluster, settings.gpus, settings.gpu_type)
        return _engine_sites(fleet, settings, accounts)
    if settings.cluster is not None or settings.gpus is not None:
        raise SteppeError("--gpus-from-engine reads the nodes from the engine: give it without --cluster or --gpus")
    if settings.executor not in REMOTE_ENGINES:
        raise SteppeError(
            f"--gpus-from-engine reads a remote engine's nodes ({', '.join(REMOTE_ENGINES)}), not the "
            f"{settings.executor} executor's; without it the hub reads this machine's GPUs from NVML"
        )
    setup = ExecutorSetup(settings.data_dir, {}, [], settings.grace_s, accounts, dict(settings.executor_options))
    seen = read_engine(settings.executor, setup, settings.engine_wait_s)
    return fleet_from_engine(settings.executor, seen, settings.gpu_type)


def _engine_sites(fleet: Fleet, settings: HubSettings, accounts: AccountMap) -> Fleet:
    """``fleet`` with the nodes of each site whose GPUs its engine reports (``gpus = "engine"``),
    numbered after the declared ones; a node name at two sites is refused."""
    readers = [spec for spec in fleet.cluster.sites.values() if spec.gpus_from_engine]
    if not readers:
        return fleet
    nodes, devices = list(fleet.cluster.nodes), dict(fleet.devices)
    for spec in readers:
        if spec.executor not in REMOTE_ENGINES:
            raise SteppeError(f'site {spec.name}: gpus = "engine" reads a remote engine\'s nodes '
                              f"({', '.join(REMOTE_ENGINES)}), not the {spec.executor} executor's")  # fmt: skip
        setup = ExecutorSetup(settings.data_dir, {}, [], settings.grace_s, accounts, dict(spec.options))
        try:
            seen = read_engine(spec.executor, setup, settings.engine_wait_s)
        except SteppeError as exc:
            raise SteppeError(f"site {spec.name}: {exc}") from None
        more, more_devices = engine_nodes(seen, settings.gpu_type, spec.name, len(nodes))
        where = {n.name: n.site for n in nodes}
        for node in more:
            if node.name in where:
                raise SteppeError(f"site {spec.name}: its engine's node {node.name} is also a node of site "
                                  f"{where[node.name]}; a node belongs to one site")  # fmt: skip
        nodes += more
        devices.update(more_devices)
        log.info("site %s: %d nodes read from its %s engine", spec.name, len(more), spec.executor)
    return Fleet(replace(fleet.cluster, nodes=tuple(nodes)), devices, f"{fleet.source}, engines' nodes")


REMOTE_ENGINES = ("slurm", "ray")
"""The executors whose inventory a fleet may be read from."""


def read_engine(name: str, setup: ExecutorSetup, wait_s: float, poll_s: float = 0.1) -> Inventory:
    """The inventory of engine ``name`` once it answers with GPUs, waiting at most ``wait_s``; an
    engine that does not answer in time, or lists no GPU, is a ``SteppeError`` saying which."""
    probe = make_executor(name, setup)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            seen = probe.inventory()
            if probe.reachable() and seen.total_gpus:
                return seen
            if time.monotonic() >= deadline:
                break
            time.sleep(poll_s)
        if not probe.reachable():
            raise SteppeError(
                f"the {name} engine did not answer within {wait_s:g} s, so the hub cannot read its GPUs; "
                "check --executor-opt (slurm: conf=, ray: address=) or declare the GPUs with --cluster or --gpus"
            )
        raise SteppeError(
            f"the {name} engine answered but lists no node with GPUs (slurm: GRES gpu on nodes of the partition; "
            "ray: nodes started with --num-gpus); declare the GPUs with --cluster or --gpus"
        )
    finally:
        probe.close()


def _executor(settings: HubSettings, fleet: Fleet, accounts: AccountMap) -> Executor:
    """The executor ``--executor`` names; for a cluster with sites, one per site (its own engine and options)."""

    def setup(options: dict[str, str]) -> ExecutorSetup:
        return ExecutorSetup(settings.data_dir, fleet.devices, fleet.node_names, settings.grace_s, accounts, options)

    cluster = fleet.cluster
    if not cluster.sites:
        return make_executor(settings.executor, setup(dict(settings.executor_options)))
    built: dict[str, Executor] = {}
    try:
        for name, spec in cluster.sites.items():
            try:
                built[name] = make_executor(spec.executor, setup(dict(spec.options)))
            except SteppeError as exc:
                raise SteppeError(f"site {name}: {exc}") from None
    except BaseException:
        for executor in built.values():
            executor.close()
        raise
    return SiteExecutors(built, [n.site for n in cluster.nodes], [n.name for n in cluster.nodes])


def _power(settings: HubSettings, cluster: Cluster, home: str) -> tuple[PowerSetup | None, PowerCeiling | None]:
    """With ``power_cap_w`` (or, at several sites, a ``power_cap_kw`` in a site's table of the cluster
    file), the facility budget (the site timeline starts at the site-local hour of this start) and
    the submission gate's ceiling, which refuses what could never fit under the cap."""
    site_caps = any(s.power_cap_w is not None for s in cluster.sites.values())
    if settings.power_cap_w is None and not site_caps:
        return None, None
    try:
        setup = live_power(cluster, home, time.time(), power_cap_w=settings.power_cap_w, floor=settings.cap_floor)
    except SteppeError as exc:
        raise SteppeError(f"--power-cap at site {home!r}: {exc}") from None
    if setup.budget is None:
        return None, None
    return setup, PowerCeiling(setup.budget, power_ceiling_w(setup))


def live_meter(fleet: Fleet, settings: HubSettings, power: PowerSetup | None, executor: Any) -> MeterSetup:
    """The loop's meter: the site's timeline (the cap's, or one for metering only), NVML where it reads."""
    if power is None:
        sites = fleet.cluster.sites  # several sites: each its own timeline; the first's clock starts them
        try:
            site = load_site(next(iter(sites.values())).site_file if sites else settings.site)
            power = build_power(fleet.cluster, settings.site, enforce=False, start=hour_start(time.time(), site.clock))
        except SteppeError as exc:  # a site named for governance only: meter GPU-seconds
            log.warning("site %r has no energy data (%s): metering GPU-seconds only", settings.site, exc)
            return MeterSetup(charge_interval_s=settings.charge_interval_s)
    devices_of = getattr(executor, "devices_of", None)  # the local executor's; others: the power model
    counter = open_nvml_counter(devices_of) if callable(devices_of) else None
    return MeterSetup(
        power.fleet, power.timeline, 0.0, settings.charge_interval_s, counter, power.site_timelines or None
    )
