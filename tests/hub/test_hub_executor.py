"""The local executor with real processes: accounts, environment, GPUs, exit codes, stop, adoption, crash windows."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubtest import JOB_PY, searchable_root

from steppe.core.job import JobSpec, JobState
from steppe.core.records import JobRecord
from steppe.executors.accounts import AccountMap
from steppe.executors.base import ExitInfo, Launch
from steppe.executors.local import LocalExecutor, process_alive, wrapper_pids

UID_BASE = 230000


def record(job_id: int, gpus: int, start_s: float = 0.0) -> JobRecord:
    rec = JobRecord(JobSpec(job_id, 0.0, gpus, 60.0, 60.0, "kaznu", "kaznu/nlp"), seq=job_id)
    rec.state, rec.allocation, rec.gpu_type, rec.epoch = JobState.RUNNING, ((0, gpus),), "H100", 1
    rec.last_start_s = start_s
    return rec


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory job accounts can pass through; its jobs are killed whatever happens."""
    d = searchable_root() / f"exec-{tmp_path.name}"
    d.mkdir(mode=0o711)
    d.chmod(0o711)
    yield d
    for handle in d.glob("jobs/*/handle.json"):
        with contextlib.suppress(ProcessLookupError, PermissionError, ValueError, KeyError):
            os.killpg(int(json.loads(handle.read_text())["pgid"]), signal.SIGKILL)


class Harness:
    def __init__(self, data: Path, grace_s: float = 0.5) -> None:
        self.data = data
        self.exits: queue.Queue[tuple[int, int, ExitInfo]] = queue.Queue()
        self.launches: dict[int, Launch] = {}
        self.ex = LocalExecutor(data, {0: [0, 1, 2, 3]}, ["node1"], grace_s, AccountMap(UID_BASE))
        self.ex.bind(lambda j, e, info: self.exits.put((j, e, info)), self.launches.__getitem__)

    def run(
        self, job_id: int, gpus: int, argv: list[str] | None = None, script: str | None = None, user_id: int = 7,
        env: dict[str, str] | None = None, stdout: str | None = None, start_s: float = 0.0,
    ) -> JobRecord:  # fmt: skip
        work = str(self.ex.work_dir(job_id))
        self.launches[job_id] = Launch(
            argv, script, work, env or {"MY_VAR": "x"}, stdout or f"{work}/o", f"{work}/e", "n", "kaznu/nlp",
            "alice", user_id,
        )  # fmt: skip
        rec = record(job_id, gpus, start_s)
        self.ex.start(rec, 0.0)
        return rec

    def out(self, job_id: int, name: str = "o") -> str:
        return (self.ex.work_dir(job_id) / name).read_text()

    def ends(self, n: int) -> dict[int, ExitInfo]:
        return dict(self.exits.get(timeout=15)[::2] for _ in range(n))


def test_environment_gpus_and_exit_codes(data_dir: Path) -> None:
    h = Harness(data_dir)
    code = "import os; print(*(os.environ[k] for k in ('STEPPE_JOB_ID', 'CUDA_VISIBLE_DEVICES', 'MY_VAR'))); exit(4)"
    h.run(1, 2, [JOB_PY, "-c", code])
    h.run(2, 2, script="#!/bin/sh\necho from-script $STEPPE_NODELIST $SLURM_JOB_ID $STEPPE_GPUS\n")
    ends = h.ends(2)
    assert ends[1].slurm == "4:0" and h.out(1) == "1 0,1 x\n"
    assert ends[2].slurm == "0:0" and h.out(2) == "from-script node1 2 2\n"
    assert set(h.ex.take_launched()) == {1, 2}
    h.run(3, 4, ["no-such-command-xyz"])  # every GPU is free again
    job_id, _, info = h.exits.get(timeout=10)
    assert (job_id, info.slurm) == (3, "127:0")
    assert info.detail == "launch failed: cannot run 'no-such-command-xyz': No such file or directory"


