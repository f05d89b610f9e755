"""Batch scripts with ``#STEPPE`` directives, read like ``sbatch`` reads ``#SBATCH``.

Directives are the ``#STEPPE`` lines before the first line that is neither a comment nor
blank; options given on the command line override them.

>>> text = "#!/bin/bash\\n#STEPPE -J train --gpus=2\\n#STEPPE --time 01:00:00 -A kaznu/nlp\\npython train.py\\n"
>>> parse_directives(text)
{'job_name': 'train', 'gpus': '2', 'time': '01:00:00', 'project': 'kaznu/nlp'}
>>> parse_gres("gpu:h100:4")
('H100', 4)
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from steppe.core.errors import SteppeError

OPTIONS = {
    "-A": "project", "--project": "project", "--account": "project",
    "-G": "gpus", "--gpus": "gpus", "--gpu-type": "gpu_type", "--gres": "gres",
    "-t": "time", "--time": "time", "-J": "job_name", "--job-name": "job_name",
    "-o": "output", "--output": "output", "-e": "error", "--error": "error",
    "-D": "chdir", "--chdir": "chdir", "-q": "qos", "--qos": "qos",
}  # fmt: skip


class DirectiveError(SteppeError):
    """A ``#STEPPE`` line is malformed."""


class ScriptError(SteppeError):
    """A batch script that cannot be submitted (missing, unreadable, not a script)."""


SCRIPT_SUFFIXES = (".sh", ".bash", ".slurm", ".sbatch", ".job", ".py")


def looks_like_script(arg: str) -> bool:
    """Whether a lone argument to ``submit`` names a batch script (as ``sbatch`` takes one) rather
    than a command: a file that exists here, or a path with a directory or a script's suffix
    (``./train.sh``, ``jobs/run.slurm``), which must then exist.

    >>> looks_like_script("hostname"), looks_like_script("train.sh"), looks_like_script("./run")
    (False, True, True)
    """
    return os.path.isfile(arg) or "/" in arg or arg.endswith(SCRIPT_SUFFIXES)


def read_script(path: str) -> str:
    """The script's text; ``ScriptError`` (one line, sbatch's words where it has them) if it is
    missing, unreadable, not text, or does not start with ``#!``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ScriptError(f"SCRIPT: {path}: no such file (give a batch script, or a command after --)") from None
    except IsADirectoryError:
        raise ScriptError(f"SCRIPT: {path}: is a directory, not a batch script") from None
    except PermissionError:
        raise ScriptError(f"SCRIPT: {path}: not readable by you (check its permissions)") from None
    if not data.startswith(b"#!"):
        raise ScriptError(
            f"SCRIPT: {path}: this does not look like a batch script: the first line must start with #! "
            "(e.g. #!/bin/bash); to run a program, put it after --"
        )
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ScriptError(f"SCRIPT: {path}: not UTF-8 text") from None


def parse_directives(text: str) -> dict[str, str]:
    """Options from the script's ``#STEPPE`` lines, keyed by option name (``job_name``, ``gpus``, ...)."""
    found: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if lineno == 1 and stripped.startswith("#!"):
            continue
        if stripped and not stripped.startswith("#"):
            break
        if not stripped.startswith("#STEPPE"):
            continue
        words = shlex.split(stripped[len("#STEPPE") :], comments=True)
        i = 0
        while i < len(words):
            word = words[i]
            flag, eq, value = word.partition("=")
            key = OPTIONS.get(flag)
            if key is None:
                raise DirectiveError(f"line {lineno}: unknown #STEPPE option {flag!r}")
            if not eq:
                if i + 1 >= len(words):
                    raise DirectiveError(f"line {lineno}: {flag} needs a value")
                i += 1
                value = words[i]
            found[key] = value
            i += 1
    return found


def parse_gres(text: str) -> tuple[str | None, int]:
    """``gpu:N`` or ``gpu:TYPE:N`` (Slurm's ``--gres``) as ``(type or None, count)``."""
    parts = text.split(":")
    if parts[0] != "gpu" or len(parts) not in (2, 3) or not parts[-1].isdigit() or int(parts[-1]) < 1:
        raise DirectiveError(f"bad --gres {text!r}: expected gpu:N or gpu:TYPE:N")
    return (parts[1].upper() if len(parts) == 3 else None), int(parts[-1])
