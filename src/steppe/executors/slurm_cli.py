"""Slurm's command line, as the Slurm executor reads it: jobs, nodes, states and exit codes.

``SlurmCli`` runs Slurm's commands (``squeue``, ``sinfo``, ``sbatch``, ``scancel``, ``scontrol``,
``sacct``) with ``SLURM_CONF`` set and a timeout, and turns what they print into plain values:

* ``jobs()``: the jobs that have not ended (``squeue --json``; with ``ids`` or ``all_states``,
  also ended ones slurmctld keeps for ``MinJobAge``) as ``SlurmJob``: state, exit code and
  signal, comment, user, GPUs per node;
* ``nodes()``: every node (``sinfo --json``) as ``SlurmNode``: its GPUs and whether it is usable;
* ``ended(slurm_id)``: a job's end from the accounting database (``sacct --parsable2``), for a job
  slurmctld has forgotten; None where accounting is off (no ``slurmdbd``).

Any command that cannot reach slurmctld raises ``SlurmUnreachable``; one slurmctld refuses raises
``SlurmCommandError`` with its message on one line. ``squeue``/``sinfo`` print JSON with the
OpenAPI plugins Debian's ``slurm-wlm`` 22.05 ships (``openapi/v0.0.38``); the parser also takes
the shapes later releases print (a state list, an exit code object).

Slurm's exit code is a wait status, ``exit:signal``:

>>> exit_and_signal(768), exit_and_signal(15), exit_and_signal({"return_code": 2, "signal": {"signal_id": 0}})
((3, 0), (0, 15), (2, 0))
>>> expand_hostlist("gpu[01-03,7],login"), gres_gpus("gpu:h200:3(IDX:2-4)")
(['gpu01', 'gpu02', 'gpu03', 'gpu7', 'login'], 3)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from steppe.core.errors import SteppeError
from steppe.core.job import JobState

ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"})
"""States of a job that has not ended (it may hold GPUs from CONFIGURING on)."""
HOLDING_STATES = frozenset({"CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "RESIZING"})
"""States in which a job holds its nodes' GPUs."""
STEPPE_STATE = {
    "PENDING": JobState.RUNNING, "CONFIGURING": JobState.RUNNING, "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING, "SUSPENDED": JobState.RUNNING, "REQUEUED": JobState.RUNNING,
    "RESIZING": JobState.RUNNING, "COMPLETED": JobState.COMPLETED, "FAILED": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED, "TIMEOUT": JobState.TIMEOUT, "PREEMPTED": JobState.PREEMPTED,
    "DEADLINE": JobState.TIMEOUT, "NODE_FAIL": JobState.FAILED, "BOOT_FAIL": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED, "SPECIAL_EXIT": JobState.FAILED, "REVOKED": JobState.CANCELLED,
}  # fmt: skip
"""Slurm's job state -> Steppe's (they share Slurm's names). Every state before the end is
``RUNNING`` for Steppe: the hub committed the start; a job Slurm still queues (``PENDING``,
e.g. behind work submitted to Slurm directly) counts as started and waiting on its nodes."""
SIGNAL_OF_STATE = {"CANCELLED": 15, "TIMEOUT": 15, "PREEMPTED": 15, "DEADLINE": 15, "REVOKED": 15,
                   "NODE_FAIL": 9, "BOOT_FAIL": 9, "OUT_OF_MEMORY": 9}  # fmt: skip
"""The signal to report for a job Slurm ended with ``0:0`` in a state that is not a success
(a cancel before the job ran, a node that failed): Steppe must not take it for ``COMPLETED``."""
UNREACHABLE = ("Unable to contact slurm controller", "Socket timed out", "Connection refused",
               "Zero Bytes were transmitted", "Communication connection failure")  # fmt: skip
NODE_UNUSABLE = frozenset({
    "DOWN", "DRAIN", "DRAINED", "DRAINING", "FAIL", "FAILING", "FUTURE", "MAINT", "NOT_RESPONDING",
    "REBOOT_REQUESTED", "REBOOT_ISSUED", "POWERED_DOWN", "UNKNOWN",
})  # fmt: skip
"""Node states and flags under which Slurm gives a node no new work (it leaves the inventory)."""


class SlurmUnreachable(SteppeError):
    """slurmctld did not answer (it is down, or the network is)."""


class SlurmTimeout(SlurmUnreachable):
    """A Slurm command did not finish in time (slurmctld is slow, or the command waits on a job)."""


class SlurmCommandError(SteppeError):
    """A Slurm command refused what it was asked (its message, on one line)."""


@dataclass(frozen=True)
class SlurmJob:
    """One job as slurmctld holds it; ``gpus`` and ``devices`` are per node name."""

    slurm_id: int
    state: str
    exit_code: int
    signal: int
    comment: str
    user_id: int
    end_s: float
    reason: str = ""
    gpus: dict[str, int] = field(default_factory=dict)
    devices: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.state not in ACTIVE_STATES

    @property
    def holds_gpus(self) -> bool:
        return self.state in HOLDING_STATES


