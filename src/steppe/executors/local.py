"""The local executor: each job is a process group on this machine.

``start`` launches ``python -m steppe.executors.local --exit-file F -- COMMAND`` as a new
session (so the job and everything it spawns form one process group), with stdout and stderr
appended to the job's files, ``CUDA_VISIBLE_DEVICES`` set to the GPUs it was given and
``STEPPE_JOB_ID``, ``STEPPE_JOB_NAME``, ``STEPPE_PROJECT``, ``STEPPE_USER``, ``STEPPE_GPUS``,
``STEPPE_GPU_TYPE`` and ``STEPPE_NODELIST`` describing the job. The small wrapper runs the
command, ignores the group's SIGTERM itself (the command gets it) and writes how the command
ended (exit code, signal, time) to ``exit.json``, so the outcome survives a crash of the hub.
Right after launching, the executor writes ``handle.json`` (pid, process group, the process's
start time in clock ticks, GPU indices) next to it.

A reaper thread per job waits for the wrapper and reports ``(job id, epoch, ExitInfo)`` to the
hub; jobs adopted after a restart are not children of this process, so a poller checks them
twice a second instead. ``stop`` sends SIGTERM to the group, then SIGKILL after ``grace_s``
(Slurm's ``KillWait``). Exit codes follow Slurm's ``exit:signal``: ``1:0`` for ``exit 1``,
``0:9`` for a job killed by SIGKILL.

GPU inventory: ``discover_gpus()`` reads NVML (``nvidia-ml-py``) when it is importable and
finds devices; otherwise the hub declares GPUs in its configuration.
"""

from __future__ import annotations

import contextlib
import json
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

if TYPE_CHECKING:
    from steppe.core.records import JobRecord

_HIDDEN_ENV = ("STEPPE_TOKEN", "STEPPE_URL")


@dataclass(frozen=True)
class Launch:
    """What the store knows about how to run a job (the scheduler's ``JobSpec`` does not carry it)."""

    argv: list[str] | None
    script: str | None
    workdir: str
    env: dict[str, str]
    stdout_path: str
    stderr_path: str
    name: str
    project: str
    user: str


@dataclass(frozen=True)
class ExitInfo:
    """How a job's process ended; ``signal`` is 0 unless a signal ended it."""

    exit_code: int
    signal: int
    end_s: float
    detail: str = ""

    @property
    def slurm(self) -> str:
        return f"{self.exit_code}:{self.signal}"


@dataclass(frozen=True)
class GpuDevice:
    """A GPU found by NVML."""

    index: int
    name: str
    uuid: str
    memory_gb: float


OnExit = Callable[[int, int, ExitInfo], None]


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


