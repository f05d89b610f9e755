"""The Ray executor against a real Ray head: runs, exit codes, stops, logs, re-adoption, inventory, outages.

Each test has its own data directory, so its executor has its own hub id and submission ids
(``steppe-<hub id>-<job>-<start>``); several executors share the one head as several hubs
would. Every wait has a deadline (``DEADLINE_S``) measured against a loaded 2-core machine,
where a Ray job takes 1-4 s from submission to running; no test sleeps a fixed time.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from ray_throwaway import RayHead

from steppe.core.job import JobSpec, JobState
from steppe.core.records import JobRecord
from steppe.executors import EXECUTORS, ExecutorSetup, make_executor
from steppe.executors.base import ExitInfo, Launch
from steppe.executors.ray import RayExecutor
from steppe.executors.rayapi import RayAddressRefused

DEADLINE_S = 60.0
SH = "/bin/sh"


def record(job_id: int, gpus: int, start_s: float) -> JobRecord:
    rec = JobRecord(JobSpec(job_id, 0.0, gpus, 600.0, 600.0, "kaznu", "kaznu/nlp"), seq=job_id)
    rec.state, rec.allocation, rec.gpu_type, rec.epoch = JobState.RUNNING, ((0, gpus),), "H200", 1
    rec.last_start_s = start_s
    return rec


def until(predicate: Callable[[], object], what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.05)


class Harness:
    """One executor (a hub) bound to an exit queue, with the launches it reads."""

    def __init__(self, data: Path, head: RayHead, grace_s: float = 1.0, **options: str) -> None:
        self.data, self.head = data, head
        self.exits: queue.Queue[tuple[int, int, ExitInfo]] = queue.Queue()
        self.launches: dict[int, Launch] = {}
        setup = ExecutorSetup(data, {0: list(range(8))}, [_hostname()], grace_s, None,
                              {"address": head.job_api, "poll_s": "0.2", "log_s": "0.5", "inventory_s": "0.5",
                               **options})  # fmt: skip
        ex = make_executor("ray", setup)
        assert isinstance(ex, RayExecutor)
        self.ex = ex
        self.ex.bind(lambda j, e, info: self.exits.put((j, e, info)), self.launches.__getitem__)

    def run(self, job_id: int, gpus: int, shell: str, start_s: float | None = None, script: bool = False) -> JobRecord:
        work = f"{self.data}/spool/{job_id}"
        argv = None if script else [SH, "-c", shell]
        text = f"#!{SH}\n{shell}\n" if script else None
        self.launches[job_id] = Launch(argv, text, work, {"MY_VAR": "x"}, f"{work}/stdout", f"{work}/stderr",
                                       "train", "kaznu/nlp", "alice", 7)  # fmt: skip
        rec = record(job_id, gpus, time.time() if start_s is None else start_s)
        self.ex.start(rec, rec.last_start_s)
        return rec

    def exit(self, timeout_s: float = DEADLINE_S) -> tuple[int, int, ExitInfo]:
        return self.exits.get(timeout=timeout_s)

    def ray_status(self, rec: JobRecord) -> str:
        sid = self.sid(rec)
        return str(httpx.get(f"{self.head.job_api}/api/jobs/{sid}", timeout=5).json()["status"])

    def sid(self, rec: JobRecord) -> str:
        return f"steppe-{self.ex.hub_id}-{rec.job_id}-{round(rec.last_start_s * 1_000_000)}"

    def output(self, job_id: int) -> str:
        """What the executor has mirrored of the job's output so far ("" before its first copy)."""
        path = Path(f"{self.data}/spool/{job_id}/stdout")
        return path.read_text() if path.exists() else ""


def _hostname() -> str:
    import socket

    return socket.gethostname().split(".")[0]


@pytest.fixture
def hub(tmp_path: Path, live_head: RayHead) -> Iterator[Harness]:
    made = Harness(tmp_path / "data", live_head)
    yield made
    made.ex.close()


