"""Slurm scripts as sbatch reads them: ``#SBATCH`` lines with ``#STEPPE``'s meaning, the options Steppe does not
support yet collected for one warning, malformed ones refused with their line; ``--export``'s forms and limits; the
``SLURM_*`` variables the hub sets and refuses in a job's own environment."""

from __future__ import annotations

import pytest

from steppe.client import models as m
from steppe.client.export import ExportError, export_env, parse_export
from steppe.client.sbatch import SHORT, arity
from steppe.client.script import DirectiveError, parse_directives
from steppe.core.job import JobSpec
from steppe.core.records import JobRecord
from steppe.executors.base import Launch
from steppe.executors.jobenv import job_variables

ISSUE_SCRIPT = """#!/bin/bash
#SBATCH --gres=gpu:1
#SBATCH -t 00:05:00
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --array=0-3
#SBATCH -J train
python train.py
"""


def script(*lines: str) -> str:
    return "#!/bin/bash\n" + "\n".join(lines) + "\necho done\n"


def test_the_issues_script_keeps_its_gpus_time_and_name_and_names_what_is_ignored() -> None:
    d = parse_directives(ISSUE_SCRIPT)
    assert d.options == {"gpus": "1", "time": "00:05:00", "job_name": "train", "array": "0-3"}
    assert d.unsupported == ["--cpus-per-task=8", "--mem=32G"]


@pytest.mark.parametrize(
    ("lines", "options", "unsupported"),
    [
        (["#SBATCH -J a", "#STEPPE -J b"], {"job_name": "b"}, []),  # #STEPPE wins, whatever the order
        (["#STEPPE -J b", "#SBATCH -J a"], {"job_name": "b"}, []),
        (["#SBATCH --gres=gpu:a100:2", "#STEPPE --gpus=4"], {"gpus": "4", "gpu_type": "A100"}, []),
        (["#SBATCH --gres=gpu"], {"gpus": "1"}, []),
        (["#SBATCH --gres gpu:h100"], {"gpus": "1", "gpu_type": "H100"}, []),
        (["#SBATCH -G h100:3"], {"gpus": "3", "gpu_type": "H100"}, []),
        (["#SBATCH -G2 -N1 --gpus-per-node=4"], {"gpus": "4"}, ["-N 1"]),  # the later wins; one node
        (["#SBATCH --gpus-per-node=4"], {"gpus": "4"}, []),
        (["#SBATCH --nodes=2 --gpus-per-node=4"], {"gpus": "4"},
         ["--nodes=2", "--gpus-per-node=4 (taken as 4 GPUs in all)"]),
        (["#SBATCH --account=kaznu/nlp --time=1-00:00:00 -o logs/%j.out -e err -D /home/a -q high"],
         {"project": "kaznu/nlp", "time": "1-00:00:00", "output": "logs/%j.out", "error": "err", "chdir": "/home/a",
          "qos": "high"}, []),
        (["#SBATCH --export=NONE", "#SBATCH -c8 --hold --exclusive --mail-type=END,FAIL -p gpu --begin now+1hour",
          "#SBATCH --dependency afterok:12 --exclusive=user"],
         {"export": "NONE", "begin": "now+1hour", "dependency": "afterok:12"},
         ["-c 8", "--hold", "--exclusive", "--mail-type=END,FAIL", "-p gpu", "--exclusive=user"]),
        (["#SBATCH -J 'two words' # a comment", "##SBATCH --mem=1G", "# another comment", ""],
         {"job_name": "two words"}, []),
    ],
)
def test_directives(lines: list[str], options: dict[str, str], unsupported: list[str]) -> None:
    d = parse_directives(script(*lines))
    assert (d.options, d.unsupported) == (options, unsupported)


def test_directives_end_at_the_first_command() -> None:
    d = parse_directives("#!/bin/sh\n#SBATCH -J a\nmodule load cuda\n#SBATCH --mem=1G\n#SBATCH --bogus\n")
    assert (d.options, d.unsupported) == ({"job_name": "a"}, [])


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("#SBATCH --frobnicate=1", "line 2: #SBATCH: unknown option '--frobnicate' (not an sbatch option"),
        ("#STEPPE --mem", "line 2: #STEPPE: --mem needs a value"),
        ("#SBATCH -J", "line 2: #SBATCH: -J needs a value"),
        ("#SBATCH --time=", "--time needs a value, e.g. --time=VALUE"),
        ("#SBATCH --hold=1", "line 2: #SBATCH: --hold takes no value"),
        ("#SBATCH --gres=tmp:10", "line 2: bad --gres 'tmp:10': expected gpu:N or gpu:TYPE:N"),
        ("#SBATCH --gres=gpu:h100:0", "bad --gres 'gpu:h100:0'"),
        ("#SBATCH -G a:b:c", "line 2: bad --gpus 'a:b:c': expected N or TYPE:N"),
        ("#SBATCH -J 'unclosed", "line 2: No closing quotation"),
        ("#SBATCH train", "line 2: #SBATCH: expected an option, got 'train'"),
    ],
)
def test_malformed_directives_are_one_line_errors(line: str, words: str) -> None:
    with pytest.raises(DirectiveError) as exc:
        parse_directives(script(line))
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_every_short_option_has_a_known_arity() -> None:
    assert all(arity(flag) is not None for flag in SHORT)
    assert (arity("--array"), arity("--hold"), arity("-k"), arity("--no-kill"), arity("--x")) == (
        "value", "flag", "flag", "optional", None)  # fmt: skip