def test_a_job_sees_slurms_variables_and_its_exported_environment(data_dir: Path) -> None:
    """A Slurm script reads SLURM_* with Slurm's meaning; what its user exported (PATH included) reaches it, and
    the hub's own variables win over anything of the same name."""
    h = Harness(data_dir)
    names = ("SLURM_JOB_ID", "SLURM_JOB_NAME", "SLURM_JOB_NODELIST", "SLURM_NODELIST", "SLURM_JOB_NUM_NODES",
             "SLURM_NNODES", "SLURM_SUBMIT_DIR", "SLURM_JOB_ACCOUNT", "SLURM_JOB_USER", "SLURM_JOB_PARTITION",
             "SLURM_GPUS", "SLURM_GPUS_ON_NODE", "SLURM_JOB_GPUS", "SLURM_NTASKS", "SLURM_CLUSTER_NAME",
             "CUDA_VISIBLE_DEVICES", "STEPPE_JOB_ID", "OMP_NUM_THREADS", "PATH")  # fmt: skip
    script = "#!/bin/sh\n" + "".join(f'echo "{n}=${n}"\n' for n in names)
    work = str(h.ex.work_dir(5))
    own = {"OMP_NUM_THREADS": "8", "PATH": "/opt/x/bin:/usr/bin:/bin", "SLURM_JOB_ID": "9"}
    h.launches[5] = Launch(None, script, work, own, f"{work}/o", f"{work}/e", "train", "kaznu/nlp", "alice", 7,
                           submit_dir="/home/alice/run")  # fmt: skip
    rec = record(5, 2)
    rec.site = "astana"
    h.ex.start(rec, 0.0)
    assert h.ends(1)[5].slurm == "0:0", h.out(5, "e")
    seen = dict(line.split("=", 1) for line in h.out(5).splitlines())
    assert seen == {
        "SLURM_JOB_ID": "5", "SLURM_JOB_NAME": "train", "SLURM_JOB_NODELIST": "node1", "SLURM_NODELIST": "node1",
        "SLURM_JOB_NUM_NODES": "1", "SLURM_NNODES": "1", "SLURM_SUBMIT_DIR": "/home/alice/run",
        "SLURM_JOB_ACCOUNT": "kaznu/nlp", "SLURM_JOB_USER": "alice", "SLURM_JOB_PARTITION": "astana",
        "SLURM_GPUS": "2", "SLURM_GPUS_ON_NODE": "2", "SLURM_JOB_GPUS": "0,1", "SLURM_NTASKS": "1",
        "SLURM_CLUSTER_NAME": "steppe", "CUDA_VISIBLE_DEVICES": "0,1", "STEPPE_JOB_ID": "5", "OMP_NUM_THREADS": "8",
        "PATH": "/opt/x/bin:/usr/bin:/bin",
    }  # fmt: skip


