"""A job's mutable record in the hub's state: its spec, state, reason, allocation and times."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from steppe.core.inventory import Allocation
from steppe.core.job import JobSpec, JobState, PendingReason, WorkloadClass


class PendingKind(NamedTuple):
    """What sets a waiting job's power need."""

    workload: WorkloadClass
    gpu_type: str | None
    qos: str
    gpus: int


_new_kind = tuple.__new__  # a named tuple made without its Python-level ``__new__``


def pending_kind(spec: JobSpec) -> PendingKind:
    return PendingKind(spec.workload, spec.gpu_type, spec.qos, spec.gpus)


@dataclass(slots=True, eq=False, init=False)
class JobRecord:
    """Everything the hub tracks about one job.

    While it runs, ``gpu_type``, ``pool`` and ``site`` say where (``"H100"``, ``"astana/H100"``,
    ``"astana"``: the pool is the site's GPUs of that type, ``core/cluster.py``; a hub that names
    no site has site ``""``).

    ``executed_s`` is the run time accumulated in earlier runs (before the last preemption);
    while running, the current run adds ``now - last_start_s``. Made from a spec and its
    submission sequence number (one flat ``__init__``: a replay makes one per job).
    """

    spec: JobSpec
    seq: int
    state: JobState
    reason: PendingReason
    allocation: Allocation
    gpu_type: str
    pool: str
    site: str
    first_start_s: float | None
    last_start_s: float
    end_s: float | None
    executed_s: float
    preemptions: int
    cap_fraction: float
    power_w: float
    floor_power_w: float
    reclaimable_before: float
    epoch: int
    expected_end_s: float
    job_id: int
    gpus: int
    kind: PendingKind

    def __init__(self, spec: JobSpec, seq: int) -> None:
        self.spec = spec
        self.seq = seq
        self.state = JobState.PENDING
        self.reason = PendingReason.PRIORITY
        self.allocation = ()
        self.gpu_type = ""
        self.pool = ""
        self.site = ""
        self.first_start_s = None
        self.last_start_s = 0.0
        self.end_s = None
        self.executed_s = 0.0
        self.preemptions = 0
        self.cap_fraction = 1.0
        self.power_w = 0.0
        self.floor_power_w = 0.0
        self.reclaimable_before = 0.0
        self.epoch = 0
        self.expected_end_s = 0.0
        self.job_id = spec.job_id
        self.gpus = gpus = spec.gpus
        self.kind = _new_kind(PendingKind, (spec.workload, spec.gpu_type, spec.qos, gpus))  # made in C

    def executed_at(self, now: float) -> float:
        """Seconds run so far, including the current run."""
        if self.state is JobState.RUNNING:
            return self.executed_s + (now - self.last_start_s)
        return self.executed_s

    def remaining_limit_s(self) -> float:
        """Walltime left before the job hits its limit (counted over all its runs)."""
        return max(self.spec.walltime_s - self.executed_s, 0.0)
