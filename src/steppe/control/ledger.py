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

* ``GpuHoursCheck``: a job starts only if its whole walltime fits what is left of its project's
  GPU-hours for the current period, after what is charged and what the project's running jobs
  (and the jobs it admitted earlier in the cycle) may still use up to their limits; else
  ``AssocGrpGRESMinutes``, with the sentence ``why`` gives (and, with ``require_allocation``, a
  project without an allocation for the current period waits with the same reason). So a
  balance is never overrun by more than the GPU-time not yet charged (at most a charge interval
  of the running jobs' GPUs); a job that could not fit even with nothing running is refused at
  submission (``app/submission.py``);
* ``ProjectGpuLimit``: the project's GPUs in use plus those started earlier in this cycle plus
  the job's would exceed ``max_gpus`` -> ``QOSGrpGRES``.

Example: 10 GPU-hours for 2026-Q1, 3 charged; a 2-GPU job with a 2-hour limit runs, 1 hour in
(reserving 2 more GPU-hours): a 1-GPU job asking 4 hours (4 GPU-hours) fits the 5 left and
starts; one asking 6 hours waits with ``AssocGrpGRESMinutes`` until the running job ends and
frees what it did not use (as Slurm's ``safe`` limits hold a job that could overrun).
"""

from __future__ import annotations

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
        self.running: dict[str, dict[int, JobRecord]] = defaultdict(dict)  # project -> its running jobs

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

    def reserved_s(self, project: str, now: float) -> float:
        """GPU-seconds the project's running jobs may still use, up to their walltime limits."""
        jobs = self.running.get(project)
        if not jobs:
            return 0.0
        return sum(r.gpus * max(r.spec.walltime_s - r.executed_at(now), 0.0) for r in jobs.values())

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
        self.running[rec.spec.project][rec.job_id] = rec

    def on_stop(self, rec: JobRecord, now: float) -> None:
        if rec.allocation:
            self.project_gpus[rec.spec.project] -= rec.gpus
        jobs = self.running.get(rec.spec.project)
        if jobs is not None:
            jobs.pop(rec.job_id, None)
            if not jobs:
                del self.running[rec.spec.project]


class StartedThisCycle:
    """Jobs started earlier in the current cycle, per project, as a check can tell them.

    Checks receive only per-*tenant* GPUs started earlier in the cycle, so a check that needs
    per-project figures infers them: after it admits a job (``admitted``), its next call
    (``follow``) sees whether that job's tenant count rose by the job's GPUs (the job started)
    and counts the job for its project. ``reset`` at each cycle's start.

    >>> from collections import Counter
    >>> from steppe.core.job import JobSpec
    >>> seen, extra = StartedThisCycle(), Counter()
    >>> rec = JobRecord(JobSpec(1, 0.0, 2, 60.0, 60.0, tenant="kaznu", project="kaznu/nlp"), seq=1)
    >>> seen.admitted(rec, extra); extra["kaznu"] += 2; seen.follow(extra)
    >>> seen.gpus["kaznu/nlp"], seen.gpu_s["kaznu/nlp"]
    (2, 120.0)
    """

    def __init__(self) -> None:
        self.gpus: Counter[str] = Counter()
        self.gpu_s: dict[str, float] = {}
        self._last: tuple[JobRecord, int] | None = None

    def reset(self) -> None:
        self.gpus.clear()
        self.gpu_s.clear()
        self._last = None

    def admitted(self, rec: JobRecord, tenant_extra: Counter[str]) -> None:
        self._last = (rec, tenant_extra[rec.spec.tenant])

    def follow(self, tenant_extra: Counter[str]) -> None:
        if self._last is None:
            return
        rec, before = self._last
        self._last = None
        if tenant_extra[rec.spec.tenant] == before + rec.gpus:
            project = rec.spec.project
            self.gpus[project] += rec.gpus
            self.gpu_s[project] = self.gpu_s.get(project, 0.0) + rec.gpus * rec.remaining_limit_s()


class GpuHoursCheck:
    """Hold a job whose walltime does not fit what is left of its project's GPU-hours (module docstring)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.started = StartedThisCycle()

    def begin_cycle(self, now: float) -> None:
        self.started.reset()

    def epoch(self, now: float) -> tuple[int, int, int]:
        """A new grant, or a new day (periods begin and end at UTC midnights), may release held jobs;
        charged usage may use a grant up, so a job held for another reason now waits with this one."""
        return self.ledger.version, self.ledger.charged, int(now // 86400)

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        self.started.follow(tenant_extra)
        project = rec.spec.project
        grant = self.ledger.current(project)
        if grant is None:
            return PendingReason.ASSOC_GRP_GRES_MINUTES if self.ledger.require_allocation else None
        need = rec.gpus * rec.remaining_limit_s()
        if need > self.left_s(project, grant) - self.started.gpu_s.get(project, 0.0):
            return PendingReason.ASSOC_GRP_GRES_MINUTES
        self.started.admitted(rec, tenant_extra)
        return None

    def left_s(self, project: str, grant: Grant) -> float:
        """GPU-seconds of ``grant`` neither charged nor reserved by the project's running jobs."""
        ledger = self.ledger
        return grant.gpu_seconds - ledger.used_in(project, grant) - ledger.reserved_s(project, ledger.now)

    def why(self, rec: JobRecord) -> str | None:
        """The sentence shown with a job this check holds (None when it would not hold it now)."""
        project, ledger = rec.spec.project, self.ledger
        grant = ledger.current(project)
        if grant is None:
            return f"project {project} has no GPU-hour allocation for now" if ledger.require_allocation else None
        need = rec.gpus * rec.remaining_limit_s()
        left, reserved = grant.gpu_seconds - ledger.used_in(project, grant), ledger.reserved_s(project, ledger.now)
        if need <= left - reserved:
            return None
        held = f", {reserved / 3600:,.2f} of them reserved by its running jobs" if reserved > 0 else ""
        return (f"needs {need / 3600:,.2f} GPU-hours ({rec.gpus} GPUs x its time limit); project {project} has "
                f"{max(left, 0.0) / 3600:,.2f} of its {grant.gpu_seconds / 3600:,.2f} GPU-hours for {grant.period} "
                f"left{held}")  # fmt: skip


class ProjectGpuLimit:
    """Hold jobs that would take their project past its allocation's ``max_gpus`` (GPUs in use plus
    those started earlier in this cycle, ``StartedThisCycle``)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.started = StartedThisCycle()

    def begin_cycle(self, now: float) -> None:
        self.started.reset()

    def epoch(self, now: float) -> tuple[int, int]:
        return self.ledger.version, int(now // 86400)

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        self.started.follow(tenant_extra)
        project = rec.spec.project
        grant = self.ledger.current(project)
        if grant is not None and grant.max_gpus is not None:
            held = self.ledger.project_gpus[project] + self.started.gpus[project]
            if held + rec.gpus > grant.max_gpus:
                return PendingReason.QOS_GRP_GRES
        self.started.admitted(rec, tenant_extra)
        return None
