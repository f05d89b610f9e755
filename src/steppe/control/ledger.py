"""GPU-hour allocations enforced as admission checks, and the usage ledger behind them.

An allocation grants a project GPU-hours for a period (``steppe.metering.periods``), optionally
a maximum of concurrent GPUs and a list of allowed GPU types. The ledger does not meter: the
meter (``steppe.metering.Meter``) cuts running jobs' time into usage records every
``charge_interval_s`` and when a job stops, and its sink (``steppe.control.usage_sink``) hands
each record to ``Ledger.add``, which adds its GPU-seconds to the project's usage for that month
(and its energy to the project's totals). Usage survives restarts: ``load`` reads it back from the
store's usage records. The ledger itself follows starts and stops only to count each project's
GPUs in use.

Two admission checks read the ledger (Slurm's reasons):

* ``GpuHoursCheck``: the project's usage in the current period has reached its GPU-hours ->
  ``AssocGrpGRESMinutes`` (and, with ``require_allocation``, a project without an allocation
  for the current period waits with the same reason);
* ``ProjectGpuLimit``: the project's GPUs in use plus those started earlier in this cycle plus
  the job's would exceed ``max_gpus`` -> ``QOSGrpGRES``.

Example: 10 GPU-hours for 2026-Q1; a 2-GPU job has run 5 hours -> 36,000 GPU-seconds used:
the project's next job waits with ``AssocGrpGRESMinutes``; the running job goes on (as Slurm
does without ``safe`` limits).
"""

from __future__ import annotations

import weakref
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from steppe.core.job import PendingReason
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot
from steppe.metering.periods import months_between
from steppe.metering.records import ENERGY_FIELDS, UsageRecord


@dataclass(frozen=True)
class Grant:
    """One allocation as the ledger sees it."""

    period: str
    start_s: float
    end_s: float
    gpu_seconds: float
    max_gpus: int | None
    gpu_types: tuple[str, ...] | None


class Ledger:
    """GPU-seconds per project and month (from the meter's records), GPUs in use per project, and allocations."""

    def __init__(self, require_allocation: bool = False) -> None:
        self.require_allocation = require_allocation
        self.version = 0  # bumped when the allocations change (an admission epoch)
        self.charged = 0  # bumped when usage is charged: it can use a grant up (a held job's reason changes)
        self.now = 0.0  # the loop sets it before each cycle: the checks' "current period"
        self.grants: dict[str, list[Grant]] = {}
        self.used_s: defaultdict[tuple[str, str], float] = defaultdict(float)  # (project, month)
        self.by_type_s: defaultdict[tuple[str, str], float] = defaultdict(float)  # (project, GPU type): all time
        self.energy: defaultdict[str, list[float]] = defaultdict(lambda: [0.0] * len(ENERGY_FIELDS))  # all time
        self.project_gpus: Counter[str] = Counter()
        self.project_ids: dict[str, int] = {}

    # -- loading -----------------------------------------------------------------------------------
    def load(self, allocations: list[Any], usage: list[Any], project_keys: dict[int, str]) -> None:
        """Replace allocations and usage with what the store holds."""
        self.project_ids = {key: pid for pid, key in project_keys.items()}
        self.set_allocations(allocations, project_keys)
        self.used_s.clear()
        self.by_type_s.clear()
        self.energy.clear()
        for u in usage:
            key = project_keys[u.project_id]
            self.used_s[(key, u.period)] += u.gpu_seconds
            self.by_type_s[(key, u.gpu_type)] += u.gpu_seconds
            totals = self.energy[key]
            for i, name in enumerate(ENERGY_FIELDS):
                totals[i] += getattr(u, name, 0.0) or 0.0

    def set_allocations(self, allocations: list[Any], project_keys: dict[int, str]) -> None:
        self.version += 1
        grants: dict[str, list[Grant]] = defaultdict(list)
        for a in allocations:
            types = tuple(a.gpu_types) if a.gpu_types else None
            grants[project_keys[a.project_id]].append(
                Grant(a.period, a.start_s, a.end_s, a.gpu_hours * 3600.0, a.max_gpus, types)
            )
        self.grants = dict(grants)

    # -- queries -----------------------------------------------------------------------------------
    def current(self, project: str, now: float | None = None) -> Grant | None:
        """The project's allocation for the period holding ``now`` (the ledger's clock by default)."""
        t = self.now if now is None else now
        for g in self.grants.get(project, ()):
            if g.start_s <= t < g.end_s:
                return g
        return None

    def used_in(self, project: str, grant: Grant) -> float:
        """GPU-seconds charged to ``project`` within ``grant``'s period."""
        return sum(self.used_s.get((project, m), 0.0) for m in months_between(grant.start_s, grant.end_s))

    # -- usage ---------------------------------------------------------------------------------------
    def add(self, records: list[UsageRecord]) -> None:
        """Count the meter's records against their projects."""
        if records:
            self.charged += 1
        for r in records:
            self.used_s[(r.project, r.period)] += r.gpu_seconds
            self.by_type_s[(r.project, r.gpu_type)] += r.gpu_seconds
            totals = self.energy[r.project]
            totals[0] += r.it_kwh
            totals[1] += r.facility_kwh
            totals[2] += r.carbon_kg
            totals[3] += r.cost_kzt

    # -- GPUs in use (a state listener) ------------------------------------------------------------
    def on_submit(self, rec: JobRecord, now: float) -> None:
        """Nothing in use yet."""

    def on_start(self, rec: JobRecord, now: float) -> None:
        self.adopt(rec)

    def adopt(self, rec: JobRecord) -> None:
        """Count a running job's GPUs against its project (a start, or a job restored after a restart)."""
        self.project_gpus[rec.spec.project] += rec.gpus

    def on_stop(self, rec: JobRecord, now: float) -> None:
        if rec.allocation:
            self.project_gpus[rec.spec.project] -= rec.gpus