# -- --export --------------------------------------------------------------------------------------------------------
HERE = {
    "PATH": "/opt/conda/bin:/usr/bin", "OMP_NUM_THREADS": "4", "DATA": "/data", "HOME": "/home/alice",
    "USER": "alice", "PWD": "/home/alice/run", "SSH_AUTH_SOCK": "/tmp/agent", "STEPPE_TOKEN": "stp_secret",
    "STEPPE_URL": "http://hub", "STEPPE_CONFIG": "/c.toml", "SLURM_JOB_ID": "77", "SLURM_MEM_PER_NODE": "1",
    "SBATCH_ACCOUNT": "x", "CUDA_VISIBLE_DEVICES": "0", "BASH_FUNC_f%%": "() { :; }",
}  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "env"),
    [
        ("ALL", {"DATA": "/data", "OMP_NUM_THREADS": "4", "PATH": "/opt/conda/bin:/usr/bin"}),
        ("NONE", {}),
        ("NIL", {}),
        ("DATA,OMP_NUM_THREADS,UNSET", {"DATA": "/data", "OMP_NUM_THREADS": "4"}),
        ("ALL,OMP_NUM_THREADS=8,SEED=1", {"DATA": "/data", "OMP_NUM_THREADS": "8", "PATH": "/opt/conda/bin:/usr/bin",
                                          "SEED": "1"}),
        ("HOME,SEED=", {"HOME": "/home/alice", "SEED": ""}),  # a session variable named explicitly goes
    ],
)
def test_export_forms(spec: str, env: dict[str, str]) -> None:
    out = export_env(spec, HERE)
    assert out.env == env and out.dropped == {}


def test_env_options_win_over_export() -> None:
    assert export_env("ALL,SEED=1", HERE, {"SEED": "2", "X": "y"}).env["SEED"] == "2"
    assert export_env("NONE", HERE, {"X": "y"}).env == {"X": "y"}


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("STEPPE_TOKEN", "STEPPE_TOKEN is this CLI's own setting; it is never exported"),
        ("ALL,STEPPE_URL=x", "STEPPE_URL is this CLI's own setting"),
        ("SLURM_JOB_ID", "SLURM_JOB_ID is set by the hub in each job"),
        ("CUDA_VISIBLE_DEVICES=1", "CUDA_VISIBLE_DEVICES is set by the hub"),
        ("STEPPE_GPUS", "STEPPE_GPUS is set by the hub"),
        ("NONE,X=1", "NONE stands alone"),
        ("ALL,1BAD", "'1BAD' is not ALL, NONE, VAR or VAR=value"),
        ("", "'' is not ALL, NONE, VAR or VAR=value"),
    ],
)
def test_export_refusals(spec: str, words: str) -> None:
    with pytest.raises(ExportError) as exc:
        parse_export(spec)
    assert words in str(exc.value)


def test_export_all_keeps_within_the_requests_limits() -> None:
    many = {f"V{i:03d}": "x" for i in range(m.MAX_ENV + 10)}
    out = export_env("ALL", {**many, "BIG": "y" * (m.MAX_ENV_VALUE_CHARS + 1), "BAD": "caf\udce9"}, {"MINE": "1"})
    assert len(out.env) == m.MAX_ENV and out.env["MINE"] == "1"
    assert out.dropped == {
        f"value over {m.MAX_ENV_VALUE_CHARS:,} characters": ["BIG"],
        "not UTF-8": ["BAD"],
        f"over {m.MAX_ENV} variables": [f"V{i:03d}" for i in range(m.MAX_ENV - 1, m.MAX_ENV + 10)],
    }
    assert out.note().startswith(f"not exported: BAD (not UTF-8); BIG (value over {m.MAX_ENV_VALUE_CHARS:,} char")
    m.JobSubmit(project="kaznu/nlp", argv=["true"], env=out.env)  # the request takes it
    big = {f"W{i}": "z" * 30_000 for i in range(100)}  # 3 MB: over the request's bytes in all
    out = export_env("ALL", big, used_bytes=1_000_000)
    assert m.command_bytes(None, out.env, None) <= m.MAX_COMMAND_BYTES - 1_000_000
    assert len(out.env) == 36 and out.dropped == {f"over {m.MAX_COMMAND_BYTES:,} bytes in all": sorted(big)[36:]}
    with pytest.raises(ExportError, match="BIG: value over"):
        export_env("BIG", {"BIG": "y" * (m.MAX_ENV_VALUE_CHARS + 1)})


# -- the variables the hub sets -----------------------------------------------------------------------------------
def test_the_hub_refuses_in_a_jobs_env_exactly_the_variables_it_sets() -> None:
    rec = JobRecord(JobSpec(7, 0.0, 2, 60.0, 60.0, "kaznu", "kaznu/nlp"), seq=7)
    rec.allocation, rec.gpu_type, rec.site = ((0, 2),), "H100", "astana"
    launch = Launch(None, "#!/bin/sh\n", "/w", {}, "o", "e", "n", "kaznu/nlp", "alice", submit_dir="/home/alice",
                    array=(5, 2, 10))  # fmt: skip
    env = job_variables(rec, launch, ["node001"], (2, 3), cpus_per_task=8)
    assert (env["SLURM_ARRAY_JOB_ID"], env["SLURM_ARRAY_TASK_ID"], env["STEPPE_ARRAY_TASK_ID"]) == ("5", "2", "2")
    assert {k for k in env if not k.startswith("STEPPE_")} | {"CUDA_VISIBLE_DEVICES"} == m.HUB_SET_ENV
    assert (env["SLURM_JOB_PARTITION"], env["SLURM_JOB_GPUS"], env["SLURM_CPUS_PER_TASK"]) == ("astana", "2,3", "8")
