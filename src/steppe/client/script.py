"""Batch scripts with ``#SBATCH`` or ``#STEPPE`` directives, read as ``sbatch`` reads ``#SBATCH``.

Directives are the ``#SBATCH`` and ``#STEPPE`` lines before the first line that is neither a
comment nor blank; both prefixes take the same options with the same meaning. Where both give
an option, ``#STEPPE`` wins; options on the command line win over both.

The options Steppe supports (``OPTIONS``) become the request's fields: ``-J``, ``-A``,
``-t/--time``, ``--gres=gpu[:TYPE][:N]``, ``-G/--gpus [TYPE:]N``, ``--gpus-per-node`` (one node's
GPUs; with several nodes, listed as unsupported and taken as the job's GPUs), ``-o``, ``-e``,
``-D/--chdir``, ``-q``, ``--export`` (read by ``client/export.py``). Every other sbatch option
(``--mem``, ``--cpus-per-task``, ``--array``, ...: ``client/sbatch.py`` knows which take a
value) is collected, as written, in ``Directives.unsupported`` for one warning, and the script
is still submitted; an option that is not sbatch's, or one without its value, is refused.

>>> text = "#!/bin/bash\\n#SBATCH -J train --gres=gpu:h100:4 --mem=32G\\n"
>>> text += "#STEPPE --time 01:00:00 -A kaznu/nlp\\npython train.py\\n"
>>> d = parse_directives(text)
>>> d.options
{'job_name': 'train', 'gpus': '4', 'gpu_type': 'H100', 'time': '01:00:00', 'project': 'kaznu/nlp'}
>>> d.unsupported
['--mem=32G']
>>> parse_gres("gpu:h100:4"), parse_gres("gpu"), parse_gpus("a100:2")
(('H100', 4), (None, 1), ('A100', 2))
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from steppe.client.models import MAX_JOB_NAME
from steppe.client.sbatch import Arity, arity, long_name
from steppe.core.errors import SteppeError

OPTIONS = {
    "-A": "project", "--project": "project", "--account": "project",
    "-G": "gpus", "--gpus": "gpus", "--gpu-type": "gpu_type", "--gres": "gres",
    "--gpus-per-node": "gpus_per_node",
    "-t": "time", "--time": "time", "-J": "job_name", "--job-name": "job_name",
    "-o": "output", "--output": "output", "-e": "error", "--error": "error",
    "-D": "chdir", "--chdir": "chdir", "-q": "qos", "--qos": "qos", "--export": "export",
    "-d": "dependency", "--dependency": "dependency", "-b": "begin", "--begin": "begin",
    "-a": "array", "--array": "array",
}  # fmt: skip
"""The options Steppe supports in a script (and on ``submit``'s command line), by the field they set."""
PREFIXES = ("#SBATCH", "#STEPPE")
"""The directives' prefixes, in rising precedence."""
_NAME_PATTERN = re.compile(r"(?<!%)%x")


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


@dataclass
class Directives:
    """A script's directives: Steppe's options (``job_name``, ``gpus``, ...) and, as written, the sbatch
    options Steppe does not support yet."""

    options: dict[str, str] = field(default_factory=dict)
    unsupported: list[str] = field(default_factory=list)


def parse_directives(text: str) -> Directives:
    """The script's ``#SBATCH`` and ``#STEPPE`` options (see the module docstring); ``DirectiveError``
    (one line, with its line number) for an option that is not sbatch's or lacks its value."""
    layers: dict[str, dict[str, str]] = {prefix: {} for prefix in PREFIXES}
    unsupported: list[str] = []
    nodes: str | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if lineno == 1 and stripped.startswith("#!"):
            continue
        if stripped and not stripped.startswith("#"):
            break
        prefix = next((p for p in PREFIXES if stripped.startswith(p)), None)
        if prefix is None:
            continue
        where = f"line {lineno}"
        try:
            words = shlex.split(stripped[len(prefix) :], comments=True)
        except ValueError as exc:  # an unclosed quote
            raise DirectiveError(f"{where}: {exc}") from None
        i = 0
        while i < len(words):
            flag, value, i = _next_option(words, i, f"{where}: {prefix}")
            key = OPTIONS.get(flag)
            if key is None:
                unsupported.append(_as_written(flag, value))
                if long_name(flag) == "--nodes":
                    nodes = value
                continue
            try:
                set_option(layers[prefix], key, value or "")
            except DirectiveError as exc:
                raise DirectiveError(f"{where}: {exc}") from None
    options = {key: value for layer in layers.values() for key, value in layer.items()}
    per_node = options.pop("gpus_per_node", None)
    if per_node is not None and nodes not in (None, "1", "1-1"):
        unsupported.append(f"--gpus-per-node={per_node} (taken as {per_node} GPUs in all)")
    return Directives(options, unsupported)


def set_option(found: dict[str, str], key: str, value: str) -> None:
    """Set Steppe's option ``key`` in ``found``; a GPU request (``gres``, ``gpus``, ``gpus_per_node``)
    becomes ``gpus`` and, when it names one, ``gpu_type``. ``DirectiveError`` if it is malformed.

    >>> found = {}
    >>> set_option(found, "gres", "gpu:a100:2"); set_option(found, "gpus", "4"); found
    {'gpus': '4', 'gpu_type': 'A100'}
    """
    if key == "gres":
        gpu_type, count = parse_gres(value)
    elif key in ("gpus", "gpus_per_node"):
        gpu_type, count = parse_gpus(value, "--" + key.replace("_", "-"))
    else:
        found[key] = value
        return
    found["gpus"] = str(count)
    if gpu_type is not None:
        found["gpu_type"] = gpu_type
    if key == "gpus_per_node":
        found[key] = str(count)


def _arity(flag: str) -> Arity | None:
    kind = arity(flag)
    return "value" if kind is None and flag in OPTIONS else kind


def _next_option(words: list[str], i: int, where: str) -> tuple[str, str | None, int]:
    """The option at ``words[i]``, its value (None for one that takes none) and where the next begins."""
    word = words[i]
    if not word.startswith("-") or word in ("-", "--"):
        raise DirectiveError(f"{where}: expected an option, got {word!r}")
    if not word.startswith("--") and "=" not in word and len(word) > 2 and _arity(word[:2]) == "value":
        return word[:2], word[2:], i + 1  # -G2, -N1: getopt's value joined to its letter
    flag, eq, value = word.partition("=")
    kind = _arity(flag)
    if kind is None:
        raise DirectiveError(f"{where}: unknown option {flag!r} (not an sbatch option; see steppe submit --help)")
    if kind == "flag":
        if eq:
            raise DirectiveError(f"{where}: {flag} takes no value")
        return flag, None, i + 1
    if kind == "optional" or eq:
        if kind == "value" and not value:
            raise DirectiveError(f"{where}: {flag} needs a value, e.g. {flag}=VALUE")
        return flag, value if eq else None, i + 1
    if i + 1 >= len(words):
        raise DirectiveError(f"{where}: {flag} needs a value")
    return flag, words[i + 1], i + 2


def _as_written(flag: str, value: str | None) -> str:
    if value is None:
        return flag
    return f"{flag}={value}" if flag.startswith("--") else f"{flag} {value}"


def default_name(path: str) -> str:
    """A script's job name when it gives none, as sbatch names it: the script's file name.

    >>> default_name("jobs/train.sbatch")
    'train.sbatch'
    """
    return os.path.basename(path.rstrip("/"))[:MAX_JOB_NAME]


def fill_name(path: str | None, name: str) -> str | None:
    """An output path with sbatch's ``%x`` (the job's name) filled in; ``%j`` is the hub's to fill.

    >>> fill_name("logs/%x-%j.out", "train"), fill_name("100%%x", "train"), fill_name(None, "t")
    ('logs/train-%j.out', '100%%x', None)
    """
    return None if path is None else _NAME_PATTERN.sub(name, path)


def parse_gres(text: str) -> tuple[str | None, int]:
    """Slurm's ``--gres`` for GPUs, ``gpu``, ``gpu:N``, ``gpu:TYPE`` or ``gpu:TYPE:N``, as ``(type or None,
    count)``; a count left out is 1."""
    parts = text.split(":")
    bad = parts[0] != "gpu" or len(parts) > 3 or "" in parts
    if not bad and len(parts) == 3 and not (parts[2].isdigit() and int(parts[2]) >= 1):
        bad = True
    if bad:
        raise DirectiveError(f"bad --gres {text!r}: expected gpu:N or gpu:TYPE:N, e.g. gpu:h100:2")
    if len(parts) == 1:
        return None, 1
    if len(parts) == 2:
        return (None, int(parts[1])) if parts[1].isdigit() else (parts[1].upper(), 1)
    return parts[1].upper(), int(parts[2])


def parse_gpus(text: str, option: str = "--gpus") -> tuple[str | None, int]:
    """Slurm's ``--gpus`` (and ``--gpus-per-node``), ``N`` or ``TYPE:N``, as ``(type or None, count)``."""
    gpu_type, _, count = text.rpartition(":")
    try:
        number = int(count)
    except ValueError:
        number = None
    if number is None or ":" in gpu_type or (not gpu_type and ":" in text):
        raise DirectiveError(f"bad {option} {text!r}: expected N or TYPE:N, e.g. 2 or h100:2")
    return (gpu_type.upper() or None), number
