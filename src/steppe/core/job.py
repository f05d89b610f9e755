"""Jobs: the spec a user submits, their lifecycle states and the reasons a job waits.

A ``JobSpec`` is immutable and shared by the twin and the live hub. ``runtime_s`` is the
true run time, known only to the twin (a trace's logged run time); the scheduler sees only
``walltime_s``, the limit the user asked for (except in the labelled ``srtf`` oracle).

States and transitions use Slurm's names and are declared once, in ``TRANSITIONS``:

>>> can_transition(JobState.PENDING, JobState.RUNNING)
True
>>> can_transition(JobState.COMPLETED, JobState.RUNNING)
False
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobState(StrEnum):
    """Slurm job states (``job_state_codes``)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    PREEMPTED = "PREEMPTED"


TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT})

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.CANCELLED}),
    JobState.RUNNING: frozenset(
        {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT, JobState.PREEMPTED}
    ),
    # A preempted job is requeued (checkpoint-and-requeue) or cancelled.
    JobState.PREEMPTED: frozenset({JobState.PENDING, JobState.CANCELLED}),
    JobState.COMPLETED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.TIMEOUT: frozenset(),
}


def can_transition(src: JobState, dst: JobState) -> bool:
    """True when the lifecycle table allows ``src -> dst``."""
    return dst in TRANSITIONS[src]


class PendingReason(StrEnum):
    """Why a job waits: Slurm's vocabulary, extended with the hub's own checks."""

    NONE = "None"
    PRIORITY = "Priority"  # a higher-priority job is ahead in the queue
    RESOURCES = "Resources"  # the job is next but not enough GPUs are free
    QOS_GRP_GRES = "QOSGrpGRES"  # the tenant's concurrent-GPU quota is reached
    ASSOC_GRP_GRES_MINUTES = "AssocGrpGRESMinutes"  # the GPU-hour allocation is used up
    REQ_NODE_NOT_AVAIL = "ReqNodeNotAvail"  # no node of the requested GPU type can ever fit it
    POWER_CAP = "PowerCap"  # starting it would exceed the facility power cap
    AWAITING_REVIEW = "AwaitingReview"  # the project's AI-use review is not approved
    DATA_RESIDENCY = "DataResidency"  # its data may not go where GPUs are free
    BEGIN_TIME = "BeginTime"  # deferred to a later (cheaper or cleaner) window
    ENGINE_DOWN = "EngineDown"  # the engine that runs the hub's jobs (Slurm, Ray) does not answer
    DEPENDENCY = "Dependency"  # a job it depends on has not ended (or started) as it must yet
    DEPENDENCY_NEVER_SATISFIED = "DependencyNeverSatisfied"  # a job it depends on ended otherwise: never
    JOB_ARRAY_TASK_LIMIT = "JobArrayTaskLimit"  # its array already runs as many tasks as its %N allows


class WorkloadClass(StrEnum):
    """What a job does, which sets its power draw and whether it may be capped."""

    TRAINING = "training"
    INFERENCE = "inference"
    INTERACTIVE = "interactive"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a user asked for, plus (in the twin) how long the job really runs.

    >>> j = JobSpec(job_id=1, submit_s=0.0, gpus=8, runtime_s=3600.0, walltime_s=7200.0, tenant="kaznu")
    >>> j.project, j.gpu_seconds
    ('kaznu', 28800.0)
    """

    job_id: int
    submit_s: float
    gpus: int
    runtime_s: float
    walltime_s: float
    tenant: str
    project: str = ""
    gpu_type: str | None = None
    qos: str = "normal"
    preemptible: bool = True
    workload: WorkloadClass = WorkloadClass.TRAINING
    name: str = ""
    user: str = ""
    deferrable: bool = False
    deadline_s: float | None = None
    dependency: tuple[tuple[str, int], ...] = ()  # Slurm's --dependency, parsed (core/dependency.py)
    begin_s: float | None = None  # Slurm's --begin: not before this time
    array_job: int = 0  # a task of the array with this id (its first task's job id); 0: not an array task
    array_task: int = -1  # its index in the array (sbatch --array: %a)
    array_limit: int = 0  # at most this many tasks of its array run at once (%N); 0: no limit

    def __post_init__(self) -> None:
        if not self.project:
            object.__setattr__(self, "project", self.tenant)
        if self.gpus < 1:
            raise ValueError(f"job {self.job_id}: gpus must be >= 1, got {self.gpus}")
        if self.walltime_s <= 0:
            raise ValueError(f"job {self.job_id}: walltime_s must be > 0, got {self.walltime_s}")
        if self.runtime_s < 0:
            raise ValueError(f"job {self.job_id}: runtime_s must be >= 0, got {self.runtime_s}")

    @property
    def gpu_seconds(self) -> float:
        """GPU-seconds the job consumes if it runs to completion."""
        return self.gpus * self.runtime_s
