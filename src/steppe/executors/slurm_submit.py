"""What the Slurm executor hands ``sbatch``: its options, the batch script and the job's environment.

One start of a Steppe job becomes one ``sbatch --parsable`` with:

* ``--nodes=K --nodelist=a,b``: the nodes Steppe placed it on (``rec.allocation``), and its
  GPUs: ``--gres=gpu:TYPE:N`` (N per node) when every node holds the same number; an allocation
  spread unevenly (4 GPUs on one node, 2 on another) asks ``--gpus=TYPE:6`` over those nodes, so
  Slurm splits the total over exactly those nodes as it sees fit (its split may differ from
  Steppe's; the inventory reports what Slurm actually holds);
* ``--time``: a backstop one minute beyond the hub's own walltime stop and its grace period
  (Slurm counts in minutes; the hub stops the job itself at its walltime);
* ``-J`` the job's name, ``--comment`` the marker ``steppe:job=J:start=S`` that finds the start
  of Steppe job J at start time S after a hub crash (``marker``/``parse_marker``; a new GPU
  cap is appended to it, ``:cap=0.70``), ``--no-requeue`` (Slurm never runs it again behind
  Steppe's back), ``--open-mode=append``, ``-D`` its working directory, ``-o``/``-e`` its outputs
  (``%`` escaped: they are paths, not Slurm patterns);
* ``--uid/--gid`` of its user's account when the hub runs as root (Slurm runs it as that account);
* ``--export=ALL`` with ``sbatch`` itself run in the job's explicit environment and nothing else
  (``job_env``): nothing of the hub's environment reaches the job, and no ``SBATCH_*`` or
  ``SLURM_*`` variable of the job's own can change how ``sbatch`` submits it;
* the batch script on standard input (``batch_script``): ``cd`` to the working directory or
  fail like a launch that cannot enter it, then ``exec`` the command with umask 077; a job's own
  script is written by the batch script (as the job's account, mode 0700) to ``script`` in the
  job's spool directory and run from there, so no ``#SBATCH`` line of it is read as an option.

>>> marker(12, 1700000000.5), parse_marker("steppe:job=12:start=1700000000.5:cap=0.7")
('steppe:job=12:start=1700000000.5', (12, 1700000000.5))
>>> gpu_request(((0, 4), (1, 4)), "h200"), gpu_request(((0, 4), (1, 2)), "h200"), gpu_request(((0, 1),), "")
('--gres=gpu:h200:4', '--gpus=h200:6', '--gres=gpu:1')
>>> print(batch_script(12, 1700000000.5, ["python3", "-c", "print('hi')"], None, "/w", "/w/script"))
#!/bin/sh
# Steppe job 12, start 1700000000.5
umask 077
cd /w || { echo "steppe: cannot enter working directory /w" >&2; exit 127; }
exec python3 -c 'print('"'"'hi'"'"')'
<BLANKLINE>
"""

from __future__ import annotations

import math
import os
import re
import secrets
import shlex
from collections.abc import Mapping, Sequence

from steppe.core.text import text_problem

JOB_ENV_ALLOW = ("LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ")
"""The only variables of the hub's own environment a job inherits (locale and time zone), as the local executor."""
JOB_PATH = "/usr/local/bin:/usr/bin:/bin"
SUBMIT_ONLY = ("SBATCH_", "SLURM_", "SALLOC_", "SRUN_")
"""Prefixes of variables that steer Slurm's commands: never taken from a job's own environment."""
MARKER = re.compile(r"steppe:job=(\d+):start=([0-9.eE+-]+|inf)")


def marker(job_id: int, start_s: float) -> str:
    """The comment that names the start of Steppe job ``job_id`` at ``start_s`` in Slurm."""
    return f"steppe:job={job_id}:start={start_s!r}"


def parse_marker(comment: str) -> tuple[int, float] | None:
    """``(job id, start)`` from a comment ``marker`` wrote, or None."""
    match = MARKER.match(comment or "")
    return (int(match.group(1)), float(match.group(2))) if match else None


def gpu_request(allocation: Sequence[tuple[int, int]], gpu_type: str) -> str:
    """The ``sbatch`` GPU option for an allocation (see the module docstring on uneven ones)."""
    counts = [gpus for _, gpus in allocation]
    typed = f"{gpu_type}:" if gpu_type else ""
    if len(set(counts)) <= 1:
        return f"--gres=gpu:{typed}{counts[0] if counts else 0}"
    return f"--gpus={typed}{sum(counts)}"


def time_limit_minutes(remaining_s: float, grace_s: float) -> int | None:
    """Slurm's ``--time`` (whole minutes): the walltime left, the grace period and a minute more."""
    if not math.isfinite(remaining_s):
        return None
    return max(1, math.ceil((remaining_s + grace_s) / 60.0) + 1)


def escape_path(path: str) -> str:
    """A path as an ``sbatch -o`` argument (Slurm reads ``%`` as a pattern, ``%%`` as ``%``)."""
    return path.replace("%", "%%")


def job_env(base: Mapping[str, str], own: Mapping[str, str], steppe: Mapping[str, str]) -> dict[str, str]:
    """A job's whole environment: ``base`` (account, path), its ``own``, then Steppe's variables.

    The hub's allow-list (locale, time zone) comes first; a variable that steers ``sbatch``
    (``SUBMIT_ONLY``) is dropped from the job's own, since ``sbatch`` runs in this environment.

    >>> env = job_env({"PATH": "/bin"}, {"SBATCH_GRES": "gpu:8", "X": "1"}, {"STEPPE_JOB_ID": "3"})
    >>> sorted(k for k in env if k not in JOB_ENV_ALLOW)
    ['PATH', 'STEPPE_JOB_ID', 'X']
    """
    env = {k: os.environ[k] for k in JOB_ENV_ALLOW if k in os.environ}
    env.update(base)
    env.update({k: v for k, v in own.items() if not k.startswith(SUBMIT_ONLY)})
    env.update(steppe)
    return env


def check_text(value: object, where: str = "job") -> None:
    """Refuse a NUL byte or a lone surrogate anywhere ``sbatch`` would pass it on."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(f"{where}: {problem}")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            check_text(k, where)
            check_text(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            check_text(v, f"{where}[{i}]")


def batch_script(
    job_id: int, start_s: float, argv: Sequence[str] | None, script: str | None, workdir: str, script_path: str
) -> str:
    """The batch script of one start (see the module docstring)."""
    cd = shlex.quote(workdir)
    lines = [
        "#!/bin/sh",
        f"# Steppe job {job_id}, start {start_s!r}",
        "umask 077",
        f'cd {cd} || {{ echo "steppe: cannot enter working directory {_printable(workdir)}" >&2; exit 127; }}',
    ]
    if script is None:
        lines.append("exec " + " ".join(shlex.quote(a) for a in (argv or ["true"])))
        return "\n".join(lines) + "\n"
    end = "STEPPE_SCRIPT_" + secrets.token_hex(8)
    while end in script:
        end = "STEPPE_SCRIPT_" + secrets.token_hex(8)
    path = shlex.quote(script_path)
    body = script if script.endswith("\n") else script + "\n"
    run = f"exec {path}" if script.startswith("#!") else f"exec /bin/sh {path}"
    lines += [f"cat > {path} <<'{end}'", body + end, f"chmod 700 {path}", run]
    return "\n".join(lines) + "\n"


def _printable(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_./ -]", "?", text)
