"""What Steppe sends Ray for one start, and how it reads a Ray job's end: pure functions, no I/O.

**Submission id.** ``steppe-<hub id>-<job id>-<start in µs>``: derived from the hub (a random id
kept in its data directory, so two hubs sharing a Ray cluster never collide), the job and the
start being run, so after a crash the hub can ask Ray whether that very start was launched
(``find_launch``) without having stored anything first. A requeued job starts again at another
time and so gets another id; Ray refuses a second submission with the same id, so a start is
never run twice.

>>> submission_id("a1b2c3d4", 42, 1700000000.25)
'steppe-a1b2c3d4-42-1700000000250000'

**Entrypoint.** One shell line: go to the job's working directory (a path on the Ray node,
made if missing: clusters Steppe drives share their file system with the hub), then ``exec`` the job's argv,
or write the job's script (passed in ``STEPPE_JOB_SCRIPT``, not on the command line) to a
private temporary file and ``exec`` it.

>>> entrypoint(["python3", "train.py", "--lr", "1e-3"], None, "/srv/u/run")
'mkdir -p -- /srv/u/run && cd -- /srv/u/run && exec python3 train.py --lr 1e-3'

**Environment.** Only the job's own variables and the ones Steppe sets (``STEPPE_*`` and the
Slurm-compatible ``SLURM_JOB_ID``, ``SLURM_JOB_NAME``, ``SLURM_JOB_NODELIST``, ``SLURM_GPUS``,
as the local executor exports), in the job's ``runtime_env``; Ray adds its own and sets
``CUDA_VISIBLE_DEVICES`` to the GPUs it gave the job. Nothing of the hub's environment is sent.
``RAY_JOB_STOP_WAIT_TIME_S`` is the hub's grace period: Ray's job supervisor reads it to send
SIGKILL that long after the SIGTERM of a stop.

**Ends.** ``SUCCEEDED`` is ``0:0``; ``FAILED`` is the driver's exit code (``N:0``), or its
signal when a signal ended it (``0:N``), or ``1:0`` with ``launch failed: <Ray's message>``
when the entrypoint never ran (a runtime environment Ray could not set up); ``STOPPED`` is
``0:15`` (SIGTERM), or ``0:9`` when it ended a grace period or more after the stop (Ray's
SIGKILL).

>>> exit_of({"status": "FAILED", "driver_exit_code": 3, "end_time": 5000}).slurm
'3:0'
>>> exit_of({"status": "STOPPED", "end_time": 9000}, stop_sent_s=1.0, grace_s=5.0).slurm
'0:9'
"""

from __future__ import annotations

import math
import re
import shlex
import signal
from collections.abc import Sequence
from typing import Any

from steppe.core.records import JobRecord
from steppe.executors.base import ExitInfo, Launch
from steppe.executors.jobenv import job_variables
from steppe.executors.wrapper import LAUNCH_FAILED

_RAY_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\t[A-Z]+ \S+\.py:\d+ -- ")
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
SCRIPT_VAR = "STEPPE_JOB_SCRIPT"
_START_ERRORS = frozenset(
    {"JOB_ENTRYPOINT_COMMAND_START_ERROR", "RUNTIME_ENV_SETUP_FAILURE", "JOB_SUPERVISOR_ACTOR_START_FAILURE"}
)


def submission_id(hub_id: str, job_id: int, start_s: float) -> str:
    """The Ray submission id of the start of ``job_id`` at ``start_s``; see the module docstring."""
    return f"steppe-{hub_id}-{job_id}-{round(start_s * 1_000_000)}"


def entrypoint(argv: list[str] | None, script: str | None, workdir: str) -> str:
    """The shell line Ray runs; see the module docstring."""
    where = f"mkdir -p -- {shlex.quote(workdir)} && cd -- {shlex.quote(workdir)}"
    if argv:
        return f"{where} && exec {shlex.join(argv)}"
    if script is None:
        raise ValueError("the job has neither a command nor a script")
    run = (f'f=$(mktemp) && printf %s "${SCRIPT_VAR}" > "$f" && chmod 700 "$f" && unset {SCRIPT_VAR} '
           '&& exec "$f"')  # fmt: skip
    return f"{where} && {run}"


def job_env(rec: JobRecord, launch: Launch, nodes: Sequence[str]) -> dict[str, str]:
    """The variables Steppe sends with a job: its own, then the hub's names (which it may not
    override): ``STEPPE_*`` and Slurm's (``executors/jobenv.py``), and the run's epoch."""
    env = dict(launch.env)
    env.update(job_variables(rec, launch, nodes))
    env["STEPPE_EPOCH"] = str(rec.epoch)
    if launch.script is not None and not launch.argv:
        env[SCRIPT_VAR] = launch.script
    return env


def stop_wait_s(grace_s: float) -> str:
    """``RAY_JOB_STOP_WAIT_TIME_S`` for a grace period (Ray reads whole seconds; at least 1)."""
    return str(max(1, math.ceil(grace_s)))


def exit_of(job: dict[str, Any], stop_sent_s: float | None = None, grace_s: float = 10.0) -> ExitInfo:
    """How a Ray job in a terminal state ended; see the module docstring."""
    status = job.get("status")
    end_s = float(job.get("end_time") or 0) / 1000.0
    if status == "SUCCEEDED":
        return ExitInfo(0, 0, end_s)
    if status == "STOPPED":
        killed = stop_sent_s is not None and end_s - stop_sent_s >= grace_s
        return ExitInfo(0, int(signal.SIGKILL if killed else signal.SIGTERM), end_s)
    code = job.get("driver_exit_code")
    message = first_line(str(job.get("message") or "no message from Ray"))
    if code is None:
        if job.get("error_type") in _START_ERRORS:
            return ExitInfo(1, 0, end_s, f"{LAUNCH_FAILED}{message}")
        return ExitInfo(1, 0, end_s, f"Ray: {message}")
    code = int(code)
    return ExitInfo(0, -code, end_s) if code < 0 else ExitInfo(code, 0, end_s)


def first_line(text: str, limit: int = 300) -> str:
    """The first non-empty line of Ray's message, shortened (every error is one line)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def driver_output(logs: str, sid: str, command: str) -> str:
    """The job's own output in Ray's driver log: without Ray's ``Running entrypoint for job`` line
    (which Ray may flush after the job's first lines) and Ray's own log lines at the top.

    >>> log = "2026-01-01 10:00:00,001\\tINFO job_manager.py:581 -- Runtime env is setting up.\\nup\\n"
    >>> driver_output(log + "Running entrypoint for job s1: echo up\\n", "s1", "echo up")
    'up\\n'
    """
    text = logs.replace(f"Running entrypoint for job {sid}: {command}\n", "", 1)
    lines = text.splitlines(keepends=True)
    skip = 0
    while skip < len(lines) and _RAY_LOG_LINE.match(lines[skip]):
        skip += 1
    return "".join(lines[skip:])
