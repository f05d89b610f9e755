"""The local executor with real processes: environment, GPUs, exit codes, stop, adoption."""

from __future__ import annotations

import queue
import sys
import time
from pathlib import Path

from steppe.core.job import JobSpec, JobState
from steppe.core.records import JobRecord
from steppe.executors.local import ExitInfo, Launch, LocalExecutor, process_alive

PY = sys.executable


def record(job_id: int, gpus: int) -> JobRecord:
    rec = JobRecord(JobSpec(job_id, 0.0, gpus, 60.0, 60.0, "kaznu", "kaznu/nlp"), seq=job_id)
    rec.state, rec.allocation, rec.gpu_type, rec.epoch = JobState.RUNNING, ((0, gpus),), "H100", 1
    return rec


class Harness:
    def __init__(self, tmp: Path, grace_s: float = 0.5) -> None:
        self.tmp = tmp
        self.exits: queue.Queue[tuple[int, int, ExitInfo]] = queue.Queue()
        self.launches: dict[int, Launch] = {}
        self.ex = LocalExecutor(tmp, {0: [0, 1, 2, 3]}, ["node1"], grace_s)
        self.ex.bind(lambda j, e, info: self.exits.put((j, e, info)), self.launches.__getitem__)

    def run(self, job_id: int, gpus: int, argv: list[str] | None = None, script: str | None = None) -> JobRecord:
        d = self.tmp / f"out{job_id}"
        d.mkdir()
        env = {"MY_VAR": "x"}
        self.launches[job_id] = Launch(argv, script, str(d), env, str(d / "o"), str(d / "e"), "n", "kaznu/nlp", "alice")
        rec = record(job_id, gpus)
        self.ex.start(rec, 0.0)
        return rec

    def out(self, job_id: int) -> str:
        return (self.tmp / f"out{job_id}" / "o").read_text()


def test_environment_gpus_and_exit_codes(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    code = "import os; print(*(os.environ[k] for k in ('STEPPE_JOB_ID', 'CUDA_VISIBLE_DEVICES', 'MY_VAR'))); exit(4)"
    h.run(1, 2, [PY, "-c", code])
    h.run(2, 2, script="#!/bin/sh\necho from-script $STEPPE_NODELIST $STEPPE_GPUS\n")
    ends = dict(h.exits.get(timeout=10)[::2] for _ in range(2))
    assert ends[1].slurm == "4:0" and h.out(1) == "1 0,1 x\n"
    assert ends[2].slurm == "0:0" and h.out(2) == "from-script node1 2\n"
    assert set(h.ex.take_launched()) == {1, 2}
    h.run(3, 4, ["no-such-command-xyz"])  # every GPU is free again
    job_id, _, info = h.exits.get(timeout=10)
    assert (job_id, info.slurm) == (3, "127:0")
    assert "cannot run 'no-such-command-xyz'" in (tmp_path / "out3" / "e").read_text()


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    h = Harness(tmp_path, grace_s=0.3)
    polite = h.run(1, 1, [PY, "-c", "import time; print('up', flush=True); time.sleep(30)"])
    stubborn = h.run(2, 1, ["/bin/sh", "-c", "trap '' TERM; echo up; sleep 30 & wait; sleep 30"])
    for job_id in (1, 2):
        _wait_output(h, job_id)
    h.ex.stop(polite, 1.0)
    h.ex.stop(stubborn, 1.0)
    ends = dict(h.exits.get(timeout=10)[::2] for _ in range(2))
    assert ends[1].slurm == "0:15" and ends[2].slurm == "0:9"


def test_adopt_after_restart(tmp_path: Path) -> None:
    first = Harness(tmp_path)
    first.run(1, 1, [PY, "-c", "import time; print('up', flush=True); time.sleep(1); exit(2)"])
    _wait_output(first, 1)
    handle = first.ex.take_launched()[1]
    first.ex.close()  # the hub goes away; the job does not
    again = Harness(tmp_path)
    assert process_alive(handle) and again.ex.adopt(record(1, 1), handle)
    job_id, epoch, info = again.exits.get(timeout=10)  # noticed by the poller, read from exit.json
    assert (job_id, epoch, info.slurm) == (1, 1, "2:0")
    assert not process_alive(handle) and not again.ex.adopt(record(1, 1), handle)


def _wait_output(h: Harness, job_id: int) -> None:
    deadline = time.monotonic() + 10
    while not (h.tmp / f"out{job_id}" / "o").exists() or not h.out(job_id).startswith("up"):
        assert time.monotonic() < deadline, f"job {job_id} printed nothing"
        time.sleep(0.02)


def test_fleet_from_nvml_devices() -> None:
    from steppe.control.machine import build_fleet, fleet_from_devices
    from steppe.executors.local import GpuDevice, discover_gpus

    found = [GpuDevice(0, "NVIDIA H200", "GPU-a", 141.0), GpuDevice(1, "NVIDIA H200", "GPU-b", 141.0),
             GpuDevice(2, "Tesla T4", "GPU-c", 16.0)]  # fmt: skip
    fleet = fleet_from_devices("gpu01", found)
    assert [(n.name, n.gpu_type.name, n.gpus) for n in fleet.cluster.nodes] == [("gpu01-h200", "H200", 2),
                                                                                 ("gpu01-t4", "T4", 1)]  # fmt: skip
    assert fleet.devices == {0: [0, 1], 1: [2]}
    if not discover_gpus():  # no GPUs here: the hub asks for a declaration rather than guessing
        import pytest

        from steppe.core.errors import ConfigError

        with pytest.raises(ConfigError, match="--gpus N"):
            build_fleet()
