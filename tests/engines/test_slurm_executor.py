"""The Slurm executor against a real slurmctld, slurmd and munged (``scripts/slurm_throwaway.py``).

Each test drives a ``SlurmExecutor`` as the hub's loop would (start, stop, a new instance after
a restart) and checks what Slurm itself says. Waits poll with deadlines far above what a job
takes here (about a second from ``start`` to its exit), so a loaded machine slows the tests
down without failing them.
"""

from __future__ import annotations

import json
import pwd
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubtest import searchable_root
from slurm_throwaway import ThrowawaySlurm

from engines.slurmtest import JOB_PY, Harness, wait_for
from steppe.executors.base import Handle
from steppe.executors.slurm_submit import marker

WAIT_FLAG = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.05)\nprint('done', flush=True)\n"


@pytest.fixture
def harness(slurm: ThrowawaySlurm, job_account: str, tmp_path: Path) -> Iterator[Harness]:
    """An executor on a fresh data directory; its Slurm jobs (and any other) are cancelled afterwards."""
    data = searchable_root() / f"slurm-{tmp_path.name}"
    data.mkdir(mode=0o711)
    data.chmod(0o711)
    h = Harness(slurm, data, job_account)
    try:
        yield h
    finally:
        h.ex.close()
        if not slurm.procs.get("slurmctld"):
            slurm.start_controller()
        ids = h.slurm("squeue", "-h", "-o", "%i").split()
        if ids:
            subprocess.run(["scancel", "--full", "--signal=KILL", *ids], env=slurm.env(), check=False)
            subprocess.run(["scancel", *ids], env=slurm.env(), check=False)
            wait_for(lambda: not h.slurm("squeue", "-h", "-o", "%i").split(), what="the cluster to empty")


def flag_job(flag: Path, code: int = 0) -> list[str]:
    """A job that runs until ``flag`` exists, then exits ``code``."""
    return [JOB_PY, "-c", WAIT_FLAG + f"sys.exit({code})", str(flag)]


def launched(h: Harness, n: int, placed: bool = False) -> dict[int, Handle]:
    """The handles of the first ``n`` submissions (with Slurm's devices if ``placed``), gathered as the loop does."""
    got: dict[int, Handle] = {}

    def gather() -> bool:
        for job_id, handle in h.ex.take_launched().items():
            got[job_id] = handle
        return len(got) >= n and all(x["devices"] or not placed for x in got.values())

    wait_for(gather, what=f"{n} launches")
    return got


def test_jobs_run_as_their_account_with_exit_codes_environment_and_logs(
    harness: Harness, job_account: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hub-secret")
    probe = (
        "import os; print(os.getuid(), os.getgid(), oct(os.umask(0)), os.getcwd());"
        "print(sorted(k for k in os.environ if k in ('AWS_SECRET_ACCESS_KEY', 'SBATCH_EXCLUSIVE', 'MY_VAR')));"
        "env = os.environ; print(env['STEPPE_JOB_ID'], env['STEPPE_GPUS'], env['STEPPE_GPU_TYPE']); exit(4)"
    )
    h.run(1, 2, [JOB_PY, "-c", probe], env={"MY_VAR": "x", "SBATCH_EXCLUSIVE": "1"})
    h.run(2, 1, script="#!/bin/sh\necho from-script $STEPPE_NODELIST $STEPPE_GPUS\n#SBATCH --exclusive\n")
    h.run(3, 1, ["no-such-command-xyz"])
    h.run(4, 1, ["true"], user="bob", user_id=8)  # a hub-created uid: no passwd entry for Slurm
    ends = h.ends(4)
    assert (ends[1].slurm, ends[2].slurm, ends[3].slurm) == ("4:0", "0:0", "127:0")
    assert ends[4].detail == (
        "launch failed: hub user bob runs as uid 240008, which has no passwd entry; Slurm runs jobs only as "
        "accounts its hosts know: map the user to an existing account with --accounts"
    )
    entry = pwd.getpwnam(job_account)
    work = h.ex.work_dir(1)
    assert h.out(1).splitlines() == [f"{entry.pw_uid} {entry.pw_gid} 0o77 {work}", "['MY_VAR']", "1 2 H200"]
    assert h.out(2) == f"from-script {h.cluster.node} 1\n"
    assert "no-such-command-xyz" in h.out(3, "e")
    st = (work / "o").stat()
    assert h.ex.outputs(1)["stdout"] == (st.st_dev, st.st_ino) and st.st_uid == entry.pw_uid
    handles = launched(h, 3)
    assert sorted(handles) == [1, 2, 3] and all(isinstance(x["slurm_job_id"], int) for x in handles.values())


def test_stop_sends_sigterm_then_sigkill_after_the_grace_period(harness: Harness) -> None:
    h = harness
    polite = h.run(1, 1, [JOB_PY, "-c", "import time; print('up', flush=True); time.sleep(60)"], walltime_s=90)
    stubborn_code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True);"
                     "time.sleep(60)")  # fmt: skip
    stubborn = h.run(2, 1, [JOB_PY, "-c", stubborn_code])
    wait_for(lambda: all((h.ex.work_dir(j) / "o").exists() and h.out(j) == "up\n" for j in (1, 2)), what="jobs up")
    slurm_id = h.slurm_ids()[1]
    # the walltime is the hub's (it stops the job); Slurm's limit is a backstop: 90 s + 1 s grace + 1 min
    assert "TimeLimit=00:03:00" in h.slurm("scontrol", "-o", "show", "job", str(slurm_id))
    t0 = time.monotonic()
    h.ex.stop(polite, 0.0)
    h.ex.stop(stubborn, 0.0)
    ends = h.ends(2)
    assert (ends[1].slurm, ends[2].slurm) == ("0:15", "0:9")
    assert time.monotonic() - t0 >= h.grace_s


