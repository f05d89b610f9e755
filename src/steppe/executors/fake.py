"""The twin's executor: a job ends after its true run time, or at its walltime limit.

On ``start`` it schedules the job's end on the simulated clock: ``COMPLETED`` after the
remaining run time (stretched by ``slowdown`` when the job runs under a GPU power cap), or
``TIMEOUT`` when the walltime limit comes first. Each run carries the record's ``epoch``;
an end scheduled for an earlier run (the job was preempted since) is ignored.

Example: runtime 100 s, walltime 60 s: the job ends at 60 s with TIMEOUT.
"""

from __future__ import annotations

from collections.abc import Callable

from steppe.core.job import JobState
from steppe.core.records import JobRecord

ScheduleEnd = Callable[[float, int, int, JobState], None]
"""``schedule_end(time_s, job_id, epoch, state)``."""


class FakeExecutor:
    """Turns starts into end events; ``slowdown(rec)`` gives a run-time stretch factor (1 = none)."""

    def __init__(self, schedule_end: ScheduleEnd, slowdown: Callable[[JobRecord], float] | None = None) -> None:
        self._schedule_end = schedule_end
        self._slowdown = slowdown

    def start(self, rec: JobRecord, now: float) -> None:
        stretch = self._slowdown(rec) if self._slowdown else 1.0
        work_left = max(rec.spec.runtime_s - rec.executed_s, 0.0) * stretch
        limit_left = rec.remaining_limit_s()
        if work_left <= limit_left:
            self._schedule_end(now + work_left, rec.job_id, rec.epoch, JobState.COMPLETED)
        else:
            self._schedule_end(now + limit_left, rec.job_id, rec.epoch, JobState.TIMEOUT)

    def stop(self, rec: JobRecord, now: float) -> None:
        """Nothing to kill: the stale end event is ignored by its epoch."""
