"""The twin's executor: a job ends after its true run time, or at its walltime limit.

On ``start`` it schedules the job's end on the simulated clock: ``COMPLETED`` after the work
left (in uncapped seconds) stretched by the job's slowdown at its GPU power cap, or
``TIMEOUT`` when the walltime limit comes first. A cap change (``recap``) closes the current
segment of work and reschedules the end. Each scheduled end carries a token; an end whose
token is no longer current (the job was preempted, recapped or cancelled since) is stale.

Example: runtime 100 s, walltime 60 s: the job ends at 60 s with TIMEOUT. Runtime 100 s at a
cap that stretches it by 1.05 from t=50: 50 s done uncapped, 50 x 1.05 = 52.5 s left, end 102.5 s.
"""

from __future__ import annotations

from collections.abc import Callable

from steppe.core.job import JobState
from steppe.core.records import JobRecord

ScheduleEnd = Callable[[float, int, int, JobState], None]
"""``schedule_end(time_s, job_id, token, state)``."""


class FakeExecutor:
    """Turns starts into end events; ``slowdown(rec)`` gives the run-time stretch at rec's cap (1 = none)."""

    def __init__(self, schedule_end: ScheduleEnd, slowdown: Callable[[JobRecord], float] | None = None) -> None:
        self._schedule_end = schedule_end
        self._slowdown = slowdown
        self._work_s: dict[int, float] = {}  # uncapped seconds of work done in closed segments
        self._segment: dict[int, tuple[float, float]] = {}  # open segment: (start, stretch)
        self._token: dict[int, int] = {}
        self._next_token = 0

    def start(self, rec: JobRecord, now: float) -> None:
        self._open(rec, now)

    def recap(self, rec: JobRecord, now: float) -> None:
        """The job's cap changed: bank the work done so far and reschedule its end."""
        self._close(rec.job_id, now)
        self._open(rec, now)

    def stop(self, rec: JobRecord, now: float) -> None:
        """Preempted or cancelled: bank the work (a requeued job resumes from it)."""
        self._close(rec.job_id, now)
        self._token.pop(rec.job_id, None)

    def current(self, job_id: int, token: int) -> bool:
        """True when an end event with ``token`` is still the job's scheduled end."""
        return self._token.get(job_id) == token

    def ended(self, job_id: int) -> None:
        """Forget a job that ended."""
        self._token.pop(job_id, None)
        self._segment.pop(job_id, None)
        self._work_s.pop(job_id, None)

    def _open(self, rec: JobRecord, now: float) -> None:
        stretch = self._slowdown(rec) if self._slowdown else 1.0
        self._segment[rec.job_id] = (now, stretch)
        work_left = max(rec.spec.runtime_s - self._work_s.get(rec.job_id, 0.0), 0.0) * stretch
        limit_left = max(rec.spec.walltime_s - rec.executed_at(now), 0.0)
        self._next_token += 1
        token = self._token[rec.job_id] = self._next_token
        if work_left <= limit_left:
            self._schedule_end(now + work_left, rec.job_id, token, JobState.COMPLETED)
        else:
            self._schedule_end(now + limit_left, rec.job_id, token, JobState.TIMEOUT)

    def _close(self, job_id: int, now: float) -> None:
        seg = self._segment.pop(job_id, None)
        if seg is not None:
            start, stretch = seg
            self._work_s[job_id] = self._work_s.get(job_id, 0.0) + (now - start) / stretch
