"""Run a throwaway Ray head on loopback for tests and benchmarks; kill exactly its processes after.

``throwaway_ray(gpus=8, gpu_type="H200")`` is a context manager yielding a ``RayHead``: a real
``ray start --head --block`` bound to 127.0.0.1 with its GCS, dashboard (the Job Submission
API), agents and object manager on free ports, ``--num-gpus N`` (declared: Ray does not need
real GPUs to hand out GPU resources) and one custom resource per GPU, ``gpu_type:<TYPE>``, so a
job can ask for GPUs of a type. Its ``--temp-dir`` is a fresh short directory under /tmp (Ray's
Unix sockets live there and their paths may not exceed ~107 bytes).

``head.job_api`` is the Job API's URL (``http://127.0.0.1:PORT``). ``head.stop()`` kills the
head (the engine goes down: every process it started, jobs included), ``head.start()`` starts
it again on the same ports, so the address stays the same (a fresh GCS: jobs of the old head
are not in its job table). On exit, whatever happened, the head's processes are killed (found
by their parent chain from ``ray start`` and by the head's temp dir in their command line or
``RAY_ADDRESS``, never by a name) and the temp dir deleted. Nothing else on the machine is
touched: never a bare ``ray stop``, which kills every Ray of every user.

Ray comes from the ``engines`` extra (``make`` installs it); this script installs nothing. Any
failure raises ``RayUnavailable`` with what went wrong (tests fail with it, never skip).

Run it directly to keep one running until Ctrl-C::

    python scripts/ray_throwaway.py --gpus 8 --gpu-type H200   # prints the Job API address
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from free_ports import free_ports

START_TIMEOUT_S = 120.0
"""A head starts in 5-15 s on an idle machine; a loaded 2-core one may take several times that."""


class RayUnavailable(RuntimeError):
    """A throwaway Ray head could not be started or did not answer."""


def ray_binary() -> Path:
    """The ``ray`` command next to this interpreter (the project's virtual environment)."""
    found = Path(sys.executable).parent / "ray"
    if not found.exists():
        raise RayUnavailable(f"no 'ray' command next to {sys.executable}: install the engines extra (make)")
    return found


def _start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _children_by_parent() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(root: int) -> set[int]:
    tree, found, todo = _children_by_parent(), set(), [root]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _marked(marks: tuple[bytes, ...]) -> set[int]:
    """Processes whose command line or environment names this head (its temp dir or GCS address)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            try:
                text = (entry / part).read_bytes()
            except OSError:
                continue
            if any(mark in text for mark in marks):
                found.add(int(entry.name))
                break
    return found


class RayHead:
    """One throwaway head's ports, temp dir and processes; see the module docstring."""

    def __init__(self, gpus: int, gpu_type: str, cpus: int = 1, object_store_mb: int = 80) -> None:
        self.gpus, self.gpu_type, self.cpus, self.object_store_mb = gpus, gpu_type, cpus, object_store_mb
        self.base = Path(tempfile.mkdtemp(prefix="sr-", dir="/tmp"))
        names = (
            "--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port",
            "--ray-client-server-port",
        )  # fmt: skip
        self.gcs_port, self.dashboard_port, *others = free_ports(2 + len(names))
        self.other_ports = dict(zip(names, others, strict=True))
        self.job_api = f"http://127.0.0.1:{self.dashboard_port}"
        self.gcs_address = f"127.0.0.1:{self.gcs_port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.base / "head.log"

    @property
    def gpu_resource(self) -> str:
        """The custom resource that counts this head's GPUs of its type."""
        return f"gpu_type:{self.gpu_type}"

    def command(self) -> list[str]:
        ports = [str(a) for name, port in self.other_ports.items() for a in (name, port)]
        return [
            str(ray_binary()), "start", "--head", "--block", "--disable-usage-stats",
            "--node-ip-address", "127.0.0.1", "--port", str(self.gcs_port),
            "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(self.dashboard_port),
            *ports, "--num-cpus", str(self.cpus), "--num-gpus", str(self.gpus),
            "--resources", json.dumps({self.gpu_resource: self.gpus}),
            "--object-store-memory", str(self.object_store_mb * 1024 * 1024),
            "--temp-dir", str(self.base / "t"), "--include-log-monitor", "false",
        ]  # fmt: skip

    def start(self, timeout_s: float = START_TIMEOUT_S) -> RayHead:
        """Start the head and wait until its Job API answers; raises ``RayUnavailable`` if it does not."""
        if self.proc is not None and self.proc.poll() is None:
            raise RayUnavailable("this throwaway Ray head is already running")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        # no token auth, whatever ~/.ray/auth_token holds (Ray turns it on when that file exists)
        env.update(RAY_USAGE_STATS_ENABLED="0", RAY_JOB_STOP_WAIT_TIME_S="3", RAY_AUTH_MODE="disabled")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RayUnavailable(f"ray start exited with {self.proc.returncode}: {self._log_tail()}")
            if self.answers():
                return self
            time.sleep(0.2)
        self.stop()
        raise RayUnavailable(f"the Ray head's Job API did not answer within {timeout_s:.0f} s: {self._log_tail()}")

    def answers(self) -> bool:
        """True when the Job API answers and the head's node has registered its GPUs."""
        with contextlib.suppress(httpx.HTTPError, ValueError):
            if httpx.get(self.job_api + "/api/version", timeout=5).status_code != 200:
                return False
            nodes = httpx.get(self.job_api + "/nodes?view=summary", timeout=5).json()
            return bool(nodes.get("data", {}).get("summary"))
        return False

    def stop(self) -> None:
        """Kill every process of this head (jobs included) and wait until they are gone."""
        if self.proc is None:
            return
        pids = _descendants(self.proc.pid) | {self.proc.pid}
        marks = (str(self.base).encode(), f"RAY_ADDRESS={self.gcs_address}".encode())
        pids |= _marked(marks)
        ticks = {pid: _start_ticks(pid) for pid in pids}
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_start_ticks(p) == t and t is not None for p, t in ticks.items()):
            time.sleep(0.05)
        for pid in _marked(marks):  # a late child (a watcher, a job) that started while we were killing
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.proc = None

    def close(self) -> None:
        """Stop the head and delete its temp dir."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-8:])
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def throwaway_ray(gpus: int = 8, gpu_type: str = "H200", cpus: int = 1) -> Iterator[RayHead]:
    """A running throwaway Ray head; stopped and its temp dir deleted on exit, whatever happens."""
    head = RayHead(gpus, gpu_type, cpus)
    try:
        head.start()
        yield head
    finally:
        head.close()


def main() -> None:
    ap = argparse.ArgumentParser(description="Run a throwaway Ray head on loopback until Ctrl-C.")
    ap.add_argument("--gpus", type=int, default=8, help="GPUs the head declares (default 8)")
    ap.add_argument("--gpu-type", default="H200", help="their type: a custom resource gpu_type:TYPE (default H200)")
    args = ap.parse_args()
    t0 = time.monotonic()
    with throwaway_ray(args.gpus, args.gpu_type) as head:
        print(f"{head.job_api}  (ready in {time.monotonic() - t0:.1f} s; Ctrl-C stops and deletes it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
