"""Install (if missing) and run a throwaway Slurm cluster of one node for tests and benchmarks.

``throwaway_slurm(gpus=8, gpu_type="h200")`` is a context manager yielding a ``ThrowawaySlurm``:
it makes a temporary directory and starts, all inside it,

* ``munged`` with its own key, pid, seed and log file (private to root) and its socket in a
  directory every account can enter, as ``/run/munge`` on a real node (a job may then run
  Slurm's commands, e.g. ``scontrol show job $SLURM_JOB_ID`` to read its GPU cap);
* ``slurmctld`` and ``slurmd`` (both as root, on free loopback ports) from a generated
  ``slurm.conf``: one node, this host, with ``gpus`` GPUs of ``gpu_type`` declared in a
  ``gres.conf`` whose ``File=`` entries are empty files in the directory (no GPU is needed:
  Slurm hands out the indices and sets ``CUDA_VISIBLE_DEVICES``, nothing opens a device),
  container-friendly plugins (``proctrack/linuxproc``, ``task/none``, no cgroups), no
  accounting database, and ``MinJobAge`` long enough that an ended job's exit code stays
  readable with ``scontrol show job`` while a hub restarts.

The object holds the paths (``conf``: give it to ``SLURM_CONF`` or ``steppe serve --executor
slurm --executor-opt conf=...``), ``node`` (the node's name), ``stop_controller()`` and
``start_controller()`` (the engine-down tests) and ``env()`` (an environment for Slurm's
commands). On exit every daemon it started is killed and the directory deleted, whatever
happened. Nothing outside the directory is touched: the package's own munge key, ``/etc/slurm``
and system services are left alone.

Run it directly to keep one running until Ctrl-C::

    python scripts/slurm_throwaway.py            # prints the conf path
    python scripts/slurm_throwaway.py --install  # only make sure the binaries are there

Any failure raises ``SlurmUnavailable`` with what went wrong (tests fail with it rather than
skip: CI must really run the Slurm tests).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from free_ports import free_ports

DAEMONS = ("munged", "slurmctld", "slurmd")
COMMANDS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")
PACKAGES = ("slurm-wlm", "munge")


class SlurmUnavailable(RuntimeError):
    """Slurm could not be installed or started."""


def _sbin(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def _missing() -> list[str]:
    return [name for name in (*DAEMONS, *COMMANDS) if _sbin(name) is None]


def ensure_installed() -> dict[str, str]:
    """The paths of the daemons and commands, installing Debian's packages if needed."""
    if _missing():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise SlurmUnavailable(
                f"Slurm is not installed (missing {', '.join(_missing())}); install 'slurm-wlm munge' (apt-get as root)"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SlurmUnavailable(f"{' '.join(cmd)} failed: {done.stderr.strip()[-800:]}")
        if _missing():
            raise SlurmUnavailable(f"apt-get installed {' '.join(PACKAGES)} but {', '.join(_missing())} is missing")
    return {name: str(_sbin(name)) for name in (*DAEMONS, *COMMANDS)}


def slurm_conf(base: Path, node: str, gpus: int, gpu_type: str, ports: list[int], cpus: int) -> str:
    """The ``slurm.conf`` of a one-node throwaway cluster under ``base``."""
    return f"""\
ClusterName=steppe-throwaway
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={base}/munge-run/munge.socket
StateSaveLocation={base}/ctld-state
SlurmdSpoolDir={base}/slurmd-spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/slurmctld.log
SlurmdLogFile={base}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
GresTypes=gpu
ReturnToService=2
SlurmdParameters=config_overrides
MpiDefault=none
SwitchType=switch/none
LaunchParameters=use_interactive_step
PrologFlags=NoHold
MinJobAge=3600
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=5
TCPTimeout=2
NodeName={node} NodeAddr=127.0.0.1 NodeHostname={node} CPUs={cpus} RealMemory=64000 State=UNKNOWN \\
  Gres=gpu:{gpu_type}:{gpus}
PartitionName=gpu Nodes={node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""


@dataclass
class ThrowawaySlurm:
    """A running one-node cluster (see the module docstring)."""

    base: Path
    node: str
    gpus: int
    gpu_type: str
    bins: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.base / "slurm.conf"

    def env(self) -> dict[str, str]:
        """The environment Slurm's commands need to reach this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def log(self, daemon: str) -> str:
        """The last lines of a daemon's log, for error messages."""
        path = self.base / ("munge/munged.log" if daemon == "munged" else f"{daemon}.log")
        with contextlib.suppress(OSError):
            return " | ".join(path.read_text(errors="replace").strip().splitlines()[-6:])
        return "(no log)"

    def _spawn(self, daemon: str, args: list[str]) -> None:
        out = open(self.base / f"{daemon}.out", "ab")  # noqa: SIM115 - the child keeps it
        try:
            self.procs[daemon] = subprocess.Popen(
                [self.bins[daemon], *args], stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                env={**os.environ, "SLURM_CONF": str(self.conf)}, start_new_session=True,
            )  # fmt: skip
        finally:
            out.close()

    def _wait(self, what: str, ready: Callable[[], bool], daemon: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            proc = self.procs.get(daemon)
            if proc is not None and proc.poll() is not None:
                raise SlurmUnavailable(f"{daemon} exited with status {proc.returncode}: {self.log(daemon)}")
            if ready():
                return
            time.sleep(0.1)
        raise SlurmUnavailable(f"{what} not ready after {timeout_s:.0f} s: {self.log(daemon)}")

    def _command_ok(self, *cmd: str) -> bool:
        try:
            done = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=10, check=False)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def start_munged(self) -> None:
        munge = self.base / "munge"
        self._spawn("munged", [
            "--foreground", "--force", f"--socket={self.base}/munge-run/munge.socket", f"--key-file={munge}/munge.key",
            f"--pid-file={munge}/munged.pid", f"--seed-file={munge}/munged.seed", f"--log-file={munge}/munged.log",
        ])  # fmt: skip
        self._wait("munged", (self.base / "munge-run" / "munge.socket").exists, "munged", 20)

    def start_controller(self) -> None:
        """Start ``slurmctld`` (again) and wait until it answers."""
        self._spawn("slurmctld", ["-D", "-f", str(self.conf)])
        self._wait("slurmctld", lambda: self._command_ok(self.bins["scontrol"], "ping"), "slurmctld")

    def stop_controller(self, sig: int = signal.SIGTERM) -> None:
        """Stop ``slurmctld`` (SIGTERM: it saves its state and exits); jobs and ``slurmd`` go on.

        SIGKILL is a crash: slurmctld then loses what it had not saved yet (a job started in the
        last seconds comes back pending, and its id may be given again).
        """
        self._kill("slurmctld", sig)

    def start_node(self) -> None:
        self._spawn("slurmd", ["-D", "-f", str(self.conf), "-N", self.node])
        self._wait("node " + self.node, self._node_idle, "slurmd")

    def _node_idle(self) -> bool:
        try:
            done = subprocess.run([self.bins["sinfo"], "-h", "-n", self.node, "-o", "%T"], env=self.env(),
                                  capture_output=True, text=True, timeout=10, check=False)  # fmt: skip
        except subprocess.TimeoutExpired:
            return False
        return done.stdout.strip() in ("idle", "mixed", "allocated")

    def _kill(self, daemon: str, sig: int) -> None:
        proc = self.procs.pop(daemon, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def stop_all(self) -> None:
        """Kill the daemons and every job process they started (those are in ``slurmstepd``'s sessions)."""
        for daemon in ("slurmctld", "slurmd"):
            self._kill(daemon, signal.SIGKILL)
        _kill_stepds(self.conf)
        self._kill("munged", signal.SIGTERM)


def _kill_stepds(conf: Path) -> None:
    """SIGKILL this cluster's ``slurmstepd`` processes (slurmd started them with ``SLURM_CONF=conf``;
    they outlive it) and every process below them: the jobs."""
    needle = f"SLURM_CONF={conf}\x00".encode()
    parents: dict[int, int] = {}
    stepds: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
            parents[int(entry.name)] = int(raw[raw.rfind(")") + 2 :].split()[1])
            if (entry / "comm").read_text().strip() == "slurmstepd" and needle in (entry / "environ").read_bytes():
                stepds.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    doomed = set(stepds)
    grew = True
    while grew:
        below = {pid for pid, parent in parents.items() if parent in doomed} - doomed
        doomed |= below
        grew = bool(below)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def throwaway_slurm(
    gpus: int = 8, gpu_type: str = "h200", cpus: int = 64, install: bool = True
) -> Iterator[ThrowawaySlurm]:
    """A running one-node cluster; see the module docstring.

    With ``install`` False (the tests), missing binaries are an error: the repository's set-up
    (``make services`` runs ``slurm_throwaway.py --install``) installs them, never a test.
    """
    if install:
        bins = ensure_installed()
    else:
        if _missing():
            raise SlurmUnavailable(
                f"Slurm is not installed (missing {', '.join(_missing())}): "
                "run 'python scripts/slurm_throwaway.py --install' as root"
            )
        bins = {name: str(_sbin(name)) for name in (*DAEMONS, *COMMANDS)}
    if os.geteuid() != 0:
        raise SlurmUnavailable("a throwaway Slurm runs slurmd, which must be root (to start jobs as their users)")
    base = Path(tempfile.mkdtemp(prefix="steppe-slurm-"))
    cluster = ThrowawaySlurm(base, socket.gethostname().split(".")[0] or "localhost", gpus, gpu_type, bins)
    try:
        base.chmod(0o755)  # job accounts pass through to the batch scripts in the spool
        munge = base / "munge"
        munge.mkdir(mode=0o700)
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        for sub in ("ctld-state", "slurmd-spool", "dev", "munge-run"):
            (base / sub).mkdir(mode=0o755)
        for i in range(gpus):
            (base / "dev" / f"nvidia{i}").touch()
        ports = free_ports(2)
        cluster.conf.write_text(slurm_conf(base, cluster.node, gpus, gpu_type, ports, cpus))
        last = f"[0-{gpus - 1}]" if gpus > 1 else "0"
        (base / "gres.conf").write_text(
            f"AutoDetect=off\nNodeName={cluster.node} Name=gpu Type={gpu_type} File={base}/dev/nvidia{last}\n"
        )
        cluster.start_munged()
        cluster.start_controller()
        cluster.start_node()
        yield cluster
    finally:
        cluster.stop_all()
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description="Run a throwaway one-node Slurm cluster until Ctrl-C.")
    ap.add_argument("--install", action="store_true", help="only install slurm-wlm and munge if missing")
    ap.add_argument("--gpus", type=int, default=8, help="GPUs on the node (default 8)")
    ap.add_argument("--gpu-type", default="h200", help="their Slurm GRES type (default h200)")
    args = ap.parse_args()
    t0 = time.monotonic()
    bins = ensure_installed()
    if args.install:
        print(f"Slurm and munge installed ({bins['slurmctld']}, {bins['munged']}; {time.monotonic() - t0:.1f} s)")
        return
    with throwaway_slurm(args.gpus, args.gpu_type) as cluster:
        print(f"SLURM_CONF={cluster.conf}  (ready in {time.monotonic() - t0:.1f} s; Ctrl-C stops and deletes it)",
              flush=True)  # fmt: skip
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
