"""Helpers for the Slurm executor's tests: an executor on the throwaway cluster, jobs, waiting."""

from __future__ import annotations

import json
import queue
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hubtest import HubProcess
from slurm_throwaway import ThrowawaySlurm

from steppe.core.job import JobSpec, JobState
from steppe.core.records import JobRecord
from steppe.executors.accounts import AccountMap
from steppe.executors.base import ExitInfo, Launch
from steppe.executors.slurm import SlurmExecutor

JOB_PY = "/usr/bin/python3"
POLL_S = 0.25
DEADLINE_S = 30.0
"""Waits poll rather than sleep: a job ends in about a second here, far more on a busy machine."""


@contextmanager
def serving(hub: HubProcess, slurm: ThrowawaySlurm) -> Iterator[HubProcess]:
    """``hub`` started; on the way out stopped, and every Slurm job left (its own, or a failed test's) cancelled."""
    try:
        yield hub.start()
    finally:
        hub.stop()
        ids = subprocess.run(["squeue", "-h", "-o", "%i"], env=slurm.env(), capture_output=True, text=True).stdout
        if ids.split():
            subprocess.run(["scancel", *ids.split()], env=slurm.env(), check=False)


def record(job_id: int, gpus: int, start_s: float, walltime_s: float = 600.0) -> JobRecord:
    rec = JobRecord(JobSpec(job_id, 0.0, gpus, walltime_s, walltime_s, "kaznu", "kaznu/nlp"), seq=job_id)
    rec.state, rec.allocation, rec.gpu_type, rec.epoch = JobState.RUNNING, ((0, gpus),), "H200", 1
    rec.last_start_s = start_s
    return rec


class Harness:
    """A ``SlurmExecutor`` bound to a queue of its exits; ``restart()`` is a new one on the same data."""

    def __init__(self, cluster: ThrowawaySlurm, data: Path, account: str, grace_s: float = 1.0) -> None:
        self.cluster, self.data, self.account, self.grace_s = cluster, data, account, grace_s
        self.exits: queue.Queue[tuple[int, int, ExitInfo]] = queue.Queue()
        self.launches: dict[int, Launch] = {}
        self.ex = self._executor()

    def _executor(self) -> SlurmExecutor:
        accounts = AccountMap(uid_base=240000, configured={"alice": self.account})
        options = {"conf": str(self.cluster.conf), "poll_s": str(POLL_S)}
        ex = SlurmExecutor(self.data, [self.cluster.node], self.grace_s, accounts, options)
        ex.bind(lambda j, e, info: self.exits.put((j, e, info)), self.launches.__getitem__)
        return ex

    def restart(self) -> SlurmExecutor:
        """Close this executor (as a hub that stops) and start a new one, as after a restart."""
        self.ex.close()
        self.exits = queue.Queue()
        self.ex = self._executor()
        return self.ex

    def run(self, job_id: int, gpus: int = 1, argv: list[str] | None = None, script: str | None = None,
            env: dict[str, str] | None = None, user: str = "alice", user_id: int = 7,
            walltime_s: float = 600.0) -> JobRecord:  # fmt: skip
        work = str(self.ex.work_dir(job_id))
        self.launches[job_id] = Launch(
            argv, script, work, env or {"MY_VAR": "x"}, f"{work}/o", f"{work}/e", f"job{job_id}", "kaznu/nlp", user,
            user_id,
        )  # fmt: skip
        rec = record(job_id, gpus, time.time(), walltime_s)
        self.ex.start(rec, rec.last_start_s)
        return rec

    def out(self, job_id: int, name: str = "o") -> str:
        return (self.ex.work_dir(job_id) / name).read_text()

    def ends(self, n: int, timeout_s: float = DEADLINE_S) -> dict[int, ExitInfo]:
        """The next ``n`` exits by job id (each job at most once)."""
        got: dict[int, ExitInfo] = {}
        deadline = time.monotonic() + timeout_s
        for _ in range(n):
            job_id, _, info = self.exits.get(timeout=max(deadline - time.monotonic(), 0.1))
            assert job_id not in got, f"job {job_id} reported twice"
            got[job_id] = info
        return got

    def slurm(self, *args: str) -> str:
        """A Slurm command's output against the throwaway cluster."""
        done = subprocess.run(args, env=self.cluster.env(), capture_output=True, text=True, timeout=30, check=True)
        return done.stdout

    def slurm_ids(self) -> dict[int, int]:
        """Steppe job id -> Slurm job id, from the executor's records."""
        ids = {int(p.stem): json.loads(p.read_text()).get("slurm_id") for p in (self.data / "slurm").glob("*.json")}
        return {job_id: int(sid) for job_id, sid in ids.items() if sid is not None}


def wait_for(predicate: Callable[[], object], timeout_s: float = DEADLINE_S, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
