"""A job's mutable record in the hub's state: its spec, state, reason, allocation and times."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from steppe.core.inventory import Allocation
from steppe.core.job import JobSpec, JobState, PendingReason, WorkloadClass


class PendingKind(NamedTuple):
    """What sets a waiting job's power need."""

    workload: WorkloadClass
    gpu_type: str | None
    qos: str
    gpus: int


def pending_kind(spec: JobSpec) -> PendingKind:
    return PendingKind(spec.workload, spec.gpu_type, spec.qos, spec.gpus)


@dataclass(slots=True, eq=False)
class JobRecord:
    """Everything the hub tracks about one job.

    ``executed_s`` is the run time accumulated in earlier runs (before the last preemption);
    while running, the current run adds ``now - last_start_s``.
    """

    spec: JobSpec
    seq: int
    state: JobState = JobState.PENDING
    reason: PendingReason = PendingReason.PRIORITY
    allocation: Allocation = ()
    gpu_type: str = ""
    first_start_s: float | None = None
    last_start_s: float = 0.0
    end_s: float | None = None
    executed_s: float = 0.0
    preemptions: int = 0
    cap_fraction: float = 1.0
    power_w: float = 0.0
    floor_power_w: float = 0.0
    reclaimable_before: float = 0.0
    epoch: int = 0
    expected_end_s: float = 0.0
    job_id: int = field(init=False)
    gpus: int = field(init=False)
    kind: PendingKind = field(init=False)

    def __post_init__(self) -> None:
        self.job_id = self.spec.job_id
        self.gpus = self.spec.gpus
        self.kind = pending_kind(self.spec)

    def executed_at(self, now: float) -> float:
        """Seconds run so far, including the current run."""
        if self.state is JobState.RUNNING:
            return self.executed_s + (now - self.last_start_s)
        return self.executed_s

    def remaining_limit_s(self) -> float:
        """Walltime left before the job hits its limit (counted over all its runs)."""
        return max(self.spec.walltime_s - self.executed_s, 0.0)