def process_start_ticks(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (Linux), or None if it is gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


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


def read_exit(job_dir: Path) -> ExitInfo | None:
    """The outcome the wrapper recorded, if it did."""
    try:
        data = json.loads((job_dir / "exit.json").read_text())
    except (OSError, ValueError):
        return None
    return ExitInfo(int(data["exit_code"]), int(data["signal"]), float(data["end_s"]))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


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
    """Runs jobs as local process groups; see the module docstring."""

    def __init__(
        self, data_dir: Path, devices: dict[int, list[int]], node_names: list[str], grace_s: float = 10.0
    ) -> None:
        self.jobs_dir = Path(data_dir) / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.grace_s = grace_s
        self.node_names = node_names
        self._free = {node: sorted(ids) for node, ids in devices.items()}
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

    def job_dir(self, job_id: int) -> Path:
        return self.jobs_dir / str(job_id)

    # -- executor protocol ---------------------------------------------------------------------------
    def start(self, rec: JobRecord, now: float) -> None:
        if self._launch_of is None:
            raise RuntimeError("LocalExecutor.bind() was not called")
        launch = self._launch_of(rec.job_id)
        devices = self._take_devices(rec)
        job_dir = self.job_dir(rec.job_id)
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / "exit.json").unlink(missing_ok=True)
        argv = self._argv(launch, job_dir)
        wrapper = [sys.executable, "-m", "steppe.executors.local", "--exit-file", str(job_dir / "exit.json"), "--"]
        env = self._env(rec, launch, devices)
        try:
            with open(launch.stdout_path, "ab") as out, open(launch.stderr_path, "ab") as err:
                proc = subprocess.Popen(
                    [*wrapper, *argv], cwd=launch.workdir, env=env, stdout=out, stderr=err,
                    stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True,
                )  # fmt: skip
        except OSError as exc:
            self._give_back(devices)
            self._on_exit(rec.job_id, rec.epoch, ExitInfo(1, 0, time.time(), f"launch failed: {exc}"))
            return
        handle = {
            "pid": proc.pid,
            "pgid": proc.pid,
            "start_ticks": process_start_ticks(proc.pid),
            "devices": [[node, ids] for node, ids in devices.items()],
        }
        _write_json(job_dir / "handle.json", handle)
        run = _Running(rec.job_id, rec.epoch, handle, proc)
        with self._lock:
            self._running[rec.job_id] = run
            self._launched[rec.job_id] = handle
        threading.Thread(target=self._reap, args=(run,), name=f"reap-{rec.job_id}", daemon=True).start()

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

    def handle_on_disk(self, job_id: int) -> dict[str, Any] | None:
        """The handle written at launch, for a job whose handle never reached the store."""
        try:
            data: dict[str, Any] = json.loads((self.job_dir(job_id) / "handle.json").read_text())
        except (OSError, ValueError):
            return None
        return data

    def outcome(self, job_id: int) -> ExitInfo | None:
        """How an ended job's process ended, from its exit file."""
        return read_exit(self.job_dir(job_id))

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
    def _argv(self, launch: Launch, job_dir: Path) -> list[str]:
        if launch.script is None:
            return list(launch.argv or [])
        path = job_dir / "script"
        path.write_text(launch.script)
        path.chmod(0o700)
        return [str(path)] if launch.script.startswith("#!") else ["/bin/sh", str(path)]

    def _env(self, rec: JobRecord, launch: Launch, devices: dict[int, list[int]]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _HIDDEN_ENV}
        env.update(launch.env)
        visible = [str(d) for ids in devices.values() for d in ids]
        env.update(
            STEPPE_JOB_ID=str(rec.job_id),
            STEPPE_JOB_NAME=launch.name,
            STEPPE_PROJECT=launch.project,
            STEPPE_USER=launch.user,
            STEPPE_GPUS=str(rec.gpus),
            STEPPE_GPU_TYPE=rec.gpu_type,
            STEPPE_NODELIST=",".join(self.node_names[n] for n, _ in rec.allocation),
            CUDA_VISIBLE_DEVICES=",".join(visible),
        )
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
        info = self.outcome(run.job_id)
        if info is None:
            info = ExitInfo(0, -rc, time.time()) if rc < 0 else ExitInfo(rc, 0, time.time())
        self._finish(run, info)

    def _poll_adopted(self) -> None:
        while not self._closed.wait(0.5):
            with self._lock:
                adopted = [r for r in self._running.values() if r.proc is None]
            for run in adopted:
                if not process_alive(run.handle):
                    info = self.outcome(run.job_id)
                    if info is None:
                        sig = signal.SIGKILL if run.stopping else 0
                        info = ExitInfo(0, int(sig), time.time(), "" if sig else "exit status unknown")
                    self._finish(run, info)


def _wrap(argv: list[str]) -> int:
    """``--exit-file PATH -- COMMAND...``: run COMMAND, record how it ended, exit alike."""
    if len(argv) < 4 or argv[0] != "--exit-file" or argv[2] != "--":
        print("usage: python -m steppe.executors.local --exit-file PATH -- COMMAND...", file=sys.stderr)
        return 2
    exit_file, cmd = Path(argv[1]), argv[3:]
    try:
        child = subprocess.Popen(cmd)
    except OSError as exc:
        print(f"steppe: cannot run {cmd[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        _write_json(exit_file, {"exit_code": 127, "signal": 0, "end_s": time.time()})
        return 127
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the command gets the group's SIGTERM; we stay to record
    rc = child.wait()
    code, sig = (0, -rc) if rc < 0 else (rc, 0)
    _write_json(exit_file, {"exit_code": code, "signal": sig, "end_s": time.time()})
    return code if sig == 0 else 128 + sig


if __name__ == "__main__":
    sys.exit(_wrap(sys.argv[1:]))
