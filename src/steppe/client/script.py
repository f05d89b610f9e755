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


def is_script(arg: str) -> bool:
    """Whether a lone argument to ``submit`` (not after ``--``) is a batch script, as ``sbatch`` takes
    one, rather than a command; raises ``ScriptError`` (one line, sbatch's words where it has them)
    for one that could never run:

    * a file starting with ``#!`` is a script; one without, named like a script (``.sh``,
      ``.slurm``, ...), is refused (sbatch: the first line must start with ``#!``); any other
      file is a program to run (``/bin/true``);
    * a name that is no file here but a path (``./run``, ``jobs/a``) or named like a script
      (``train.sh``) is refused: no such file; a directory named so, too;
    * anything else is a command (``hostname``).

    >>> is_script("hostname"), is_script("/bin/true")
    (False, False)
    """
    named_like = "/" in arg or arg.endswith(SCRIPT_SUFFIXES)
    if os.path.isdir(arg):
        if named_like:
            raise ScriptError(f"SCRIPT: {arg}: is a directory, not a batch script")
        return False
    if not os.path.exists(arg):
        if named_like:
            raise ScriptError(f"SCRIPT: {arg}: no such file (give a batch script, or a command after --)")
        return False
    try:
        with open(arg, "rb") as fh:
            head = fh.read(2)
    except PermissionError:
        raise ScriptError(f"SCRIPT: {arg}: not readable by you (check its permissions)") from None
    if head == b"#!":
        return True
    if arg.endswith(SCRIPT_SUFFIXES):
        raise ScriptError(
            f"SCRIPT: {arg}: this does not look like a batch script: the first line must start with #! "
            "(e.g. #!/bin/bash); to run a program, put it after --"
        )
    return False


def read_script(path: str) -> str:
    """The text of a script ``is_script`` accepted (``ScriptError`` if it is not UTF-8)."""
    try:
        return Path(path).read_text()
    except UnicodeDecodeError:
        raise ScriptError(f"SCRIPT: {path}: not UTF-8 text") from None
    except OSError as exc:
        raise ScriptError(f"SCRIPT: {path}: {exc.strerror or exc}") from None


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