def test_job_runs_as_its_users_account_and_cannot_reach_hub_secrets(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hub-secret")
    monkeypatch.setenv("STEPPE_TOKEN", "stp_hub")
    secret = data_dir / "admin-token"
    secret.write_text("stp_admin\n")
    secret.chmod(0o600)
    h = Harness(data_dir)
    paths = (str(secret), f"/proc/{os.getpid()}/environ", str(h.ex.job_dir(1) / "run.json"),
             str(data_dir / "spool" / "2" / "o"))  # fmt: skip
    probe = (
        "import os\n"
        "print(os.getuid(), os.getgid(), os.getgroups(), oct(os.umask(0)))\n"
        "print(sorted(k for k in os.environ if k in ('AWS_SECRET_ACCESS_KEY', 'STEPPE_TOKEN', 'STEPPE_URL')))\n"
        f"for path in {paths!r}:\n"
        "    try:\n"
        "        open(path).read(); print('read', path)\n"
        "    except PermissionError:\n"
        "        print('denied')\n"
    )
    h.run(2, 1, ["/bin/sh", "-c", "echo mine"], user_id=8)  # another user's job
    h.ends(1)
    h.run(1, 1, [JOB_PY, "-c", probe])
    assert h.ends(1)[1].slurm == "0:0", h.out(1, "e")
    lines = h.out(1).splitlines()
    assert lines[0] == f"{UID_BASE + 7} {UID_BASE + 7} [] 0o77"
    assert lines[1] == "[]"  # nothing of the hub's environment but the allow-list
    assert lines[2:] == ["denied"] * 4  # admin token, the hub's /proc environ, the hub's job records, another user
    work = h.ex.work_dir(1)
    assert (work.stat().st_uid, work.stat().st_mode & 0o777) == (UID_BASE + 7, 0o700)
    assert ((work / "o").stat().st_uid, (work / "o").stat().st_mode & 0o777) == (UID_BASE + 7, 0o600)
    assert (h.ex.spool_dir.stat().st_mode & 0o777, h.ex.jobs_dir.stat().st_mode & 0o777) == (0o711, 0o700)


def test_a_bad_launch_fails_that_job_only_and_frees_its_gpus(data_dir: Path) -> None:
    h = Harness(data_dir)
    h.run(1, 4, [JOB_PY, "-c", "print('a\x00b')"])  # a NUL byte that slipped past the API
    job_id, _, info = h.exits.get(timeout=10)
    assert job_id == 1 and info.detail.startswith("launch failed: job.argv[2]: contains a NUL byte")
    h.run(2, 4, ["/bin/echo", "next"])  # all four GPUs were given back
    assert h.ends(1)[2].slurm == "0:0" and h.out(2) == "next\n"


def test_outputs_follow_no_symlink(data_dir: Path) -> None:
    h = Harness(data_dir)
    h.run(1, 1, ["/bin/ln", "-s", "/etc/passwd", "evil"])
    assert h.ends(1)[1].slurm == "0:0"
    work = h.ex.work_dir(1)
    h.run(1, 1, ["/bin/echo", "x"], stdout=f"{work}/evil", start_s=1.0)  # the same job started again
    info = h.ends(1)[1]
    assert info.detail.startswith(f"launch failed: cannot open output {work}/evil") and info.exit_code == 127
    assert "x" not in Path("/etc/passwd").read_text().splitlines()


def test_stop_escalates_to_sigkill(data_dir: Path) -> None:
    h = Harness(data_dir, grace_s=0.3)
    polite = h.run(1, 1, [JOB_PY, "-c", "import time; print('up', flush=True); time.sleep(30)"])
    stubborn = h.run(2, 1, ["/bin/sh", "-c", "trap '' TERM; echo up; sleep 30 & wait; sleep 30"])
    for job_id in (1, 2):
        _wait_output(h, job_id)
    h.ex.stop(polite, 1.0)
    h.ex.stop(stubborn, 1.0)
    ends = h.ends(2)
    assert ends[1].slurm == "0:15" and ends[2].slurm == "0:9"


def test_adopt_after_restart(data_dir: Path) -> None:
    first = Harness(data_dir)
    first.run(1, 1, [JOB_PY, "-c", "import time; print('up', flush=True); time.sleep(1); exit(2)"], start_s=5.0)
    _wait_output(first, 1)
    handle = first.ex.take_launched()[1]
    first.ex.close()  # the hub goes away; the job does not
    again = Harness(data_dir)
    assert again.ex.find_launch(1, 5.0) == handle  # the wrapper wrote the same handle itself
    assert process_alive(handle) and again.ex.adopt(record(1, 1, 5.0), handle)
    job_id, epoch, info = again.exits.get(timeout=10)  # noticed by the poller, read from exit.json
    assert (job_id, epoch, info.slurm) == (1, 1, "2:0")
    assert not process_alive(handle) and not again.ex.adopt(record(1, 1, 5.0), handle)


def test_find_launch_tells_launched_from_never_launched(data_dir: Path) -> None:
    h = Harness(data_dir)
    assert h.ex.find_launch(1, 3.0) is None  # no launch intent at all: the hub died before launching
    h.run(1, 1, ["/bin/sh", "-c", "sleep 0.2"], start_s=3.0)
    handle = h.ex.find_launch(1, 3.0, wait_s=5.0)  # found at once, or as soon as the wrapper wrote it
    assert handle is not None and handle["start_s"] == 3.0
    h.ends(1)
    assert h.ex.find_launch(1, 4.0) is None  # a later start of the same job: that one never launched
    assert h.ex.outcome(1, 3.0) is not None and h.ex.outcome(1, 4.0) is None
    job_dir = h.ex.job_dir(1)  # an intent whose wrapper never came up (the hub died inside Popen)
    (job_dir / "handle.json").unlink()
    run = json.loads((job_dir / "run.json").read_text())
    (job_dir / "run.json").write_text(json.dumps({**run, "start_s": 9.0}))
    assert wrapper_pids(job_dir) == [] and h.ex.find_launch(1, 9.0) is None


def _wait_output(h: Harness, job_id: int) -> None:
    deadline = time.monotonic() + 10
    path = h.ex.work_dir(job_id) / "o"
    while not path.exists() or not h.out(job_id).startswith("up"):
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
        from steppe.core.errors import ConfigError

        with pytest.raises(ConfigError, match="--gpus N"):
            build_fleet()
