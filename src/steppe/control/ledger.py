"""GPU-hour allocations enforced as admission checks, and the usage ledger behind them.

An allocation grants a project GPU-hours for a period (``steppe.control.periods``), optionally
a maximum of concurrent GPUs and a list of allowed GPU types. The ledger charges running jobs
as they run: every ``charge_interval_s`` and when a job stops, each running job's GPUs times
the seconds since its last charge are added to its project's usage for the current month and
to a usage record per ``(job, month, GPU type)``. Usage survives restarts (it is loaded back
from the usage records), and so does each job's last charge time.

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

from steppe.control.periods import months_between, split_by_month
from steppe.core.job import PendingReason
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot


@dataclass(frozen=True)
class Grant:
    """One allocation as the ledger sees it."""

    period: str
    start_s: float
    end_s: float
    gpu_seconds: float
    max_gpus: int | None
    gpu_types: tuple[str, ...] | None


@dataclass
class _Charge:
    project: str
    project_id: int
    gpu_type: str
    gpus: int
    charged_until_s: float


class Ledger:
    """GPU-seconds per project and month, GPUs in use per project, and allocations."""

    def __init__(self, charge_interval_s: float = 10.0, require_allocation: bool = False) -> None:
        self.charge_interval_s = charge_interval_s
        self.require_allocation = require_allocation
        self.version = 0  # bumped when the allocations change (an admission epoch)
        self.now = 0.0
        self.grants: dict[str, list[Grant]] = {}
        self.used_s: defaultdict[tuple[str, str], float] = defaultdict(float)  # (project, month)
        self.by_type_s: defaultdict[tuple[str, str], float] = defaultdict(float)  # (project, GPU type): all time
        self.project_gpus: Counter[str] = Counter()
        self.project_ids: dict[str, int] = {}
        self.running: dict[int, _Charge] = {}
        self.last_charge_s = 0.0
        self._rows: list[dict[str, Any]] = []

    # -- loading -----------------------------------------------------------------------------------
    def load(self, allocations: list[Any], usage: list[Any], project_keys: dict[int, str]) -> None:
        """Replace allocations and usage with what the store holds."""
        self.project_ids = {key: pid for pid, key in project_keys.items()}
        self.set_allocations(allocations, project_keys)
        self.used_s.clear()
        self.by_type_s.clear()
        for u in usage:
            key = project_keys[u.project_id]
            self.used_s[(key, u.period)] += u.gpu_seconds
            self.by_type_s[(key, u.gpu_type)] += u.gpu_seconds

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

    # -- charging ----------------------------------------------------------------------------------
    def on_submit(self, rec: JobRecord, now: float) -> None:
        """Nothing to charge yet."""

    def on_start(self, rec: JobRecord, now: float) -> None:
        self.adopt(rec, now)

    def adopt(self, rec: JobRecord, charged_until_s: float) -> None:
        """Charge ``rec`` from ``charged_until_s`` on (a start, or a job restored after a restart)."""
        project = rec.spec.project
        self.running[rec.job_id] = _Charge(
            project, self.project_ids.get(project, 0), rec.gpu_type, rec.gpus, charged_until_s
        )
        self.project_gpus[project] += rec.gpus

    def on_stop(self, rec: JobRecord, now: float) -> None:
        charge = self.running.pop(rec.job_id, None)
        if charge is None:
            return
        self._charge(rec.job_id, charge, now)
        self.project_gpus[charge.project] -= charge.gpus

    def charge_all(self, now: float) -> bool:
        """Charge every running job up to ``now`` if the charge interval has passed; True if it did."""
        self.now = now
        if now - self.last_charge_s < self.charge_interval_s:
            return False
        for job_id, charge in self.running.items():
            self._charge(job_id, charge, now)
        self.last_charge_s = now
        return True

    def charge_span(
        self, job_id: int, project: str, project_id: int, gpu_type: str, gpus: int, a_s: float, b_s: float
    ) -> None:
        """Charge a job that is not running any more for ``[a_s, b_s)`` (it ended while the hub was down)."""
        self._charge(job_id, _Charge(project, project_id, gpu_type, gpus, a_s), b_s)

    def next_charge_s(self) -> float | None:
        return self.last_charge_s + self.charge_interval_s if self.running else None

    def charged_until(self, job_id: int) -> float | None:
        charge = self.running.get(job_id)
        return charge.charged_until_s if charge else None

    def _charge(self, job_id: int, charge: _Charge, now: float) -> None:
        if now <= charge.charged_until_s:
            return
        for month, a, b in split_by_month(charge.charged_until_s, now):
            gpu_s = charge.gpus * (b - a)
            self.used_s[(charge.project, month)] += gpu_s
            self.by_type_s[(charge.project, charge.gpu_type)] += gpu_s
            self._rows.append(
                {
                    "job_id": job_id,
                    "project_id": charge.project_id,
                    "period": month,
                    "gpu_type": charge.gpu_type,
                    "gpu_seconds": gpu_s,
                    "first_s": a,
                    "last_s": b,
                }
            )
        charge.charged_until_s = now

    def take_usage_rows(self) -> list[dict[str, Any]]:
        """Usage to add to the store since the last call (merged per job, month and GPU type)."""
        merged: dict[tuple[int, str, str], dict[str, Any]] = {}
        for row in self._rows:
            key = (row["job_id"], row["period"], row["gpu_type"])
            if key in merged:
                merged[key]["gpu_seconds"] += row["gpu_seconds"]
                merged[key]["last_s"] = row["last_s"]
            else:
                merged[key] = dict(row)
        self._rows = []
        return list(merged.values())


class GpuHoursCheck:
    """Hold jobs of a project whose GPU-hours for the current period are used up."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def epoch(self, now: float) -> tuple[int, int]:
        """A new grant, or a new day (periods begin and end at UTC midnights), may release held jobs."""
        return self.ledger.version, int(now // 86400)

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
