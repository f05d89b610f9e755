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

import shlex

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