@dataclass(frozen=True)
class SlurmNode:
    """One node: its GPUs (all GRES ``gpu`` entries), whether new work may run there, its
    partitions and its GPUs' GRES type (``""`` when untyped)."""

    name: str
    gpus: int
    usable: bool
    partitions: tuple[str, ...] = ()
    gpu_type: str = ""


def exit_and_signal(raw: Any) -> tuple[int, int]:
    """``(exit code, signal)`` from Slurm's wait status (an int, or a later release's object)."""
    if isinstance(raw, dict):
        code = raw.get("return_code", 0)
        sig = raw.get("signal", {})
        code = code.get("number", 0) if isinstance(code, dict) else code
        sig = sig.get("signal_id", 0) if isinstance(sig, dict) else sig
        return int(code or 0), int(sig or 0)
    status = int(raw or 0)
    return (status >> 8) & 0xFF, status & 0x7F


def expand_hostlist(hostlist: str) -> list[str]:
    """Slurm's compressed host list (``gpu[01-03,7],login``) as names."""
    names: list[str] = []
    for part in re.findall(r"[^,\[]+(?:\[[^\]]*\][^,\[]*)*", hostlist):
        match = re.fullmatch(r"([^\[]*)\[([^\]]*)\](.*)", part)
        if match is None:
            names.append(part)
            continue
        prefix, ranges, rest = match.groups()
        for item in ranges.split(","):
            lo, _, hi = item.partition("-")
            for n in range(int(lo), int(hi or lo) + 1):
                names.extend(prefix + str(n).zfill(len(lo)) + tail for tail in expand_hostlist(rest) or [""])
    return names


def gres_gpus(gres: str) -> int:
    """The number of GPUs in a GRES string (``gpu:h200:8(S:0),nic:1`` -> 8)."""
    total = 0
    for item in re.split(r",(?![^()]*\))", gres):
        fields = item.split("(")[0].split(":")
        if fields[0] == "gpu" and len(fields) >= 2 and fields[-1].isdigit():
            total += int(fields[-1])
    return total


def gres_type(gres: str) -> str:
    """The type of a node's GPUs in a GRES string, the first typed ``gpu`` entry's (``""`` if none).

    >>> gres_type("gpu:h200:8(S:0),nic:1"), gres_type("gpu:4"), gres_type("nic:1")
    ('h200', '', '')
    """
    for item in re.split(r",(?![^()]*\))", gres):
        fields = item.split("(")[0].split(":")
        if fields[0] == "gpu" and len(fields) >= 3:
            return fields[1]
    return ""


def gres_devices(gres: str) -> tuple[int, ...]:
    """The device indices a job's GRES detail names (``gpu:h200:3(IDX:2-4)`` -> 2, 3, 4)."""
    match = re.search(r"IDX:([0-9,\-]+)", gres)
    if match is None:
        return ()
    found: list[int] = []
    for item in match.group(1).split(","):
        lo, _, hi = item.partition("-")
        found.extend(range(int(lo), int(hi or lo) + 1))
    return tuple(found)


def _state(raw: Any) -> str:
    if isinstance(raw, list):  # 23.02 on: the base state with its flags
        return str(raw[0]) if raw else "PENDING"
    return str(raw or "PENDING")


def _time(raw: Any) -> float:
    if isinstance(raw, dict):  # 23.02 on: {"set": true, "number": ...}
        raw = raw.get("number", 0)
    return float(raw or 0)


def parse_job(data: Mapping[str, Any]) -> SlurmJob:
    """A ``SlurmJob`` from one entry of ``squeue --json``."""
    exit_code, signal = exit_and_signal(data.get("exit_code", 0))
    nodes = [n.get("nodename", "") for n in (data.get("job_resources") or {}).get("allocated_nodes", []) or []]
    if not nodes and data.get("nodes"):
        nodes = expand_hostlist(str(data["nodes"]))
    gpus: dict[str, int] = {}
    devices: dict[str, tuple[int, ...]] = {}
    for node, detail in zip(nodes, data.get("gres_detail", []) or [], strict=False):
        count = gres_gpus(str(detail))
        if count:
            gpus[node] = gpus.get(node, 0) + count
            devices[node] = devices.get(node, ()) + gres_devices(str(detail))
    return SlurmJob(
        int(data["job_id"]), _state(data.get("job_state")), exit_code, signal, str(data.get("comment") or ""),
        int(data.get("user_id", -1)), _time(data.get("end_time")), str(data.get("state_reason") or ""), gpus, devices,
    )  # fmt: skip


