"""The local executor: each job is a process group on this machine, run as its user's own account.

``start`` prepares the job's two directories and launches ``python -m steppe.executors.wrapper``
(``steppe.executors.wrapper``) as the leader of a new session, so the job and everything it
spawns form one process group:

* ``<data-dir>/jobs/<id>/`` (the hub's, mode 0700): ``run.json``, the launch intent written
  *before* the process starts (command, environment, account, outputs, the start it belongs
  to), then the wrapper's ``handle.json``, ``outputs.json`` and ``exit.json``;
* ``<data-dir>/spool/<id>/`` (mode 0700, owned by the job's account): the job's private working
  directory and default ``stdout``/``stderr``; ``spool/`` itself is 0711, so no account can
  list it or reach another job's directory.

The job runs as its user's account (``steppe.executors.accounts``) with umask 077 and an
explicit environment: ``HOME``, ``USER``, ``LOGNAME``, ``TMPDIR`` and a standard ``PATH``; from
the hub's own environment, only the allow-list ``JOB_ENV_ALLOW`` (locale and time zone); then
what the job asked for (the submitter's exported variables and ``--env``, which may replace
``PATH`` and the others); then, over them all, the hub's own: ``STEPPE_*`` and Slurm's ``SLURM_*``
(``executors/jobenv.py``; ``SLURM_JOB_GPUS`` are the device indices on its first node) and
``CUDA_VISIBLE_DEVICES`` (the GPUs it was given). Nothing else of the hub's environment reaches a job.

A launch that fails in any way (a bad byte, a missing command, an output it may not open)
ends that job ``FAILED`` with reason ``LaunchFailed`` and the cause, and frees its GPUs;
``start`` never raises. A reaper thread per job waits for the wrapper and reports ``(job id,
epoch, ExitInfo)`` to the hub; jobs adopted after a restart are not children of this process,
so a poller checks them twice a second instead. ``stop`` sends SIGTERM to the group, then
SIGKILL after ``grace_s`` (Slurm's ``KillWait``). After a crash, ``find_launch`` tells the
recovery whether a committed start was launched (its handle) or not (None: requeue it).

GPU inventory: ``discover_gpus()`` reads NVML (``nvidia-ml-py``) when it is importable and
finds devices; otherwise the hub declares GPUs in its configuration.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steppe.core.text import text_problem
from steppe.executors.accounts import AccountMap, JobAccount, running_as_root
from steppe.executors.base import ExitInfo, Handle, Inventory, Launch, OnExit
from steppe.executors.jobenv import job_variables
from steppe.executors.proclist import command_lines
from steppe.executors.wrapper import LAUNCH_FAILED, process_start_ticks, write_json

if TYPE_CHECKING:
    from steppe.core.records import JobRecord

log = logging.getLogger("steppe.executor")
JOB_ENV_ALLOW = ("LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ")
"""The only variables of the hub's own environment a job inherits (locale and time zone)."""
JOB_PATH = "/usr/local/bin:/usr/bin:/bin"
WRAPPER_ENV = ("PATH", "PYTHONPATH", "LANG", "LC_ALL")


@dataclass(frozen=True)
class GpuDevice:
    """A GPU found by NVML."""

    index: int
    name: str
    uuid: str
    memory_gb: float


