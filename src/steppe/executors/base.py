"""The executor protocol: what the live hub's single writer asks of whatever runs its jobs.

An executor runs the jobs the writer committed: local processes today (``local``), a mock for
tests (``mock``), the Slurm and Ray engines next. The loop calls it in one order each step:
``recap`` (new GPU power caps), ``stop`` (cancels, walltime, preemptions), ``start`` (committed
starts); ends come back asynchronously through the ``on_exit`` callback given to ``bind`` (the
executor's event stream: each call is one ``Exited`` event, a state change with its exit code),
and the pipeline takes them at its next step. It never blocks the loop on an engine.
``inventory`` says what the engine sees (nodes and their GPU device indices), so a hub can
check its fleet against it.

The pipeline owns every decision: the executor never decides a job's final state. A stop
carries the pipeline's intent (cancel, walltime, preemption); the executor only reports the
exit, and the pipeline ends the job with the state of the intent it recorded.

After a restart the loop asks, for each job the store holds as running: ``find_launch`` (was
this start launched at all? the handle if so), ``adopt`` (watch it again; False when its process
is gone), ``outcome`` (how it ended while the hub was down) and, for a job whose GPUs are no
longer in the inventory, ``kill``. A handle is the executor's own opaque JSON (for processes: pid,
process group, start ticks, GPUs, the start it belongs to); the store keeps it with the job.

``EXECUTORS`` is the registry by name (``steppe serve --executor local``); an unknown name lists
the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from steppe.core.records import JobRecord

Handle = dict[str, Any]
"""An executor's record of a launched job, as JSON (stored with the job); a remote engine's handle
carries ``engine_id``, the engine's own job id as text (Slurm's job id, Ray's submission id), which
``steppe show`` prints."""


@dataclass(frozen=True)
class Launch:
    """What the store knows about how to run a job (the scheduler's ``JobSpec`` does not carry it);
    ``submit_dir``: where its user submitted it from (None: not known; ``executors/jobenv.py``)."""

    argv: list[str] | None
    script: str | None
    workdir: str
    env: dict[str, str]
    stdout_path: str
    stderr_path: str
    name: str
    project: str
    user: str
    user_id: int = 0
    submit_dir: str | None = None
    array: tuple[int, int, int] | None = None  # a task of an array: (array id, its index, the array's tasks)


@dataclass(frozen=True)
class ExitInfo:
    """How a job's process ended; ``signal`` is 0 unless a signal ended it; ``detail`` says why a
    launch failed (it then begins with ``launch failed:``)."""

    exit_code: int
    signal: int
    end_s: float
    detail: str = ""

    @property
    def slurm(self) -> str:
        """Slurm's ``exit:signal``.

        >>> ExitInfo(1, 0, 0.0).slurm, ExitInfo(0, 9, 0.0).slurm
        ('1:0', '0:9')
        """
        return f"{self.exit_code}:{self.signal}"


OnExit = Callable[[int, int, ExitInfo], None]
"""``on_exit(job id, epoch, ExitInfo)``: a job's process ended (called from any thread); the delivery
of the executor's event stream."""


class Exited(NamedTuple):
    """One event of an executor's stream: the run ``epoch`` of ``job_id`` ended as ``info`` says.

    >>> Exited(7, 1, ExitInfo(0, 15, 9.0)).info.slurm
    '0:15'
    """

    job_id: int
    epoch: int
    info: ExitInfo


@dataclass(frozen=True)
class Inventory:
    """The nodes and GPUs an engine sees: node name -> the device indices it may hand out;
    ``busy``: node name -> GPUs held there by work the hub did not start (jobs others submitted
    to the engine directly), which the hub must not give out; ``types``: node name -> its GPUs'
    type as the engine names it (Slurm's GRES type ``h200``, Ray's GPU-type resource ``H200``;
    absent or ``""`` when the engine does not say), from which a hub may build its fleet.

    >>> Inventory({"node001": (0, 1)}, busy={"node001": 1}, types={"node001": "h200"}).total_gpus
    2
    """

    gpus: dict[str, tuple[int, ...]]
    busy: dict[str, int] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    @property
    def total_gpus(self) -> int:
        return sum(len(ids) for ids in self.gpus.values())


class Executor(Protocol):
    """Runs committed starts; see the module docstring for the call order."""

    def bind(self, on_exit: OnExit, launch_of: Callable[[int], Launch]) -> None:
        """Where to report ends, and where to read how to run a job."""
        ...

    def start(self, rec: JobRecord, now: float) -> None:
        """Launch a committed start on ``rec.allocation``; a failure is reported as an exit, never raised."""
        ...

    def stop(self, rec: JobRecord, now: float) -> None:
        """Ask a running job to stop (SIGTERM, then SIGKILL after the grace period)."""
        ...

    def recap(self, rec: JobRecord, now: float) -> None:
        """Apply ``rec.cap_fraction`` to the job's GPUs (where the engine can)."""
        ...

    def adopt(self, rec: JobRecord, handle: Handle) -> bool:
        """Watch a job launched before a restart; False if it is gone."""
        ...

    def find_launch(self, job_id: int, start_s: float, wait_s: float = 10.0) -> Handle | None:
        """The handle of the start of ``job_id`` at ``start_s`` if it was launched, else None."""
        ...

    def outcome(self, job_id: int, start_s: float | None = None) -> ExitInfo | None:
        """How an ended job ended, if the executor recorded it."""
        ...

    def outputs(self, job_id: int) -> dict[str, tuple[int, int]]:
        """The identity of each output file the job itself opened (for the logs endpoint)."""
        ...

    def kill(self, handle: Handle) -> None:
        """End a launched job at once (its GPUs are no longer the hub's to give)."""
        ...

    def take_launched(self) -> dict[int, Handle]:
        """Handles of jobs launched since the last call (the loop stores them)."""
        ...

    def inventory(self) -> Inventory:
        """The nodes and GPUs this engine sees."""
        ...

    def reachable(self) -> bool:
        """Whether the engine answered its last contact; never blocks (a remote engine's poller keeps it).

        While it is False the pipeline starts nothing (pending jobs wait with ``EngineDown``) and
        running jobs are left as they are."""
        ...

    def close(self) -> None:
        """Stop watching; running jobs go on and are adopted by the next start of the hub."""
        ...