def test_a_job_runs_with_its_env_and_reports_its_exit_code_and_output(
    hub: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPPE_HUB_SECRET_PROBE", "hub-only")  # in the hub's environment, never a job's
    shell = ('echo "id=$STEPPE_JOB_ID slurm=$SLURM_JOB_ID gpus=$STEPPE_GPUS my=$MY_VAR cap=$STEPPE_GPU_CAP '
             'secret=${STEPPE_HUB_SECRET_PROBE:-none} pwd=$(pwd)"; exit 3')  # fmt: skip
    rec = hub.run(11, 2, shell, script=True)
    job_id, epoch, info = hub.exit()
    assert (job_id, epoch, info.slurm, info.detail) == (11, 1, "3:0", "")
    assert hub.ex.take_launched()[11]["submission_id"] == hub.sid(rec)
    out = hub.output(11)
    assert out == f"id=11 slurm=11 gpus=2 my=x cap=1 secret=none pwd={hub.data}/spool/11\n"
    st = os.stat(f"{hub.data}/spool/11/stdout")
    assert hub.ex.outputs(11) == {"stdout": (st.st_dev, st.st_ino)}
    assert hub.ex.outcome(11, rec.last_start_s) == info
    assert hub.ex.reachable()


def test_stop_sends_sigterm_then_ray_kills_and_others_gpus_count_as_busy(tmp_path: Path, live_head: RayHead) -> None:
    hub = Harness(tmp_path / "data", live_head, grace_s=2.0)
    node = _hostname()
    other = {"entrypoint": "exec sleep 300", "submission_id": f"other-{os.getpid()}-{time.time_ns()}",
             "entrypoint_num_gpus": 2}  # fmt: skip
    try:
        polite = hub.run(21, 1, "echo up; exec sleep 300")
        stubborn = hub.run(22, 3, "trap 'echo got-term' TERM; echo up; while :; do sleep 0.1; done")
        httpx.post(f"{live_head.job_api}/api/jobs/", json=other, timeout=10).raise_for_status()  # not Steppe's
        until(lambda: hub.output(21) == "up\n" and hub.output(22) == "up\n", "both jobs to print")
        until(lambda: hub.ex.inventory().busy == {node: 2}, "the other job's 2 GPUs, and only those, in busy")
        assert hub.ex.inventory().gpus[node] == tuple(range(8))
        hub.ex.stop(polite, time.time())
        hub.ex.stop(stubborn, time.time())
        ends = {job_id: info for job_id, _, info in (hub.exit(), hub.exit())}
        assert ends[21].slurm == "0:15" and ends[22].slurm == "0:9"
        assert hub.ray_status(polite) == hub.ray_status(stubborn) == "STOPPED"
        assert "got-term" in hub.output(22)
    finally:
        httpx.post(f"{live_head.job_api}/api/jobs/{other['submission_id']}/stop", timeout=10)
        hub.ex.close()


def test_a_new_executor_adopts_running_jobs_and_reads_ends_it_did_not_watch(tmp_path: Path, live_head: RayHead) -> None:
    first = Harness(tmp_path / "data", live_head)
    long = first.run(31, 2, "echo long; exec sleep 300")
    short = first.run(32, 1, "echo short; sleep 2; exit 4")
    until(lambda: first.ray_status(long) == first.ray_status(short) == "RUNNING", "both jobs to run")
    first.ex.close()  # the hub crashes; its Ray jobs go on
    until(lambda: first.ray_status(short) == "FAILED", "the short job to end unwatched")

    second = Harness(tmp_path / "data", live_head)  # the hub restarts on the same data directory
    second.launches.update(first.launches)
    try:
        handle = second.ex.find_launch(31, long.last_start_s)
        assert handle is not None and handle["submission_id"] == first.sid(long)
        assert second.ex.adopt(long, handle)
        short_handle = second.ex.find_launch(32, short.last_start_s)
        assert short_handle is not None and not second.ex.adopt(short, short_handle)
        info = second.ex.outcome(32, short.last_start_s)
        assert info is not None and info.slurm == "4:0"
        never = second.ex.find_launch(33, 12345.0, wait_s=5)  # committed, never submitted: claimed, never to run
        assert never is None and second.ex.outcome(33, 12345.0) is None
        second.ex.stop(long, time.time())
        job_id, _, ended = second.exit()
        assert (job_id, ended.slurm) == (31, "0:15") and "long" in second.output(31)
        assert second.exits.empty()
    finally:
        second.ex.close()


def test_a_public_address_is_refused_unless_allowed(tmp_path: Path) -> None:
    assert "ray" in EXECUTORS
    with pytest.raises(RayAddressRefused) as refused:
        RayExecutor(tmp_path, ["n"], {"address": "http://8.8.8.8:8265"})
    assert "\n" not in str(refused.value) and "allow_public=yes" in str(refused.value)
    allowed = RayExecutor(tmp_path, ["n"], {"address": "http://8.8.8.8:8265", "allow_public": "yes",
                                            "timeout_s": "0.2"})  # fmt: skip
    allowed.close()
    assert not allowed.reachable()


def test_head_down_then_up_reports_lost_jobs_once_and_runs_nothing_twice(hub: Harness) -> None:
    rec = hub.run(51, 1, "echo up; exec sleep 300")
    until(lambda: hub.ray_status(rec) == "RUNNING" and hub.ex.reachable(), "the job to run")
    hub.head.stop()
    until(lambda: not hub.ex.reachable(), "reachable() to turn False")
    assert hub.exits.empty()  # nothing is decided while the head is away
    hub.head.start()
    until(hub.ex.reachable, "reachable() to turn True again")
    job_id, epoch, info = hub.exit()
    assert (job_id, epoch, info.slurm) == (51, 1, "0:9") and info.detail.startswith("lost:")
    listed = httpx.get(f"{hub.head.job_api}/api/jobs/", timeout=10).json()
    assert [j for j in listed if j["submission_id"].startswith(f"steppe-{hub.ex.hub_id}-")] == []
    time.sleep(3 * hub.ex.poll_s)  # a few more polls: the loss is reported once
    assert hub.exits.empty()