def parse_node(data: Mapping[str, Any]) -> SlurmNode:
    """A ``SlurmNode`` from one entry of ``sinfo --json``."""
    state = data.get("state", "")
    flags = {str(s).upper() for s in ([*state] if isinstance(state, list) else [state])}
    flags |= {str(s).upper() for s in data.get("state_flags", []) or []}
    gres = str(data.get("gres", ""))
    return SlurmNode(str(data["name"]), gres_gpus(gres), not flags & NODE_UNUSABLE,
                     tuple(str(p) for p in data.get("partitions", []) or []), gres_type(gres))  # fmt: skip


def one_line(text: str) -> str:
    """A command's message on one line (the last lines that say something)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-3:]) if lines else "no message"


class SlurmCli:
    """Slurm's commands against one cluster (``conf``: its ``slurm.conf``, None: Slurm's default)."""

    def __init__(self, conf: str | None = None, timeout_s: float = 30.0, bin_dir: str | None = None) -> None:
        self.conf = conf
        self.timeout_s = timeout_s
        self.bin_dir = bin_dir

    def path(self, command: str) -> str:
        """The full path of a Slurm command (from ``bin_dir``, else ``PATH``), or a clear error."""
        found = shutil.which(command, path=self.bin_dir) if self.bin_dir else shutil.which(command)
        if found is None:
            where = self.bin_dir or "PATH"
            raise SlurmCommandError(f"{command} not found in {where}: install Slurm's client commands (slurm-client)")
        return found

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment a command runs with: ``extra`` and ``SLURM_CONF`` only."""
        env = dict(extra or {})
        if self.conf is not None:
            env["SLURM_CONF"] = self.conf
        return env

    def run(self, command: str, *args: str, stdin: str | None = None, env: Mapping[str, str] | None = None,
            timeout_s: float | None = None) -> str:  # fmt: skip
        """Run a command; its output, or ``SlurmUnreachable``/``SlurmCommandError``."""
        try:
            done = subprocess.run(
                [self.path(command), *args], input=stdin, env=self.env(env), capture_output=True, text=True,
                timeout=timeout_s or self.timeout_s, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise SlurmTimeout(f"{command} did not answer within {timeout_s or self.timeout_s:.0f} s") from None
        except OSError as exc:
            raise SlurmCommandError(f"cannot run {command}: {exc.strerror or exc}") from None
        if any(marker in done.stderr for marker in UNREACHABLE):
            raise SlurmUnreachable(f"{command}: {one_line(done.stderr)}")
        if done.returncode != 0:
            raise SlurmCommandError(f"{command}: {one_line(done.stderr or done.stdout)}")
        return done.stdout

    def _json(self, command: str, *args: str) -> dict[str, Any]:
        out = self.run(command, "--json", *args)
        try:
            data = json.loads(out)
        except ValueError:
            raise SlurmCommandError(f"{command} --json printed no JSON: {one_line(out[:300])}") from None
        errors = [e for e in data.get("errors", []) or [] if e]
        if errors:
            text = "; ".join(str(e.get("description") or e.get("error") or e) for e in errors)
            raise SlurmUnreachable(f"{command}: {text}")
        return dict(data)

    def jobs(self, ids: Sequence[int] = (), all_states: bool = False) -> list[SlurmJob]:
        """Jobs that have not ended (``squeue --json``); with ``ids``, those jobs in any state; with
        ``all_states``, every job slurmctld still holds (``-t all``: ended ones for ``MinJobAge``)."""
        args = ["-t", "all"] if ids or all_states else []
        if ids:
            try:
                found = self._json("squeue", *args, "-j", ",".join(str(i) for i in ids)).get("jobs", [])
            except SlurmCommandError:  # "Invalid job id": one of them is forgotten; take them all
                found = self._json("squeue", *args).get("jobs", [])
            wanted = set(ids)
            return [job for job in map(parse_job, found) if job.slurm_id in wanted]
        return [parse_job(j) for j in self._json("squeue", *args).get("jobs", [])]

    def nodes(self) -> list[SlurmNode]:
        """Every node (``sinfo --json``)."""
        return [parse_node(n) for n in self._json("sinfo").get("nodes", [])]

    def ended(self, slurm_id: int) -> SlurmJob | None:
        """A job's end from the accounting database, or None (no such record, or accounting is off)."""
        try:
            out = self.run("sacct", "-n", "-X", "-P", "-j", str(slurm_id), "-o", "JobID,State,ExitCode,End,UID")
        except SlurmCommandError:  # "Slurm accounting storage is disabled"
            return None
        for line in out.splitlines():
            fields = line.split("|")
            if len(fields) == 5 and fields[0] == str(slurm_id):
                state = fields[1].split()[0] if fields[1] else "FAILED"
                code, _, sig = fields[2].partition(":")
                end = _parse_end(fields[3])
                return SlurmJob(slurm_id, state, int(code or 0), int(sig or 0), "", int(fields[4] or -1), end)
        return None


def _parse_end(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def conf_from_env() -> str | None:
    """``SLURM_CONF`` of the hub's own environment, if set."""
    return os.environ.get("SLURM_CONF") or None