def test_a_new_executor_adopts_running_jobs_and_reads_ends_it_missed(harness: Harness, job_account: str) -> None:
    h = harness
    flags = [h.data / f"flag{i}" for i in range(3)]
    running = h.run(1, 1, flag_job(flags[1]))
    ended = h.run(2, 1, flag_job(flags[2], code=3))
    handles = launched(h, 2, placed=True)
    h.ex.close()  # the hub goes down; its jobs run on in Slurm
    flags[2].touch()
    sid = str(handles[2]["slurm_job_id"])
    wait_for(lambda: h.slurm("squeue", "-h", "-t", "all", "-j", sid, "-o", "%T").strip() == "FAILED", what="end")
    ex = h.restart()
    found = ex.find_launch(1, running.last_start_s)
    assert found is not None and found["slurm_job_id"] == handles[1]["slurm_job_id"]
    assert ex.find_launch(1, running.last_start_s + 1.0) is None  # another start of it was never launched
    assert ex.adopt(running, handles[1]) and not ex.adopt(ended, handles[2])
    info = ex.outcome(2, ended.last_start_s)
    assert info is not None and info.slurm == "3:0"
    flags[1].touch()
    assert h.ends(1)[1].slurm == "0:0"
    # the crash window: the intent was written and sbatch ran, but the hub died before it read the id
    start_s = time.time()
    mark = marker(3, start_s)
    intent = {"job_id": 3, "start_s": start_s, "marker": mark, "uid": pwd.getpwnam(job_account).pw_uid,
              "slurm_id": None, "stdout": "/dev/null", "stderr": "/dev/null"}  # fmt: skip
    (h.data / "slurm" / "3.json").write_text(json.dumps(intent))
    out = h.slurm("sbatch", "--parsable", f"--uid={job_account}", f"--gid={job_account}", f"--comment={mark}",
                  "--chdir=/tmp", "--output=/dev/null", "--wrap", "sleep 30")  # fmt: skip
    again = ex.find_launch(3, start_s)
    assert again is not None and again["slurm_job_id"] == int(out.strip())
    (h.data / "slurm" / "4.json").write_text(json.dumps({**intent, "job_id": 4, "marker": marker(4, start_s)}))
    assert ex.find_launch(4, start_s) is None  # an intent Slurm never saw: requeue it


def test_inventory_counts_gpus_of_jobs_steppe_did_not_submit(harness: Harness) -> None:
    h = harness
    node = h.cluster.node
    assert h.ex.inventory().gpus == {node: tuple(range(8))}
    mine = h.run(1, 2, ["sleep", "60"])
    launched(h, 1, placed=True)
    foreign = h.slurm("sbatch", "--parsable", "--gres=gpu:h200:5", "--output=/dev/null", "--chdir=/tmp",
                      "--wrap", "sleep 60").strip()  # fmt: skip
    wait_for(lambda: h.ex.inventory().busy == {node: 5}, what="the foreign job's GPUs in busy")
    queued = h.run(2, 4, ["sleep", "60"])  # 2 + 5 + 4 > 8: Slurm queues it behind the foreign job
    wait_for(lambda: h.slurm_ids().get(2), what="the submission")
    sid = str(h.slurm_ids()[2])
    assert h.slurm("squeue", "-h", "-j", sid, "-o", "%T").strip() == "PENDING"
    h.ex.stop(queued, 0.0)
    assert h.ends(1)[2].slurm == "0:15"  # cancelled before it ran: never COMPLETED
    h.slurm("scancel", foreign)
    wait_for(lambda: h.ex.inventory().busy == {}, what="busy to clear")
    h.ex.stop(mine, 0.0)
    assert h.ends(1)[1].slurm == "0:15"


def test_engine_down_then_back_loses_and_duplicates_nothing(harness: Harness, slurm: ThrowawaySlurm) -> None:
    h = harness
    flags = [h.data / f"flag{i}" for i in range(3)]
    stopped = h.run(1, 1, flag_job(flags[1]))
    h.run(2, 1, flag_job(flags[2], code=5))
    launched(h, 2, placed=True)
    assert h.ex.reachable()
    slurm.stop_controller()
    wait_for(lambda: not h.ex.reachable(), timeout_s=20, what="reachable() to turn False")
    flags[2].touch()  # ends while slurmctld is down
    h.ex.stop(stopped, 0.0)  # a cancel while down waits for slurmctld
    h.run(3, 1, ["true"])  # a start racing the outage is submitted once slurmctld is back
    time.sleep(h.ex.opts.poll_s * 2)
    assert h.exits.empty()
    slurm.start_controller()
    wait_for(h.ex.reachable, timeout_s=20, what="reachable() to turn True")
    ends = h.ends(3, timeout_s=60)
    assert {j: e.slurm for j, e in ends.items()} == {1: "0:15", 2: "5:0", 3: "0:0"}
    time.sleep(h.ex.opts.poll_s * 4)
    assert h.exits.empty()  # each end reported once
    mark = json.loads(h.ex.record_path(3).read_text())["marker"]
    comments = h.slurm("squeue", "-h", "-t", "all", "-o", "%k").split()
    assert comments.count(mark) == 1  # submitted once
