"""Dependencies and begin times as admission checks, in both modes (Slurm's ``--dependency``, ``--begin``).

``DependencyCheck`` holds a job until what it depends on (``core/dependency.py``) has happened,
with Slurm's reasons:

* ``afterok:A``: A ended ``COMPLETED`` -> admissible; A still pending or running ->
  ``Dependency``; A ended otherwise -> ``DependencyNeverSatisfied`` (as Slurm, the job stays
  queued with that reason until someone cancels it);
* ``afternotok:A``: the other way round; ``afterany:A``: A ended, whatever its state;
  ``after:A``: A started (or ended);
* ``singleton``: no other job of the same user and name is running (``Dependency`` while one is);
* a job id the hub never had: ``DependencyNeverSatisfied``.

It is also a state listener: it records how the jobs others depend on ended (``want`` names
them; the twin knows every target of its trace before the replay, the live hub adds them as
dependent jobs arrive and asks ``lookup`` for jobs that ended before that, or before a restart).
A dependency is met or broken only when its job starts or stops, which changes the state's
generation, so the memoised cycle sees it without an epoch of its own.

``BeginAt`` holds a job with ``BeginTime`` until its ``begin_s`` and asks for a wake-up then.

Example: job 3 ``afterok:1,afterany:2``; job 1 completes, job 2 is running: ``Dependency``;
job 2 is cancelled: admissible; had job 1 failed: ``DependencyNeverSatisfied``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from steppe.core.job import TERMINAL_STATES, JobState, PendingReason
from steppe.core.records import JobRecord
from steppe.core.state import Snapshot

_NEVER = PendingReason.DEPENDENCY_NEVER_SATISFIED
_WAIT = PendingReason.DEPENDENCY


class DependencyCheck:
    """The admission check and state listener of the module docstring."""

    def __init__(self, targets: Iterable[int] = (), lookup: Callable[[int], JobState | None] | None = None) -> None:
        self.wanted: set[int] = set(targets)  # jobs others depend on: their ends are recorded
        self.ended: dict[int, JobState] = {}
        self.started: set[int] = set()  # wanted jobs that have started (``after``)
        self.lookup = lookup  # the state of a job not in memory (the live hub's store)
        self.running_names: Counter[tuple[str, str]] = Counter()  # (user, name) of running jobs (singleton)

    def want(self, job_ids: Iterable[int]) -> None:
        """Record how these jobs end (those a newly queued job depends on)."""
        self.wanted.update(job_ids)

    # -- listener ----------------------------------------------------------------------------------
    def on_submit(self, rec: JobRecord, now: float) -> None:
        if rec.spec.dependency:
            self.want(j for kind, j in rec.spec.dependency if kind != "singleton")

    def on_start(self, rec: JobRecord, now: float) -> None:
        self.running_names[(rec.spec.user, rec.spec.name)] += 1
        if rec.job_id in self.wanted:
            self.started.add(rec.job_id)

    def on_stop(self, rec: JobRecord, now: float) -> None:
        if rec.allocation:  # it ran (a pending job cancelled never did)
            key = (rec.spec.user, rec.spec.name)
            left = self.running_names[key] - 1
            if left > 0:
                self.running_names[key] = left
            else:
                del self.running_names[key]
        if rec.state in TERMINAL_STATES and rec.job_id in self.wanted:
            self.ended[rec.job_id] = rec.state

    # -- check -------------------------------------------------------------------------------------
    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        dependency = rec.spec.dependency
        if not dependency:
            return None
        waiting = False
        for kind, job_id in dependency:
            if kind == "singleton":
                waiting = waiting or self.running_names.get((rec.spec.user, rec.spec.name), 0) > 0
                continue
            ended = self.ended.get(job_id)
            if ended is None:
                other = snap.jobs.get(job_id)
                if other is not None and other.state not in TERMINAL_STATES:
                    if kind == "after" and (other.state is JobState.RUNNING or job_id in self.started):
                        continue
                    waiting = True
                    continue
                ended = other.state if other is not None else self.lookup(job_id) if self.lookup else None
                if ended is None:
                    return _NEVER  # a job this hub never had
                if ended in TERMINAL_STATES:
                    self.ended[job_id] = ended  # read once
                if ended not in TERMINAL_STATES:  # known to the store, not yet here (a restart): wait
                    waiting = True
                    continue
            if kind == "afterok" and ended is not JobState.COMPLETED:
                return _NEVER
            if kind == "afternotok" and ended is JobState.COMPLETED:
                return _NEVER
        return _WAIT if waiting else None


class BeginAt:
    """Hold a job until its ``begin_s`` (``BeginTime``), and ask for a wake-up then.

    >>> from steppe.core.job import JobSpec
    >>> check = BeginAt(); rec = JobRecord(JobSpec(1, 0.0, 1, 60.0, 60.0, "t", begin_s=100.0), 1)
    >>> check.begin_cycle(50.0); check.check(rec, None, None), check.next_wakeup(50.0)  # type: ignore[arg-type]
    (<PendingReason.BEGIN_TIME: 'BeginTime'>, 100.0)
    >>> check.begin_cycle(100.0); check.check(rec, None, None)  # type: ignore[arg-type]
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.next_s: float | None = None  # the earliest begin time of a job held in this cycle

    def begin_cycle(self, now: float) -> None:
        self.now = now
        self.next_s = None

    def check(self, rec: JobRecord, snap: Snapshot, tenant_extra: Counter[str]) -> PendingReason | None:
        begin = rec.spec.begin_s
        if begin is None or begin <= self.now:
            return None
        if self.next_s is None or begin < self.next_s:
            self.next_s = begin
        return PendingReason.BEGIN_TIME

    def next_wakeup(self, now: float) -> float | None:
        return self.next_s