def discover_gpus() -> list[GpuDevice]:
    """GPUs on this machine according to NVML; empty when NVML or a driver is missing."""
    try:
        import pynvml  # provided by nvidia-ml-py
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError when no driver is loaded
        return []
    try:
        found = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            uuid = pynvml.nvmlDeviceGetUUID(h)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h).total / 1e9
            found.append(GpuDevice(i, _text(name), _text(uuid), round(mem, 1)))
        return found
    finally:
        pynvml.nvmlShutdown()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def process_alive(handle: dict[str, Any]) -> bool:
    """True when the process a handle names still runs (and is the same process, not a reused pid)."""
    pid = int(handle["pid"])
    if Path("/proc").is_dir():
        ticks = process_start_ticks(pid)
        return ticks is not None and (handle.get("start_ticks") is None or ticks == handle["start_ticks"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_exit(job_dir: Path, start_s: float | None = None) -> ExitInfo | None:
    """The outcome the wrapper recorded (for the start at ``start_s``, if given), if it did."""
    data = _read_json(job_dir / "exit.json")
    if data is None:
        return None
    if start_s is not None and data.get("start_s", start_s) != start_s:
        return None  # an earlier run's (the job was requeued since)
    detail = str(data.get("detail", ""))
    return ExitInfo(int(data["exit_code"]), int(data["signal"]), float(data["end_s"]), detail)


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class _Running:
    job_id: int
    epoch: int
    handle: dict[str, Any]
    proc: subprocess.Popen[bytes] | None
    stopping: bool = False
    timer: threading.Timer | None = field(default=None, repr=False)


class LocalExecutor:
    """Runs jobs as local process groups under their users' accounts; see the module docstring."""

    def __init__(
        self,
        data_dir: Path,
        devices: dict[int, list[int]],
        node_names: list[str],
        grace_s: float = 10.0,
        accounts: AccountMap | None = None,
    ) -> None:
        self.jobs_dir = Path(data_dir) / "jobs"
        self.spool_dir = Path(data_dir) / "spool"
        self.accounts = accounts or AccountMap(root=running_as_root())
        for path, mode in ((self.jobs_dir, 0o700), (self.spool_dir, 0o711 if self.accounts.root else 0o700)):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(mode)
        self.grace_s = grace_s
        self.node_names = node_names
        self._free = {node: sorted(ids) for node, ids in devices.items()}
        self._devices = {node_names[node]: tuple(sorted(ids)) for node, ids in devices.items()}
        self._lock = threading.Lock()
        self._running: dict[int, _Running] = {}
        self._launched: dict[int, dict[str, Any]] = {}
        self._on_exit: OnExit = lambda job_id, epoch, info: None
        self._launch_of: Callable[[int], Launch] | None = None
        self._closed = threading.Event()
        self._poller: threading.Thread | None = None

    def bind(self, on_exit: OnExit, launch_of: Callable[[int], Launch]) -> None:
        """Where to report ends, and where to read how to run a job."""
        self._on_exit, self._launch_of = on_exit, launch_of

    def inventory(self) -> Inventory:
        """The GPUs of the fleet file (or the visible devices) this executor hands out, by node name."""
        return Inventory(dict(self._devices))

    def reachable(self) -> bool:
        """Always: the engine is this machine."""
        return True

    def job_dir(self, job_id: int) -> Path:
        """The hub's private records of a job (launch intent, handle, outputs, exit)."""
        return self.jobs_dir / str(job_id)

    def work_dir(self, job_id: int) -> Path:
        """The job's own directory, owned by its account."""
        return self.spool_dir / str(job_id)

    def devices_of(self, job_id: int) -> list[int] | None:
        """The device indices of a running job's GPUs (for the meter's energy counters), or None."""
        with self._lock:
            run = self._running.get(job_id)
            return None if run is None else [d for _, ids in run.handle.get("devices", []) for d in ids]

    # -- executor protocol ---------------------------------------------------------------------------
    def start(self, rec: JobRecord, now: float) -> None:
        """Launch a committed start; any failure ends the job ``LaunchFailed`` (never raises)."""
        devices: dict[int, list[int]] = {}
        try:
            if self._launch_of is None:
                raise RuntimeError("LocalExecutor.bind() was not called")
            launch = self._launch_of(rec.job_id)
            devices = self._take_devices(rec)
            self._launch(rec, launch, devices)
        except Exception as exc:  # a bad byte, a full disk, a vanished account: this job fails, the hub goes on
            log.warning("job %s: launch failed: %s", rec.job_id, exc)
            with self._lock:
                self._give_back(devices)
            self._on_exit(rec.job_id, rec.epoch, ExitInfo(1, 0, time.time(), f"{LAUNCH_FAILED}{exc}"))

    def _launch(self, rec: JobRecord, launch: Launch, devices: dict[int, list[int]]) -> None:
        account = self.accounts.account(launch.user_id, launch.user)
        job_dir, work = self.job_dir(rec.job_id), self.work_dir(rec.job_id)
        job_dir.mkdir(mode=0o700, exist_ok=True)
        for stale in ("run.json", "handle.json", "outputs.json", "exit.json"):
            (job_dir / stale).unlink(missing_ok=True)
        work.mkdir(mode=0o700, exist_ok=True)
        if account.uid is not None:
            os.chown(work, account.uid, account.gid if account.gid is not None else account.uid)
        start_s = rec.last_start_s
        run = {
            "job_id": rec.job_id, "start_s": start_s, "argv": launch.argv, "script": launch.script,
            "script_path": str(work / "script"), "workdir": launch.workdir,
            "create_workdir": _within(launch.workdir, work), "stdout": launch.stdout_path,
            "stderr": launch.stderr_path, "uid": account.uid, "gid": account.gid,
            "env": self._env(rec, launch, devices, account, work),
            "devices": [[node, ids] for node, ids in devices.items()],
        }  # fmt: skip
        _check_bytes(run)
        write_json(job_dir / "run.json", run)  # the launch intent, durable before any process exists
        wrapper = [sys.executable, "-m", "steppe.executors.wrapper", "--job-dir", str(job_dir)]
        env = {k: os.environ[k] for k in WRAPPER_ENV if k in os.environ}
        fd = os.open(job_dir / "wrapper.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        try:
            proc = subprocess.Popen(
                wrapper, cwd=job_dir, env=env, stdout=fd, stderr=fd, stdin=subprocess.DEVNULL,
                start_new_session=True, close_fds=True,
            )  # fmt: skip
        finally:
            os.close(fd)
        handle = {"pid": proc.pid, "pgid": proc.pid, "start_ticks": process_start_ticks(proc.pid),
                  "devices": run["devices"], "start_s": start_s}  # fmt: skip
        run_ = _Running(rec.job_id, rec.epoch, handle, proc)
        with self._lock:
            self._running[rec.job_id] = run_
            self._launched[rec.job_id] = handle
        threading.Thread(target=self._reap, args=(run_,), name=f"reap-{rec.job_id}", daemon=True).start()

    def stop(self, rec: JobRecord, now: float) -> None:
        """SIGTERM the job's process group, SIGKILL after the grace period."""
        with self._lock:
            run = self._running.get(rec.job_id)
            if run is None or run.stopping:
                return
            run.stopping = True
            if rec.state.value != "RUNNING":  # preempted: the scheduler has already reused its GPUs
                self._give_back(self._devices_of(run.handle))
                run.handle = {**run.handle, "devices": []}
        pgid = int(run.handle["pgid"])
        _killpg(pgid, signal.SIGTERM)
        run.timer = threading.Timer(self.grace_s, _killpg, args=(pgid, signal.SIGKILL))
        run.timer.daemon = True
        run.timer.start()

    # -- restarts ------------------------------------------------------------------------------------
    def adopt(self, rec: JobRecord, handle: dict[str, Any]) -> bool:
        """Watch a job launched before a restart; False if its process is gone."""
        if not process_alive(handle):
            return False
        devices = self._devices_of(handle)
        with self._lock:
            for node, ids in devices.items():
                self._free[node] = [d for d in self._free.get(node, []) if d not in ids]
            self._running[rec.job_id] = _Running(rec.job_id, rec.epoch, handle, None)
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll_adopted, name="adopted-poller", daemon=True)
                self._poller.start()
        return True

    def find_launch(self, job_id: int, start_s: float, wait_s: float = 10.0) -> dict[str, Any] | None:
        """The handle of the start of ``job_id`` at ``start_s`` if it was launched, else None.

        No launch intent for that start: never launched. An intent and a handle: launched. An
        intent and no handle yet: a wrapper may be starting up; wait up to ``wait_s`` for its
        handle, and kill a wrapper that never writes one, so a job requeued as never launched
        cannot also run.
        """
        job_dir = self.job_dir(job_id)
        run = _read_json(job_dir / "run.json")
        if run is None or run.get("start_s") != start_s:
            return None
        deadline = time.monotonic() + wait_s
        while True:
            handle = _read_json(job_dir / "handle.json")
            if handle is not None and handle.get("start_s") == start_s:
                return handle
            wrappers = wrapper_pids(job_dir)
            if not wrappers:
                return None
            if time.monotonic() > deadline:
                for pid in wrappers:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)
                return None
            time.sleep(0.05)

    def outcome(self, job_id: int, start_s: float | None = None) -> ExitInfo | None:
        """How an ended job's process ended, from its exit file (of the start at ``start_s``, if given)."""
        return read_exit(self.job_dir(job_id), start_s)

    def outputs(self, job_id: int) -> dict[str, tuple[int, int]]:
        """The identity (device, inode) of each output the job opened: ``{"stdout": ..., "stderr": ...}``."""
        data = _read_json(self.job_dir(job_id) / "outputs.json") or {}
        return {k: (int(v[0]), int(v[1])) for k, v in data.items() if k in ("stdout", "stderr")}

    def recap(self, rec: JobRecord, now: float) -> None:
        """The scheduler changed the job's GPU power cap: recorded by the hub; GPUs keep their limits.

        Applying it through NVML (``nvmlDeviceSetPowerManagementLimit``) is not done yet.
        """

    def kill(self, handle: Handle) -> None:
        """SIGKILL a launched job's process group."""
        _killpg(int(handle["pgid"]), signal.SIGKILL)

    def take_launched(self) -> dict[int, dict[str, Any]]:
        """Handles of jobs launched since the last call (to persist them)."""
        with self._lock:
            out, self._launched = self._launched, {}
        return out

    def close(self) -> None:
        """Stop watching; running jobs go on and are adopted by the next start of the hub."""
        self._closed.set()
        with self._lock:
            for run in self._running.values():
                if run.timer is not None:
                    run.timer.cancel()

    # -- internals -----------------------------------------------------------------------------------
    def _env(
        self, rec: JobRecord, launch: Launch, devices: dict[int, list[int]], account: JobAccount, work: Path
    ) -> dict[str, str]:
        env = {k: os.environ[k] for k in JOB_ENV_ALLOW if k in os.environ}
        home = str(account.home or work)
        env.update(PATH=os.environ.get("PATH", JOB_PATH) if account.shared else JOB_PATH, HOME=home,
                   USER=account.name, LOGNAME=account.name, TMPDIR=str(work))  # fmt: skip
        env.update(launch.env)
        visible = ",".join(str(d) for ids in devices.values() for d in ids)
        nodes = [self.node_names[n] for n, _ in rec.allocation]
        first = devices.get(rec.allocation[0][0], []) if rec.allocation else []
        env.update(job_variables(rec, launch, nodes, first))
        env["CUDA_VISIBLE_DEVICES"] = visible
        return env

    def _take_devices(self, rec: JobRecord) -> dict[int, list[int]]:
        with self._lock:
            taken: dict[int, list[int]] = {}
            for node, gpus in rec.allocation:
                free = self._free.setdefault(node, [])
                taken[node], self._free[node] = free[:gpus], free[gpus:]
            return taken

    def _give_back(self, devices: dict[int, list[int]]) -> None:
        for node, ids in devices.items():
            self._free[node] = sorted(self._free.get(node, []) + ids)

    @staticmethod
    def _devices_of(handle: dict[str, Any]) -> dict[int, list[int]]:
        return {int(node): list(ids) for node, ids in handle.get("devices", [])}

    def _finish(self, run: _Running, info: ExitInfo) -> None:
        with self._lock:
            if self._running.get(run.job_id) is run:
                del self._running[run.job_id]
                self._give_back(self._devices_of(run.handle))
        if run.timer is not None:
            run.timer.cancel()
        _killpg(int(run.handle["pgid"]), signal.SIGKILL)  # leftovers of the job's process group
        self._on_exit(run.job_id, run.epoch, info)

    def _reap(self, run: _Running) -> None:
        assert run.proc is not None
        rc = run.proc.wait()
        info = self.outcome(run.job_id, run.handle.get("start_s"))
        if info is None:
            info = ExitInfo(0, -rc, time.time()) if rc < 0 else ExitInfo(rc, 0, time.time())
        self._finish(run, info)

    def _poll_adopted(self) -> None:
        while not self._closed.wait(0.5):
            with self._lock:
                adopted = [r for r in self._running.values() if r.proc is None]
            for run in adopted:
                if not process_alive(run.handle):
                    info = self.outcome(run.job_id, run.handle.get("start_s"))
                    if info is None:
                        sig = signal.SIGKILL if run.stopping else 0
                        info = ExitInfo(0, int(sig), time.time(), "" if sig else "exit status unknown")
                    self._finish(run, info)


def _within(path: str, root: Path) -> bool:
    """True when the absolute ``path`` is ``root`` or lies under it (lexically; paths hold no '..')."""
    return path == str(root) or path.startswith(str(root) + "/")


def _check_bytes(value: Any, where: str = "job") -> None:
    """Refuse a NUL byte or a lone surrogate anywhere a launch would pass it to the kernel."""
    if isinstance(value, str):
        if text_problem(value) is not None:
            raise ValueError(f"{where}: {'contains a NUL byte' if chr(0) in value else 'is not valid UTF-8 text'}")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_bytes(k, f"{where}.{k}" if isinstance(k, str) else where)
            _check_bytes(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_bytes(v, f"{where}[{i}]")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def wrapper_pids(job_dir: Path) -> list[int]:
    """Live wrapper processes launched for ``job_dir`` (found by their command line)."""
    needle = b"--job-dir\x00" + str(job_dir).encode() + b"\x00"
    return [pid for pid, line in command_lines() if needle in line and b"steppe.executors.wrapper" in line]
