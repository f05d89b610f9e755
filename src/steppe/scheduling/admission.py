"""Admission checks: small rules in front of placement, each with its own pending reason.

A check looks at one job and the cycle so far and returns a ``PendingReason`` when the job
may not start now, or None. A job held by a check does not block the jobs behind it (as in
Slurm, where a job over its association limit does not hold the queue). New checks (power,
review, residency) slot in without touching the policies.

>>> from steppe.core.cluster import Cluster, TenantSpec
>>> c = Cluster.uniform(1, 8, "H100").with_tenants({"a": TenantSpec("a", gpu_quota=4)})
>>> TenantQuota().limit(c, "a")
4
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol

from steppe.core.cluster import Cluster
from steppe.core.job import PendingReason
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot


class AdmissionCheck(Protocol):
    """One rule; returns why ``rec`` must wait, or None.

    A check may also define ``begin_cycle(now)`` (called before a cycle's first ``check``),
    ``next_wakeup(now) -> float | None`` (a time the cycle should run again, e.g. when a held
    job becomes eligible) and ``epoch(now) -> Hashable``: a value that changes whenever one of
    the check's inputs outside the hub state changes in a way that can make a held job
    admissible (an approval, a new allocation, a new day or period). These are the events
    that unblock held jobs, listed in one place (``admission_epoch``): a memoised cycle is
    reused only while every check's epoch, and the state's generation, are unchanged and no
    check's wake-up time has passed.
    """

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None: ...


class FitsFleet:
    """A job larger than every GPU pool of its type (one site's GPUs of that type) can never start:
    ``ReqNodeNotAvail``."""

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        inv, gpu_type = snap.inventory, rec.spec.gpu_type
        return None if rec.gpus <= inv.largest_of.get(gpu_type, 0) else PendingReason.REQ_NODE_NOT_AVAIL  # fits_ever


class TenantQuota:
    """A tenant may hold at most ``gpu_quota`` GPUs at once: ``QOSGrpGRES``."""

    def limit(self, cluster: Cluster, tenant: str) -> int | None:
        return cluster.tenant(tenant).gpu_quota

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        spec = snap.cluster.tenants.get(rec.spec.tenant)
        quota = spec.gpu_quota if spec is not None else None
        if quota is None:
            return None
        tenant = rec.spec.tenant
        held = snap.tenant_gpus.get(tenant, 0) + tenant_extra.get(tenant, 0)
        return PendingReason.QOS_GRP_GRES if held + rec.gpus > quota else None


class EngineAvailable:
    """While the engine that runs the hub's jobs (Slurm, Ray) does not answer, nothing starts:
    every job examined waits with ``EngineDown``; running jobs are left alone.

    ``reachable`` is the executor's own (a cached flag its poller keeps; it never blocks). The
    cycle reads it once, at its start, so one cycle sees one answer; ``epoch`` is the same
    reading, so a memoised cycle made while the engine answered is not reused once it stops
    answering, and the other way round. While it is down the cycle asks to run again every
    ``retry_s``, so jobs start within about that long of the engine's return.

    >>> up = [False]
    >>> check = EngineAvailable(lambda: up[0])
    >>> check.begin_cycle(0.0); check.check(None, None, None), check.next_wakeup(0.0)  # type: ignore[arg-type]
    (<PendingReason.ENGINE_DOWN: 'EngineDown'>, 1.0)
    >>> up[0] = True; check.epoch(1.0), check.next_wakeup(1.0)  # the cycle's reading stands until the next
    (True, 2.0)
    >>> check.begin_cycle(1.0); check.check(None, None, None), check.next_wakeup(1.0)  # type: ignore[arg-type]
    (None, None)

    A hub at several sites has an engine per site (``executors/sites.py``); ``up_sites`` reads
    which answer. A job may then start only at those (``sites_for``), and waits with
    ``EngineDown`` only when no site's engine answers; the cycle runs again every ``retry_s``
    while one is down.

    >>> sites = EngineAvailable(lambda: True, up_sites=lambda: frozenset({"almaty"}), all_sites=("astana", "almaty"))
    >>> sites.begin_cycle(0.0); sites.sites_for(None), sites.next_wakeup(0.0)  # type: ignore[arg-type]
    (frozenset({'almaty'}), 1.0)
    """

    def __init__(
        self,
        reachable: Callable[[], bool],
        retry_s: float = 1.0,
        *,
        up_sites: Callable[[], frozenset[str]] | None = None,
        all_sites: Sequence[str] = (),
    ) -> None:
        self.reachable = reachable
        self.retry_s = retry_s
        self.up = True
        self.up_sites = up_sites
        self.all_sites = frozenset(all_sites)
        self.sites: frozenset[str] | None = None  # the sites whose engine answered (None: every site)

    def begin_cycle(self, now: float) -> None:
        if self.up_sites is None:
            self.up = self.reachable()
            return
        up = self.up_sites()
        self.up = bool(up)
        self.sites = None if up >= self.all_sites else up

    def epoch(self, now: float) -> bool | frozenset[str]:
        return self.reachable() if self.up_sites is None else self.up_sites()

    def next_wakeup(self, now: float) -> float | None:
        return None if self.up and self.sites is None else now + self.retry_s

    def sites_for(self, rec: JobRecord) -> frozenset[str] | None:
        """The sites a job may start at now: those whose engine answers (None: every site)."""
        return self.sites

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        return None if self.up else PendingReason.ENGINE_DOWN


DEFAULT_CHECKS: tuple[AdmissionCheck, ...] = (FitsFleet(), TenantQuota())


def epoch_checks(checks: Sequence[AdmissionCheck]) -> tuple[Any, ...]:
    """The checks that define ``epoch(now)``."""
    return tuple(c for c in checks if hasattr(c, "epoch"))


def admission_epoch(checks: Sequence[Any], now: float) -> tuple[Hashable, ...]:
    """Every external input a held job's admission depends on, as one comparable value.

    >>> class Approvals:
    ...     version = 0
    ...     def epoch(self, now: float) -> int:
    ...         return self.version
    >>> a = Approvals(); before = admission_epoch([a], 0.0); a.version += 1
    >>> admission_epoch([a], 0.0) == before
    False
    """
    return tuple(c.epoch(now) for c in checks)
