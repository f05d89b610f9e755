"""The Slurm executor: the hub's jobs run as Slurm batch jobs on the nodes Steppe placed them on.

Steppe keeps every decision (queue order, placement, preemption, walltime, caps); Slurm only
runs. ``steppe serve --executor slurm --executor-opt conf=/etc/slurm/slurm.conf`` sets it up;
its options (``--executor-opt KEY=VALUE``):

* ``conf``: the cluster's ``slurm.conf`` (``SLURM_CONF`` of every Slurm command; default: the
  hub's own ``SLURM_CONF``, else Slurm's default location);
* ``partition``: the partition to submit to and take the inventory from (default: Slurm's default
  partition; the inventory then lists every node with GPUs);
* ``poll_s``: seconds between two looks at slurmctld (default 1);
* ``timeout_s``: the longest one Slurm command may take (default 30);
* ``gpu_type``: how Steppe's GPU type names Slurm's GRES type: ``lower`` (default, ``H200`` ->
  ``gpu:h200``), ``same``, or ``none`` (untyped ``gpu:N``);
* ``bin_dir``: where Slurm's commands are (default: ``PATH``).

How it works, in the protocol's order (``steppe.executors.base``):

* ``start`` builds the submission (``slurm_submit``: nodes, GPUs, time limit, the marker
  ``steppe:job=J:start=S`` in ``--comment``, the job's explicit environment, its account) and
  hands it to the command thread, so the loop never waits on Slurm. That thread writes the
  launch intent (``<data-dir>/slurm/<job id>.json``) before ``sbatch --parsable`` and the Slurm
  job id after it; ``take_launched`` returns the handle ``{"slurm_job_id", "job_id", "start_s",
  "marker", "uid", "devices"}`` (devices once Slurm has placed it).
* A poller thread reads ``squeue --json`` and ``sinfo --json`` every ``poll_s`` (and, for a
  followed job that left the active list, ``squeue --json -t all -j IDS``): it
  reports each end through ``on_exit`` with Slurm's ``exit:signal`` (a job Slurm ended ``0:0``
  in a state that is not ``COMPLETED``, e.g. cancelled before it ran, reports SIGTERM or, for a
  failed node, SIGKILL: ``slurm_cli.SIGNAL_OF_STATE``), records it in the job's record file, and
  keeps the inventory: the nodes and GPUs Slurm offers, and ``busy``, the GPUs that Slurm jobs
  Steppe did not submit hold on each node.
* ``reachable()`` is the poller's last answer: False as soon as slurmctld stops answering (a
  refused connection fails within Slurm's own connect timeout, a few seconds), True again when
  it answers. While it is down nothing is lost: Slurm jobs run on, commands wait in order and
  run when it is back (a submission first looks for its marker, so it is never sent twice), and
  ends that happened meanwhile are reported then.
* ``stop``: ``scancel --signal=TERM --full`` (the batch script and every step), then after the
  hub's grace period ``scancel --signal=KILL --batch`` (the batch script and every process it
  started; the job then ends and Slurm ends its steps); a job Slurm still queues is cancelled.
* ``recap``: the new cap is appended to the job's comment (``scontrol update JobId=N
  Comment=steppe:job=J:start=S:cap=0.70``), readable inside the job with ``scontrol show job
  $SLURM_JOB_ID``; a Slurm prolog or the node's power agent applies it to the GPUs with NVML
  (``docs/executors.md``).
* After a restart, ``find_launch`` reads the launch intent: with a Slurm id, launched; without
  one, it looks for the marker in Slurm (waiting for an ``sbatch`` still running, and killing it
  after ``wait_s``), so a start is neither lost nor run twice. ``adopt`` follows the Slurm job
  of a handle; ``outcome`` reads its end from the record, slurmctld (``MinJobAge``) or
  ``sacct``.

Jobs run as their user's account (``--uid``/``--gid`` from the ``AccountMap`` when the hub is
root). Slurm needs a passwd entry for it on the submitting host and on the nodes, so a hub user
must map to an existing account (``steppe serve --accounts``); a hub-created uid with no passwd
entry fails its launch with a message that says so.

Example (what ``steppe serve --executor slurm`` builds)::

    ex = SlurmExecutor(Path("/srv/steppe"), ["gpu01", "gpu02"], grace_s=10,
                       options={"conf": "/etc/slurm/slurm.conf", "partition": "gpu"})
    ex.bind(on_exit, launch_of)
    ex.start(rec, now)          # sbatch --nodelist=gpu01 --gres=gpu:h200:4 ... from a thread
    ex.inventory().busy         # {"gpu02": 2}: GPUs held by jobs submitted to Slurm directly
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import queue
import signal
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steppe.core.errors import SteppeError
from steppe.executors.accounts import AccountMap, running_as_root
from steppe.executors.base import ExitInfo, Handle, Inventory, Launch, OnExit
from steppe.executors.jobenv import steppe_variables
from steppe.executors.proclist import command_lines
from steppe.executors.safefile import open_no_symlinks
from steppe.executors.slurm_cli import (
    SIGNAL_OF_STATE,
    SlurmCli,
    SlurmCommandError,
    SlurmJob,
    SlurmNode,
    SlurmTimeout,
    SlurmUnreachable,
    conf_from_env,
)
from steppe.executors.slurm_submit import (
    JOB_PATH,
    batch_script,
    check_text,
    escape_path,
    gpu_request,
    job_env,
    marker,
    parse_marker,
    time_limit_minutes,
)
from steppe.executors.wrapper import LAUNCH_FAILED, write_json

if TYPE_CHECKING:
    from steppe.core.records import JobRecord

log = logging.getLogger("steppe.executor.slurm")
SIGNAL_TIMEOUT_S = 5.0
COMMAND_THREADS = 4
"""Threads running Slurm commands (each job's in order): sbatch is a round trip to slurmctld."""
OPTIONS = ("conf", "partition", "poll_s", "timeout_s", "gpu_type", "bin_dir")


@dataclass(frozen=True)
class SlurmOptions:
    """The executor's ``--executor-opt`` settings (see the module docstring).

    >>> SlurmOptions.parse({"conf": "/etc/slurm/slurm.conf", "poll_s": "0.5"}).poll_s
    0.5
    >>> SlurmOptions.parse({"confx": "/x"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    steppe.core.errors.SteppeError: --executor-opt confx: not an option of the slurm executor; valid: conf, ...
    """

    conf: str | None = None
    partition: str | None = None
    poll_s: float = 1.0
    timeout_s: float = 30.0
    gpu_type: str = "lower"
    bin_dir: str | None = None

    @staticmethod
    def parse(options: Mapping[str, str]) -> SlurmOptions:
        for key in options:
            if key not in OPTIONS:
                raise SteppeError(
                    f"--executor-opt {key}: not an option of the slurm executor; valid: {', '.join(OPTIONS)}"
                )
        numbers: dict[str, float] = {}
        for key in ("poll_s", "timeout_s"):
            if key in options:
                try:
                    numbers[key] = float(options[key])
                except ValueError:
                    numbers[key] = -1.0
                if not 0.05 <= numbers[key] <= 3600:
                    raise SteppeError(f"--executor-opt {key}={options[key]}: expected seconds between 0.05 and 3600")
        gpu_type = options.get("gpu_type", "lower")
        if gpu_type not in ("lower", "same", "none"):
            raise SteppeError(f"--executor-opt gpu_type={gpu_type}: expected lower, same or none")
        return SlurmOptions(
            options.get("conf") or conf_from_env(), options.get("partition") or None,
            numbers.get("poll_s", 1.0), numbers.get("timeout_s", 30.0), gpu_type, options.get("bin_dir") or None,
        )  # fmt: skip

    def gres_type(self, steppe_type: str) -> str:
        """Slurm's GRES type for one of Steppe's GPU types."""
        if self.gpu_type == "none":
            return ""
        return steppe_type.lower() if self.gpu_type == "lower" else steppe_type


@dataclass
class _Job:
    """A Steppe job the executor follows in Slurm."""

    job_id: int
    epoch: int
    start_s: float
    marker: str
    uid: int | None
    slurm_id: int | None = None
    submitting: bool = False
    registered_at: float = 0.0
    stopping: bool = False
    started: bool = False
    outputs_known: bool = False
    devices: list[list[Any]] = field(default_factory=list)
    timer: threading.Timer | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _Submission:
    args: list[str]
    script: str
    env: dict[str, str]
    record: dict[str, Any]


class SlurmExecutor:
    """Runs the hub's jobs as Slurm batch jobs; see the module docstring."""

    def __init__(
        self,
        data_dir: Path,
        node_names: list[str],
        grace_s: float = 10.0,
        accounts: AccountMap | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        self.opts = SlurmOptions.parse(options or {})
        self.cli = SlurmCli(self.opts.conf, self.opts.timeout_s, self.opts.bin_dir)
        for command in ("sbatch", "squeue", "sinfo", "scancel", "scontrol"):
            self.cli.path(command)  # a missing client command is a start-up error, not a failed job
        self.accounts = accounts or AccountMap(root=running_as_root())
        self.records_dir = Path(data_dir) / "slurm"
        self.spool_dir = Path(data_dir) / "spool"
        for path, mode in ((self.records_dir, 0o700), (self.spool_dir, 0o711 if self.accounts.root else 0o700)):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(mode)
        self.grace_s = grace_s
        self.node_names = list(node_names)
        self._lock = threading.Lock()
        self._jobs: dict[int, _Job] = {}
        self._ours: set[int] = set()
        self._launched: dict[int, Handle] = {}
        self._queues: list[queue.Queue[Callable[[], None] | None]] = [queue.Queue() for _ in range(COMMAND_THREADS)]
        self._reachable = False
        self._inventory = Inventory({})
        self._snapshot: tuple[float, dict[int, SlurmJob]] | None = None
        self._on_exit: OnExit = lambda job_id, epoch, info: None
        self._launch_of: Callable[[int], Launch] | None = None
        self._closed = threading.Event()
        self._poll_once()
        self._threads = [
            threading.Thread(target=self._poll_loop, name="slurm-poller", daemon=True),
            *(threading.Thread(target=self._command_loop, args=(q,), name=f"slurm-commands-{i}", daemon=True)
              for i, q in enumerate(self._queues)),
        ]  # fmt: skip
        for thread in self._threads:
            thread.start()

    def bind(self, on_exit: OnExit, launch_of: Callable[[int], Launch]) -> None:
        """Where to report ends, and where to read how to run a job."""
        self._on_exit, self._launch_of = on_exit, launch_of

    def inventory(self) -> Inventory:
        """The nodes and GPUs Slurm offers, and the GPUs jobs Steppe did not submit hold (as last polled)."""
        return self._inventory

    def reachable(self) -> bool:
        """Whether slurmctld answered the poller's last look (never blocks)."""
        return self._reachable

    def work_dir(self, job_id: int) -> Path:
        """The job's own directory (``<data-dir>/spool/<id>``, owned by its account)."""
        return self.spool_dir / str(job_id)

    def record_path(self, job_id: int) -> Path:
        """The hub's record of a job's latest start: launch intent, Slurm id, outputs, end."""
        return self.records_dir / f"{job_id}.json"

    # -- executor protocol ---------------------------------------------------------------------------
    def start(self, rec: JobRecord, now: float) -> None:
        """Queue the submission of a committed start; a job that cannot be submitted ends ``LaunchFailed``."""
        job = _Job(rec.job_id, rec.epoch, rec.last_start_s, marker(rec.job_id, rec.last_start_s), None)
        try:
            if self._launch_of is None:
                raise RuntimeError("SlurmExecutor.bind() was not called")
            submission = self._submission(rec, self._launch_of(rec.job_id), job)
        except Exception as exc:  # a bad byte, an unknown account, a node Slurm lacks: this job fails
            log.warning("job %s: launch failed: %s", rec.job_id, exc)
            self._on_exit(rec.job_id, rec.epoch, ExitInfo(1, 0, time.time(), f"{LAUNCH_FAILED}{exc}"))
            return
        job.uid, job.submitting = submission.record["uid"], True
        with self._lock:
            self._jobs[rec.job_id] = job
        self._queue(job).put(lambda: self._submit(job, submission))

    def stop(self, rec: JobRecord, now: float) -> None:
        """SIGTERM the job's processes now, SIGKILL them after the grace period (a queued job is cancelled)."""
        with self._lock:
            job = self._jobs.get(rec.job_id)
            if job is None or job.stopping:
                return
            job.stopping = True
        self._queue(job).put(lambda: self._signal(job, "TERM"))
        job.timer = threading.Timer(self.grace_s, self._queue(job).put, args=(lambda: self._signal(job, "KILL"),))
        job.timer.daemon = True
        job.timer.start()

    def recap(self, rec: JobRecord, now: float) -> None:
        """Append the new GPU cap to the job's comment, where its node's prolog or agent reads it."""
        with self._lock:
            job = self._jobs.get(rec.job_id)
        if job is not None:
            self._queue(job).put(lambda: self._set_cap(job, rec.cap_fraction))

    def outputs(self, job_id: int) -> dict[str, tuple[int, int]]:
        """The identity (device, inode) of each output file Slurm opened for the job as its account."""
        data = (self._read_record(job_id) or {}).get("outputs") or {}
        return {k: (int(v[0]), int(v[1])) for k, v in data.items() if k in ("stdout", "stderr")}

    def take_launched(self) -> dict[int, Handle]:
        """Handles of jobs submitted (or placed by Slurm) since the last call."""
        with self._lock:
            out, self._launched = self._launched, {}
        return out

    def kill(self, handle: Handle) -> None:
        """End a launched job at once (SIGKILL and cancel; its GPUs are no longer the hub's)."""
        slurm_id = handle.get("slurm_job_id")
        job = _Job(int(handle.get("job_id", 0)), 0, float(handle.get("start_s", 0.0)), str(handle.get("marker", "")),
                   handle.get("uid"), None if slurm_id is None else int(slurm_id))  # fmt: skip
        self._queue(job).put(lambda: self._signal(job, "KILL", tracked=False))

    def close(self) -> None:
        """Stop the threads; Slurm jobs go on and are adopted by the next start of the hub."""
        self._closed.set()
        for commands in self._queues:
            commands.put(None)
        with self._lock:
            for job in self._jobs.values():
                if job.timer is not None:
                    job.timer.cancel()
        for thread in self._threads:
            thread.join(timeout=1.0)

    # -- restarts ------------------------------------------------------------------------------------
    def find_launch(self, job_id: int, start_s: float, wait_s: float = 10.0) -> Handle | None:
        """The handle of the start of ``job_id`` at ``start_s`` if it reached Slurm, else None.

        No launch intent for that start: never submitted. An intent with a Slurm id: submitted.
        An intent without: look for its marker in Slurm, waiting up to ``wait_s`` for an
        ``sbatch`` of it still running (then killed). If slurmctld does not answer in that time,
        the handle has no Slurm id and the poller finds the job by its marker once it answers.
        """
        record = self._read_record(job_id)
        if record is None or record.get("start_s") != start_s:
            return None
        if record.get("slurm_id") is not None:
            return self._handle_of(record)
        deadline = time.monotonic() + wait_s
        while True:
            submitters = sbatch_pids(str(record["marker"]))
            try:
                found = self._find_marker(str(record["marker"]), record.get("uid"), self.cli.jobs(all_states=True))
            except (SlurmUnreachable, SlurmCommandError):
                found, answered = None, False
            else:
                answered = True
            if found is not None:
                record["slurm_id"] = found
                write_json(self.record_path(job_id), record)
                return self._handle_of(record)
            if answered and not submitters:
                return None
            if time.monotonic() > deadline:
                for pid in submitters:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                if not answered:
                    return self._handle_of(record)  # no Slurm id: resolved by the poller later
                deadline = float("inf")  # its sbatch is gone: one more look decides
            time.sleep(0.1)

    def adopt(self, rec: JobRecord, handle: Handle) -> bool:
        """Follow the Slurm job of a handle again; False when Slurm says it has ended (or forgot it)."""
        slurm_id = handle.get("slurm_job_id")
        job = _Job(rec.job_id, rec.epoch, float(handle.get("start_s", rec.last_start_s)),
                   str(handle.get("marker") or marker(rec.job_id, rec.last_start_s)), handle.get("uid"),
                   None if slurm_id is None else int(slurm_id))  # fmt: skip
        if job.slurm_id is not None:
            snapshot = self._fresh_snapshot()
            if snapshot is not None:  # not among the active jobs: it has ended (outcome() says how)
                seen = snapshot.get(job.slurm_id)
                if seen is None or seen.ended:
                    return False
                job.started = seen.holds_gpus
            job.registered_at = time.monotonic()
        job.devices = list(handle.get("devices", []))
        job.outputs_known = bool((self._read_record(rec.job_id) or {}).get("outputs"))
        with self._lock:
            self._jobs[rec.job_id] = job
            if job.slurm_id is not None:
                self._ours.add(job.slurm_id)
        return True

    def outcome(self, job_id: int, start_s: float | None = None) -> ExitInfo | None:
        """How a job's start ended: from its record, slurmctld, or Slurm's accounting; None if unknown."""
        record = self._read_record(job_id)
        if record is None or (start_s is not None and record.get("start_s") != start_s):
            return None
        if record.get("exit"):
            e = record["exit"]
            return ExitInfo(int(e["exit_code"]), int(e["signal"]), float(e["end_s"]), str(e.get("detail", "")))
        if record.get("slurm_id") is None:
            return None
        slurm_id = int(record["slurm_id"])
        try:
            held = self.cli.jobs(ids=[slurm_id])
        except (SlurmUnreachable, SlurmCommandError):
            return None
        seen = held[0] if held else self.cli.ended(slurm_id)
        if seen is None or not seen.ended:
            return None
        info = exit_info(seen)
        record["exit"] = _exit_json(info)
        write_json(self.record_path(job_id), record)
        return info

    # -- the command thread --------------------------------------------------------------------------
    def _queue(self, job: _Job) -> queue.Queue[Callable[[], None] | None]:
        """The command queue of a job: one job's commands run in order, different jobs' side by side."""
        return self._queues[job.job_id % len(self._queues)]

    def _command_loop(self, commands: queue.Queue[Callable[[], None] | None]) -> None:
        """Run queued commands in order; while slurmctld is away, wait and run the same command again."""
        while True:
            action = commands.get()
            if action is None:
                return
            while not self._closed.is_set():
                try:
                    action()
                    break
                except SlurmUnreachable as exc:
                    log.warning("slurm: %s; retrying when slurmctld answers", exc)
                    self._reachable = False
                    while not self._reachable and not self._closed.wait(0.2):
                        pass
                except Exception as exc:  # never let one command stop the thread
                    log.warning("slurm: command failed: %s", exc)
                    break

    def _submit(self, job: _Job, submission: _Submission) -> None:
        path = self.record_path(job.job_id)
        record = self._read_record(job.job_id)
        if record is not None and record.get("marker") == job.marker and record.get("slurm_id") is None:
            found = self._find_marker(job.marker, job.uid, self.cli.jobs(all_states=True))  # did a try reach Slurm?
            if found is not None:
                self._register(job, found)
                return
        else:
            write_json(path, submission.record)  # the launch intent, durable before sbatch runs
        try:
            out = self.cli.run("sbatch", *submission.args, stdin=submission.script, env=submission.env)
            slurm_id = int(out.strip().split(";")[0])
        except SlurmCommandError as exc:
            self._fail(job, f"{LAUNCH_FAILED}{exc}")
            return
        except ValueError:
            self._fail(job, f"{LAUNCH_FAILED}sbatch printed no job id")
            return
        self._register(job, slurm_id)

    def _register(self, job: _Job, slurm_id: int) -> None:
        record = self._read_record(job.job_id) or {}
        record["slurm_id"] = slurm_id
        write_json(self.record_path(job.job_id), record)
        with self._lock:
            job.slurm_id, job.submitting, job.registered_at = slurm_id, False, time.monotonic()
            self._ours.add(slurm_id)
            if self._jobs.get(job.job_id) is job:
                self._launched[job.job_id] = self._handle(job)

    def _signal(self, job: _Job, name: str, tracked: bool = True) -> None:
        """``TERM``: the batch script and every step; ``KILL``: the batch script and all it started.

        A job Slurm has not started yet is cancelled outright: a signal to it would wait until it
        starts (``scancel --signal`` blocks on a pending job); so would one that does not finish in
        ``SIGNAL_TIMEOUT_S``.
        """
        if tracked and self._jobs.get(job.job_id) is not job:
            return  # it has ended
        if job.slurm_id is None:
            found = self._find_marker(job.marker, job.uid, self.cli.jobs(all_states=True)) if job.marker else None
            if found is None:
                return
            job.slurm_id = found
        sid = str(job.slurm_id)
        snapshot = self._fresh_snapshot() or {}
        seen = snapshot.get(job.slurm_id)
        if not (job.started or (seen is not None and seen.holds_gpus)):
            self._cancel(sid)
            return
        flag = "--full" if name == "TERM" else "--batch"  # --full with KILL waits for Slurm's KillWait
        try:
            self.cli.run("scancel", f"--signal={name}", flag, sid, timeout_s=SIGNAL_TIMEOUT_S)
        except (SlurmCommandError, SlurmTimeout):  # ending, or not started after all: cancel it outright
            self._cancel(sid)

    def _cancel(self, sid: str) -> None:
        with contextlib.suppress(SlurmCommandError):  # it has ended meanwhile
            self.cli.run("scancel", sid)

    def _set_cap(self, job: _Job, cap: float) -> None:
        if self._jobs.get(job.job_id) is not job or job.slurm_id is None:
            return
        with contextlib.suppress(SlurmCommandError):  # ended meanwhile
            self.cli.run("scontrol", "update", f"JobId={job.slurm_id}", f"Comment={job.marker}:cap={cap:.2f}")
        record = self._read_record(job.job_id) or {}
        record["cap"] = cap
        write_json(self.record_path(job.job_id), record)

    # -- the poller ----------------------------------------------------------------------------------
    def _poll_loop(self) -> None:
        while not self._closed.wait(self.opts.poll_s):
            try:
                self._poll_once()
            except Exception:  # keep polling whatever one look returned
                log.exception("slurm: poll failed")

    def _poll_once(self) -> None:
        taken = time.monotonic()
        with self._lock:
            followed = list(self._jobs.values())
        try:
            jobs = self.cli.jobs()
            nodes = self.cli.nodes()
            ended = [j.slurm_id for j in followed if j.slurm_id is not None and j.registered_at <= taken]
            ended = [sid for sid in ended if sid not in {x.slurm_id for x in jobs}]
            if ended:  # followed jobs that have left the active list: their ends
                jobs += self.cli.jobs(ids=ended)
        except (SlurmUnreachable, SlurmCommandError) as exc:
            if self._reachable:
                log.warning("slurm: slurmctld does not answer: %s", exc)
            self._reachable = False
            return
        by_id = {j.slurm_id: j for j in jobs}
        self._snapshot = (taken, by_id)
        with self._lock:
            self._ours = {sid for sid in self._ours if sid in by_id} | {
                j.slurm_id for j in self._jobs.values() if j.slurm_id is not None
            }  # ours that are still active (an ended one holds no GPU)
            ours = set(self._ours)
        self._inventory = self._take_inventory(nodes, jobs, ours)
        self._reachable = True
        for job in followed:
            self._follow(job, by_id, taken)

    def _follow(self, job: _Job, by_id: dict[int, SlurmJob], taken: float) -> None:
        if job.slurm_id is None:
            if not job.submitting:  # adopted without a Slurm id: find it by its marker
                try:
                    found = self._find_marker(job.marker, job.uid, self.cli.jobs(all_states=True))
                except (SlurmUnreachable, SlurmCommandError):
                    return
                if found is not None:
                    self._register(job, found)
                else:
                    self._fail(job, f"{LAUNCH_FAILED}its submission never reached Slurm")
            return
        if job.registered_at > taken:
            return  # submitted after this look began
        seen = by_id.get(job.slurm_id)
        if seen is not None and parse_marker(seen.comment) not in (None, parse_marker(job.marker)):
            seen = None  # its id now names another job: slurmctld lost ours (a crash before it saved its state)
        if seen is None:  # slurmctld forgot it (past MinJobAge): accounting, else an end we cannot read
            try:
                accounted = self.cli.ended(job.slurm_id)
            except SlurmUnreachable:
                return
            if accounted is not None:
                self._finish(job, exit_info(accounted))
            else:
                self._finish(job, ExitInfo(0, 9, time.time()) if job.stopping else ExitInfo(1, 0, time.time()))
            return
        if seen.holds_gpus and not job.started:
            job.started = True
            names = {name: i for i, name in enumerate(self.node_names)}
            job.devices = [[names[n], list(ids)] for n, ids in seen.devices.items() if n in names]
            with self._lock:
                if self._jobs.get(job.job_id) is job:
                    self._launched[job.job_id] = self._handle(job)
        if (job.started or seen.ended) and not job.outputs_known:
            self._note_outputs(job)
        if seen.ended:
            self._finish(job, exit_info(seen))

    def _take_inventory(self, nodes: list[SlurmNode], jobs: list[SlurmJob], ours: set[int]) -> Inventory:
        part = self.opts.partition
        offered = [n for n in nodes if n.gpus and n.usable and (part is None or part in n.partitions)]
        gpus = {n.name: tuple(range(n.gpus)) for n in offered}
        types = {n.name: n.gpu_type for n in offered}
        busy: dict[str, int] = {}
        for j in jobs:
            if j.holds_gpus and j.slurm_id not in ours:
                for node, count in j.gpus.items():
                    if node in gpus:
                        busy[node] = busy.get(node, 0) + count
        return Inventory(gpus, busy, types)

    # -- internals -----------------------------------------------------------------------------------
    def _submission(self, rec: JobRecord, launch: Launch, job: _Job) -> _Submission:
        account = self.accounts.account(launch.user_id, launch.user)
        if account.uid is not None:
            try:
                pwd.getpwuid(account.uid)
            except KeyError:
                raise SteppeError(
                    f"hub user {launch.user} runs as uid {account.uid}, which has no passwd entry; Slurm runs jobs "
                    "only as accounts its hosts know: map the user to an existing account with --accounts"
                ) from None
        try:
            nodes = [self.node_names[n] for n, _ in rec.allocation]
        except IndexError:
            raise SteppeError(f"allocation {list(rec.allocation)} names a node this hub does not know") from None
        work = self.work_dir(rec.job_id)
        work.mkdir(mode=0o700, exist_ok=True)
        if account.uid is not None:
            os.chown(work, account.uid, account.gid if account.gid is not None else account.uid)
        base = {"PATH": os.environ.get("PATH", JOB_PATH) if account.shared else JOB_PATH,
                "HOME": str(account.home or work), "USER": account.name, "LOGNAME": account.name,
                "TMPDIR": str(work)}  # fmt: skip
        steppe = steppe_variables(rec, launch, nodes)  # Slurm sets its own SLURM_* in the job
        steppe["STEPPE_GPU_CAP"] = f"{rec.cap_fraction:.2f}"
        env = job_env(base, launch.env, steppe)
        script = batch_script(rec.job_id, job.start_s, launch.argv, launch.script, launch.workdir, f"{work}/script")
        args = ["--parsable", "--no-requeue", "--open-mode=append", f"--job-name={launch.name or rec.job_id}",
                f"--comment={job.marker}", f"--nodes={len(nodes)}", f"--nodelist={','.join(nodes)}",
                gpu_request(rec.allocation, self.opts.gres_type(rec.gpu_type)), f"--chdir={launch.workdir}",
                f"--output={escape_path(launch.stdout_path)}", f"--error={escape_path(launch.stderr_path)}",
                "--export=ALL"]  # fmt: skip
        minutes = time_limit_minutes(rec.remaining_limit_s(), self.grace_s)
        if minutes is not None:
            args.append(f"--time={minutes}")
        if self.opts.partition:
            args.append(f"--partition={self.opts.partition}")
        if account.uid is not None:
            args += [f"--uid={account.uid}", f"--gid={account.gid if account.gid is not None else account.uid}"]
        check_text({"args": args, "env": env, "script": script})
        record = {"job_id": rec.job_id, "start_s": job.start_s, "marker": job.marker, "uid": account.uid,
                  "slurm_id": None, "stdout": launch.stdout_path, "stderr": launch.stderr_path}  # fmt: skip
        return _Submission(args, script, env, record)

    def _handle(self, job: _Job) -> Handle:
        return {"slurm_job_id": job.slurm_id, "engine_id": None if job.slurm_id is None else str(job.slurm_id),
                "job_id": job.job_id, "start_s": job.start_s, "marker": job.marker,
                "uid": job.uid, "devices": job.devices}  # fmt: skip

    @staticmethod
    def _handle_of(record: dict[str, Any]) -> Handle:
        slurm_id = record.get("slurm_id")
        return {"slurm_job_id": slurm_id, "engine_id": None if slurm_id is None else str(slurm_id),
                "job_id": record["job_id"], "start_s": record["start_s"],
                "marker": record["marker"], "uid": record.get("uid"), "devices": []}  # fmt: skip

    @staticmethod
    def _find_marker(mark: str, uid: int | None, jobs: list[SlurmJob]) -> int | None:
        """The Slurm job of a start, by its marker and account (the latest, if Slurm holds several)."""
        want = parse_marker(mark)
        hits = [j.slurm_id for j in jobs if parse_marker(j.comment) == want and (uid is None or j.user_id == uid)]
        return max(hits) if hits and want is not None else None

    def _fresh_snapshot(self) -> dict[int, SlurmJob] | None:
        """The active jobs slurmctld holds, at most ``poll_s`` old; None when it does not answer."""
        snap = self._snapshot
        if snap is not None and time.monotonic() - snap[0] <= self.opts.poll_s:
            return snap[1]
        taken = time.monotonic()
        try:
            by_id = {j.slurm_id: j for j in self.cli.jobs()}
        except (SlurmUnreachable, SlurmCommandError):
            return None
        self._snapshot = (taken, by_id)
        return by_id

    def _note_outputs(self, job: _Job) -> None:
        """Record the identity of the outputs Slurm opened as the job's account (for the logs endpoint)."""
        record = self._read_record(job.job_id)
        if record is None:
            return
        found: dict[str, list[int]] = {}
        for stream in ("stdout", "stderr"):
            ident = _owned_file(str(record.get(stream, "")), job.uid)
            if ident is not None:
                found[stream] = list(ident)
        if len(found) == 2:
            record["outputs"] = found
            write_json(self.record_path(job.job_id), record)
            job.outputs_known = True

    def _fail(self, job: _Job, detail: str) -> None:
        log.warning("job %s: %s", job.job_id, detail)
        self._finish(job, ExitInfo(1, 0, time.time(), detail))

    def _finish(self, job: _Job, info: ExitInfo) -> None:
        with self._lock:
            if self._jobs.get(job.job_id) is not job:
                return
            del self._jobs[job.job_id]
        if job.timer is not None:
            job.timer.cancel()
        if not job.outputs_known:
            self._note_outputs(job)
        record = self._read_record(job.job_id)
        if record is not None and record.get("marker") == job.marker:
            record["exit"] = _exit_json(info)
            write_json(self.record_path(job.job_id), record)
        self._on_exit(job.job_id, job.epoch, info)

    def _read_record(self, job_id: int) -> dict[str, Any] | None:
        try:
            data = json.loads(self.record_path(job_id).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def exit_info(job: SlurmJob) -> ExitInfo:
    """How an ended Slurm job ended, as Steppe reports it (see ``slurm_cli.SIGNAL_OF_STATE``).

    >>> exit_info(SlurmJob(4, "CANCELLED", 0, 0, "", 0, 9.0)).slurm
    '0:15'
    >>> exit_info(SlurmJob(5, "FAILED", 3, 0, "", 0, 9.0)).slurm
    '3:0'
    """
    code, sig = job.exit_code, job.signal
    if job.state != "COMPLETED" and code == 0 and sig == 0:
        sig = SIGNAL_OF_STATE.get(job.state, 0)
        code = 0 if sig else 1
    return ExitInfo(code, sig, job.end_s or time.time())


def _exit_json(info: ExitInfo) -> dict[str, Any]:
    return {"exit_code": info.exit_code, "signal": info.signal, "end_s": info.end_s, "detail": info.detail}


def _owned_file(path: str, uid: int | None) -> tuple[int, int] | None:
    """(device, inode) of a regular file reached with no symlink and owned by ``uid`` (any, if None)."""
    if not path.startswith("/"):
        return None
    try:
        fd = open_no_symlinks(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode) or (uid is not None and st.st_uid != uid):
        return None
    return st.st_dev, st.st_ino


def sbatch_pids(mark: str) -> list[int]:
    """Live ``sbatch`` processes submitting the start ``mark`` names (found by their command line)."""
    needle = f"--comment={mark}\x00".encode()
    return [pid for pid, line in command_lines() if needle in line and b"sbatch" in line.split(b"\x00", 1)[0]]
