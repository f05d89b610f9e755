"""A Slurm script submitted unchanged through ``steppe submit`` (in process, ``clihub``): its ``#SBATCH`` lines give
the job its GPUs, time and name, what Steppe does not support yet is named in one warning, the submitter's
environment and directory travel with it (``--export``), and the hub refuses what it sets itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clihub import CliHub, cli_hub

from steppe.client import HubError
from steppe.client import models as m

ISSUE_SCRIPT = """#!/bin/bash
#SBATCH --gres=gpu:1
#SBATCH -t 00:05:00
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --array=0-3
#SBATCH -J train
#SBATCH -A kaznu/nlp
python train.py
"""


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliHub]:
    with cli_hub(tmp_path, monkeypatch) as hub:
        yield hub


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The directory the user submits from, with the issue's script; their environment has a setting and the
    CLI's own token."""
    here = tmp_path / "run"
    here.mkdir()
    (here / "job.sh").write_text(ISSUE_SCRIPT)
    monkeypatch.chdir(here)
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    monkeypatch.setenv("STEPPE_TOKEN", "stp_never_sent")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")  # submitted from inside another Slurm job
    return here


def test_the_issues_script_submitted_unchanged(h: CliHub, run_dir: Path) -> None:
    r = h.steppe("alice", "submit", "--parsable", "job.sh")
    assert r.code == 0, r.err
    job = h.wait(int(r.out), "RUNNING")
    assert (job.gpus, job.walltime_s, job.name) == (1, 300.0, "train")
    warnings = [line for line in r.err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: not supported yet, ignored: --cpus-per-task=8, --mem=32G (the job "
                        "is submitted without them)"], r.err  # fmt: skip
    tasks = [j for j in h.hub.loop.state.jobs.values() if j.spec.array_job == int(r.out)]
    assert sorted(t.spec.array_task for t in tasks) == [0, 1, 2, 3]  # --array=0-3: four tasks
    assert "error" not in r.err
    launch = h.hub.loop.launches[job.id]
    assert launch.submit_dir == str(run_dir)
    assert launch.env["OMP_NUM_THREADS"] == "8" and "PATH" in launch.env
    assert not {"STEPPE_TOKEN", "SLURM_JOB_ID", "HOME", "PWD"} & set(launch.env)


def test_the_command_line_wins_and_export_chooses_what_goes(h: CliHub, run_dir: Path) -> None:
    (run_dir / "both.sh").write_text("#!/bin/sh\n#SBATCH -J slurm -t 10 --export=NONE\n#STEPPE -J steppe -A kaznu/nlp\n"
                                     "true\n")  # fmt: skip
    r = h.steppe("alice", "submit", "--parsable", "both.sh")
    job = h.wait(int(r.out), "RUNNING")
    assert (job.name, job.walltime_s, r.err) == ("steppe", 600.0, "")  # #STEPPE over #SBATCH
    assert h.hub.loop.launches[job.id].env == {}  # --export=NONE
    r = h.steppe("alice", "submit", "--parsable", "-J", "cli", "-t", "20", "--export", "OMP_NUM_THREADS,SEED=3",
                 "--env", "SEED=4", "both.sh")  # fmt: skip
    job = h.wait(int(r.out), "RUNNING")
    assert (job.name, job.walltime_s) == ("cli", 1200.0)  # the command line over both
    assert h.hub.loop.launches[job.id].env == {"OMP_NUM_THREADS": "8", "SEED": "4"}


def test_a_script_without_a_name_is_named_after_its_file_as_sbatch_names_it(h: CliHub, run_dir: Path) -> None:
    (run_dir / "prep.sbatch").write_text("#!/bin/sh\n#SBATCH -A kaznu/nlp -o logs/%x-%j.out\ntrue\n")
    job = h.wait(int(h.steppe("alice", "submit", "--parsable", "prep.sbatch").out), "RUNNING")
    assert job.name == "prep.sbatch"
    assert h.hub.loop.launches[job.id].stdout_path.endswith(f"/{job.id}/logs/prep.sbatch-{job.id}.out")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--export", "STEPPE_TOKEN"], "--export: STEPPE_TOKEN is this CLI's own setting; it is never exported"),
        (["--export", "ALL,SLURM_JOB_ID=1"], "--export: SLURM_JOB_ID is set by the hub in each job"),
        (["--export", "NONE,X"], "--export: NONE stands alone"),
        (["--gres", "gpu:x:y"], "--gres: bad --gres 'gpu:x:y'"),
        (["bad.sh"], "SCRIPT: line 3: #SBATCH: unknown option '--memory'"),
        (["nothing.sh"], "SCRIPT: line 2: #SBATCH: --mem needs a value"),
    ],
)
def test_malformed_options_are_one_line_errors(h: CliHub, run_dir: Path, args: list[str], words: str) -> None:
    (run_dir / "bad.sh").write_text("#!/bin/sh\n#SBATCH -J x\n#SBATCH --memory=1G\ntrue\n")
    (run_dir / "nothing.sh").write_text("#!/bin/sh\n#SBATCH --mem\ntrue\n")
    r = h.steppe("alice", "submit", "-A", "kaznu/nlp", *(args if args[0].endswith(".sh") else [*args, "job.sh"]))
    assert r.code == 2 and r.err.count("\n") == 1 and words in r.err, r.err
    assert h.client("root").list_jobs().total == 0  # nothing was submitted


def test_the_hub_refuses_what_it_sets_and_a_relative_submit_dir(h: CliHub) -> None:
    alice = h.client("alice")
    for env in ({"SLURM_SUBMIT_DIR": "/x"}, {"SLURM_JOB_PARTITION": "p"}, {"STEPPE_TOKEN": "t"}):
        with pytest.raises(HubError, match=f"env.{next(iter(env))}: set by the hub"):
            alice.submit(m.JobSubmit(project="kaznu/nlp", argv=["true"], env=env))
    for bad in ("run", "/home/../etc"):
        with pytest.raises(HubError, match="submit_dir: must be an absolute path without '..'"):
            alice.submit(m.JobSubmit(project="kaznu/nlp", argv=["true"], submit_dir=bad))
    job_id = alice.submit(m.JobSubmit(project="kaznu/nlp", argv=["true"], submit_dir="/home/alice//run/")).id
    h.wait(job_id, "RUNNING")
    assert h.hub.loop.launches[job_id].submit_dir == "/home/alice/run"


def test_dependency_and_begin_from_a_script_and_the_command_line(h: CliHub, run_dir: Path) -> None:
    first = h.steppe("alice", "submit", "--parsable", "-A", "kaznu/nlp", "--", "/bin/true")
    assert first.code == 0, first.err
    parent = int(first.out)
    lines = ["#!/bin/sh", f"#SBATCH -A kaznu/nlp -d afterok:{parent}", "#SBATCH --begin now+1hour", "echo next", ""]
    (run_dir / "after.sh").write_text("\n".join(lines))
    r = h.steppe("alice", "submit", "--parsable", "after.sh")
    assert r.code == 0 and "warning" not in r.err, r.err
    job_view = h.client("alice").get_job(int(r.out))
    assert job_view.dependency == f"afterok:{parent}" and job_view.begin_s is not None
    assert job_view.begin_s > job_view.submit_s + 3500
    bad = h.steppe("alice", "submit", "-A", "kaznu/nlp", "-d", "afterok:abc", "--", "/bin/true")
    assert bad.code == 2 and "dependency: 'abc' is not a job id" in bad.err and len(bad.err.strip().splitlines()) == 1
