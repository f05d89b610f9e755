"""The twin's executor: the executor protocol on a simulated clock; a job's work ends after its true run time.

On ``start`` it schedules the job's exit on the simulated clock (``schedule_end``): ``COMPLETED``
after the work left (in uncapped seconds) stretched by the job's slowdown at its GPU power cap.
A cap change (``recap``) closes the current segment of work and reschedules the exit. Each
scheduled exit carries a token; when the clock reaches it, ``fire`` reports it through the
``on_exit`` callback given to ``bind`` if its token is still current (the job was not stopped
or recapped since). A ``stop`` ends the job at once in simulated time: it reports an exit
(``0:15``, as a polite process) now. The fake decides no final state: walltime, cancels and
preemptions are the pipeline's stops, and the pipeline ends the job with the stop's intent.
Given ``report_completions`` (the replay gives the step's ``on_completed``), an exit the work
reaches is reported there as ``(job_id, epoch)``, without an ``ExitInfo``: it is always ``0:0``.

Example: runtime 100 s at a cap that stretches it by 1.05 from t=50: 50 s done uncapped,
50 x 1.05 = 52.5 s left, exit at 102.5 s. A walltime of 60 s on a 100 s job: the pipeline
stops it at 60 s (the exit scheduled at 100 s is stale by then) and it ends TIMEOUT.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from steppe.core.cluster import Cluster
from steppe.core.job import JobState
from steppe.core.records import JobRecord
from steppe.executors.base import ExitInfo, Handle, Inventory, OnExit

OnCompleted = Callable[[int, int], None]
"""``on_completed(job_id, epoch)``: the run ended on its own with exit ``0:0``."""

ScheduleEnd = Callable[[float, int, int, JobState], None]
"""``schedule_end(time_s, job_id, token, state)``: ask the clock to call ``fire((job_id, token, time_s))``
at ``time_s``; ``state`` is the end the work reaches (``COMPLETED``)."""


_COMPLETED = JobState.COMPLETED


def _ignore(job_id: int, epoch: int, info: ExitInfo) -> None:
    """Where exits go before ``bind``."""


class FakeExecutor:
    """The twin's executor; ``slowdown(rec)`` gives the run-time stretch at rec's cap (1 = none)."""

    def __init__(
        self,
        schedule_end: ScheduleEnd,
        slowdown: Callable[[JobRecord], float] | None = None,
        cluster: Cluster | None = None,
    ) -> None:
        self._schedule_end = schedule_end
        self._slowdown = slowdown
        self._cluster = cluster
        self._on_exit: OnExit = _ignore
        self._on_completed: OnCompleted | None = None  # None: completions go to ``on_exit`` too
        self._work_s: dict[int, float] = {}  # uncapped seconds of work done in closed segments
        # a running job's open segment, its scheduled exit's token and its run: one entry of numbers
        self._run: dict[int, tuple[float, float, int, int]] = {}  # job -> (start, stretch, token, epoch)
        self._dropped: set[int] = set()  # tokens of exits that will never come: their job ended by a stop
        self._next_token = 0

    # -- executor protocol ------------------------------------------------------------------------
    def bind(self, on_exit: OnExit, launch_of: Callable[[int], Any]) -> None:
        self._on_exit = on_exit

    def report_completions(self, on_completed: OnCompleted) -> None:
        """Report exits the work reaches (``0:0``) as ``on_completed(job_id, epoch)``; stops still
        go to ``on_exit``."""
        self._on_completed = on_completed

    def start(self, rec: JobRecord, now: float) -> None:
        job_id = rec.job_id
        stretch = self._slowdown(rec) if self._slowdown else 1.0
        done = self._work_s.get(job_id, 0.0) if self._work_s else 0.0  # as ``_open``, inlined: one per job
        work_left = rec.spec.runtime_s - done
        token = self._next_token = self._next_token + 1
        self._run[job_id] = (now, stretch, token, rec.epoch)
        self._schedule_end(now + (work_left * stretch if work_left > 0.0 else 0.0), job_id, token, _COMPLETED)

    def recap(self, rec: JobRecord, now: float) -> None:
        """The job's cap changed: bank the work done so far and reschedule its exit."""
        run = self._close(rec.job_id, now)
        self._open(rec, now, run[3] if run is not None else rec.epoch)

    def stop(self, rec: JobRecord, now: float) -> None:
        """The job stops now: a job still running ends (its exit is reported at once); a preempted
        one (already back in the queue) keeps its work to resume from."""
        job_id = rec.job_id
        run = self._close(job_id, now)
        token, epoch = (run[2], run[3]) if run is not None else (None, rec.epoch)
        if rec.state is not JobState.PENDING:
            self._work_s.pop(job_id, None)
            if token is not None:
                self._dropped.add(token)
        self._on_exit(job_id, epoch, ExitInfo(0, 15, now))

    def fire(self, exit: tuple[int, int, float]) -> bool:
        """The clock reached the scheduled exit ``(job_id, token, time_s)``: report it if it is
        still the job's current one.

        False when the exit was dropped (its job ended by a stop): nothing happens at this
        instant. An exit superseded by a recap or a preemption returns True, as a replay has
        always looked at the hub at that instant."""
        job_id, token, now = exit
        run = self._run.get(job_id)
        if run is not None and run[2] == token:
            del self._run[job_id]
            if self._work_s:
                self._work_s.pop(job_id, None)
            if self._on_completed is not None:
                self._on_completed(job_id, run[3])
            else:
                self._on_exit(job_id, run[3], ExitInfo(0, 0, now))
            return True
        if token in self._dropped:
            self._dropped.remove(token)
            return False
        return True

    def current(self, job_id: int, token: int) -> bool:
        """True when an exit with ``token`` is still the job's scheduled one."""
        run = self._run.get(job_id)
        return run is not None and run[2] == token

    def adopt(self, rec: JobRecord, handle: Handle) -> bool:
        return False  # a simulation never restarts

    def find_launch(self, job_id: int, start_s: float, wait_s: float = 10.0) -> Handle | None:
        return None

    def outcome(self, job_id: int, start_s: float | None = None) -> ExitInfo | None:
        return None

    def outputs(self, job_id: int) -> dict[str, tuple[int, int]]:
        return {}

    def kill(self, handle: Handle) -> None:
        """Nothing to kill: simulated jobs hold no processes."""

    def take_launched(self) -> dict[int, Handle]:
        return {}

    def inventory(self) -> Inventory:
        """The simulated fleet's GPUs, as it was given."""
        nodes = self._cluster.nodes if self._cluster is not None else ()
        return Inventory({n.name: tuple(range(n.gpus)) for n in nodes})

    def reachable(self) -> bool:
        """Always: the simulated fleet never goes away."""
        return True

    def close(self) -> None:
        """Nothing to close."""

    # -- work segments ----------------------------------------------------------------------------
    def _open(self, rec: JobRecord, now: float, epoch: int) -> None:
        stretch = self._slowdown(rec) if self._slowdown else 1.0
        done = self._work_s.get(rec.job_id, 0.0) if self._work_s else 0.0
        work_left = max(rec.spec.runtime_s - done, 0.0) * stretch
        self._next_token += 1
        token = self._next_token
        self._run[rec.job_id] = (now, stretch, token, epoch)
        self._schedule_end(now + work_left, rec.job_id, token, JobState.COMPLETED)

    def _close(self, job_id: int, now: float) -> tuple[float, float, int, int] | None:
        """Bank the work of ``job_id``'s open segment; its run entry (None: it had none)."""
        run = self._run.pop(job_id, None)
        if run is not None:
            start, stretch = run[0], run[1]
            self._work_s[job_id] = self._work_s.get(job_id, 0.0) + (now - start) / stretch
        return run
