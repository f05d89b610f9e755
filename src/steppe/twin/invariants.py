"""Invariants checked during a replay; a violation stops it with what went wrong, and when.

* never more GPUs allocated than exist, on any node or in total;
* never more GPUs held by a tenant than its quota;
* a job starts only when pending and ends exactly once.
"""

from __future__ import annotations

from steppe.core.errors import SteppeError
from steppe.core.job import TERMINAL_STATES, JobState
from steppe.core.records import JobRecord
from steppe.core.state import HubState


class InvariantViolation(SteppeError):
    """The state broke a rule it must always keep."""


class InvariantChecker:
    """A state listener that checks every change."""

    def __init__(self, state: HubState) -> None:
        self.state = state
        self.finished: set[int] = set()
        self.checks = 0

    def on_submit(self, rec: JobRecord, now: float) -> None:
        if rec.job_id in self.finished:
            raise InvariantViolation(f"t={now}: job {rec.job_id} submitted after it finished")

    def on_start(self, rec: JobRecord, now: float) -> None:
        self.checks += 1
        inv = self.state.inventory
        if inv.total_free < 0 or any(f < 0 for f, _ in ((inv.free[n], n) for n, _ in rec.allocation)):
            raise InvariantViolation(f"t={now}: more GPUs allocated than exist after starting job {rec.job_id}")
        quota = self.state.cluster.tenant(rec.spec.tenant).gpu_quota
        held = self.state.tenant_gpus[rec.spec.tenant]
        if quota is not None and held > quota:
            raise InvariantViolation(f"t={now}: tenant {rec.spec.tenant} holds {held} GPUs over its quota {quota}")
        if rec.job_id in self.finished:
            raise InvariantViolation(f"t={now}: job {rec.job_id} started after it finished")

    def on_stop(self, rec: JobRecord, now: float) -> None:
        self.checks += 1
        if rec.state in TERMINAL_STATES:
            if rec.job_id in self.finished:
                raise InvariantViolation(f"t={now}: job {rec.job_id} finished twice")
            self.finished.add(rec.job_id)
        elif rec.state is not JobState.PREEMPTED:
            raise InvariantViolation(f"t={now}: job {rec.job_id} stopped in state {rec.state}")

    def at_end(self, submitted: int) -> None:
        """Every submitted job finished exactly once and all GPUs are free again."""
        if len(self.finished) != submitted:
            raise InvariantViolation(f"{submitted} jobs submitted but {len(self.finished)} finished")
        if self.state.inventory.total_free != self.state.cluster.total_gpus:
            raise InvariantViolation("GPUs still allocated after every job finished")