class GpuHoursCheck:
    """Hold jobs of a project whose GPU-hours for the current period are used up."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def epoch(self, now: float) -> tuple[int, int, int]:
        """A new grant, or a new day (periods begin and end at UTC midnights), may release held jobs;
        charged usage may use a grant up, so a job held for another reason now waits with this one."""
        return self.ledger.version, self.ledger.charged, int(now // 86400)

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        grant = self.ledger.current(rec.spec.project)
        if grant is None:
            return PendingReason.ASSOC_GRP_GRES_MINUTES if self.ledger.require_allocation else None
        if self.ledger.used_in(rec.spec.project, grant) >= grant.gpu_seconds:
            return PendingReason.ASSOC_GRP_GRES_MINUTES
        return None


class ProjectGpuLimit:
    """Hold jobs that would take their project past its allocation's ``max_gpus``.

    Checks only receive per-*tenant* GPUs started earlier in the cycle, so this check infers
    per-project starts: after it admits a job, the next call sees whether that job's tenant
    count rose by the job's GPUs (the job started) and counts them for its project. The
    context's counter is new each cycle, which resets the inference.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._cycle: weakref.ref[Counter[str]] | None = None
        self._extra: Counter[str] = Counter()
        self._last: tuple[JobRecord, int] | None = None

    def epoch(self, now: float) -> tuple[int, int]:
        return self.ledger.version, int(now // 86400)

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        self._follow(tenant_extra)
        project = rec.spec.project
        grant = self.ledger.current(project)
        if grant is not None and grant.max_gpus is not None:
            held = self.ledger.project_gpus[project] + self._extra[project]
            if held + rec.gpus > grant.max_gpus:
                return PendingReason.QOS_GRP_GRES
        self._last = (rec, tenant_extra[rec.spec.tenant])
        return None

    def _follow(self, tenant_extra: Counter[str]) -> None:
        if self._cycle is None or self._cycle() is not tenant_extra:
            self._cycle = weakref.ref(tenant_extra)
            self._extra = Counter()
            self._last = None
            return
        if self._last is not None:
            rec, before = self._last
            if tenant_extra[rec.spec.tenant] == before + rec.gpus:
                self._extra[rec.spec.project] += rec.gpus
            self._last = None
