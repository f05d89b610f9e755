"""Which of the submitter's environment variables a job takes: sbatch's ``--export``.

As with ``sbatch``, the default is ``ALL``: the job starts with the submitter's environment. The
forms are Slurm's:

* ``ALL``: every variable of this environment (the default);
* ``NONE`` (or ``NIL``): none of them; the job has only what the hub sets and ``--env`` gives;
* ``VAR1,VAR2``: only those, taken from this environment (a name not set here is skipped);
* ``ALL,VAR=value`` or ``VAR1,VAR=value``: as above, ``VAR`` set to ``value``. A value cannot hold a
  comma here; ``--env KEY=VALUE`` can. ``--env`` wins over ``--export``.

What ``ALL`` leaves out, silently: names the hub sets in each job (``STEPPE_*``, which holds the
CLI's own ``STEPPE_TOKEN``, ``STEPPE_URL`` and ``STEPPE_CONFIG``; ``CUDA_VISIBLE_DEVICES``; any
``SLURM_*`` or ``SBATCH_*``, which belong to another Slurm job or to sbatch itself), the
submitter's session (``HOME``, ``USER``, ``LOGNAME``, ``TMPDIR``, ``PWD``, ``SHELL``, ``SSH_*``,
``XDG_*``, ...: the hub sets the job's own account, directories and paths), and names that are not
variable names (bash's exported functions). A variable named explicitly that the hub sets is refused
in one line (``ExportError``); the CLI's secrets are never sent.

The request's limits (``client/models.py``) hold: at most ``MAX_ENV`` variables, each value at
most ``MAX_ENV_VALUE_CHARS`` characters, and ``MAX_COMMAND_BYTES`` for command, script and
environment together. Variables of ``ALL`` beyond them (in name order), too long or not UTF-8 are
left out and named in ``Exported.dropped`` for a note; explicit ones beyond them are refused.

>>> here = {"PATH": "/usr/bin", "OMP_NUM_THREADS": "4", "STEPPE_TOKEN": "stp_x", "HOME": "/home/a"}
>>> export_env("ALL", here).env
{'OMP_NUM_THREADS': '4', 'PATH': '/usr/bin'}
>>> export_env("OMP_NUM_THREADS,SEED=7", here).env
{'OMP_NUM_THREADS': '4', 'SEED': '7'}
>>> export_env("NONE", here, {"X": "1"}).env
{'X': '1'}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from steppe.client.models import (
    HUB_SET_ENV,
    MAX_COMMAND_BYTES,
    MAX_ENV,
    MAX_ENV_NAME_CHARS,
    MAX_ENV_VALUE_CHARS,
    command_bytes,
)
from steppe.core.errors import SteppeError
from steppe.core.text import text_problem

CLI_SECRETS = ("STEPPE_TOKEN", "STEPPE_URL", "STEPPE_CONFIG")
"""The CLI's own settings: never exported, even when named."""
SESSION = frozenset({
    "HOME", "USER", "LOGNAME", "TMPDIR", "PWD", "OLDPWD", "SHLVL", "_", "SHELL", "MAIL", "DISPLAY",
    "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS", "KRB5CCNAME", "TERM_SESSION_ID", "WINDOWID", "COLUMNS", "LINES",
})  # fmt: skip
"""The submitter's session on their own machine, which ``ALL`` leaves out (the hub sets the job's own)."""
SESSION_PREFIXES = ("SSH_", "XDG_")
RESERVED_PREFIXES = ("STEPPE_", "SLURM_", "SBATCH_")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXAMPLE = "e.g. --export=ALL, --export=NONE or --export=ALL,OMP_NUM_THREADS=8"


class ExportError(SteppeError):
    """A malformed ``--export``, or one that names a variable the hub sets."""


@dataclass
class Exported:
    """The variables a job takes, and those of ``ALL`` left out, by why (``"not UTF-8"``: ``["X"]``)."""

    env: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, list[str]] = field(default_factory=dict)

    def note(self) -> str:
        """One line naming what was left out and why (empty when nothing was)."""
        parts = [f"{', '.join(names)} ({why})" for why, names in self.dropped.items()]
        return f"not exported: {'; '.join(parts)}" if parts else ""


def parse_export(spec: str) -> tuple[bool, list[str], dict[str, str]]:
    """``(all, names, values)`` of an ``--export`` value; ``ExportError`` if it is malformed.

    >>> parse_export("ALL,SEED=7,DATA")
    (True, ['DATA'], {'SEED': '7'})
    """
    items = spec.split(",")
    if items[0] in ("NONE", "NIL"):
        if len(items) > 1:
            raise ExportError(f"--export: {items[0]} stands alone; to export only some variables list them ({EXAMPLE})")
        return False, [], {}
    everything = items[0] == "ALL"
    names: list[str] = []
    values: dict[str, str] = {}
    for item in items[1:] if everything else items:
        name, eq, value = item.partition("=")
        if not _NAME.match(name):
            raise ExportError(f"--export: {item!r} is not ALL, NONE, VAR or VAR=value ({EXAMPLE})")
        _refuse_reserved(name)
        if eq:
            values[name] = value
        else:
            names.append(name)
    return everything, names, values


def export_env(
    spec: str, environ: Mapping[str, str], explicit: Mapping[str, str] | None = None, used_bytes: int = 0
) -> Exported:
    """The job's variables for ``--export=spec`` from ``environ``, with ``explicit`` (``--env``) last;
    ``used_bytes`` is what the command and script take of ``MAX_COMMAND_BYTES``. See the module docstring."""
    everything, names, values = parse_export(spec)
    chosen = {name: environ[name] for name in names if name in environ}
    chosen.update(values)
    for name, value in chosen.items():
        problem = _too_large(name, value) or text_problem(value)
        if problem is not None:
            raise ExportError(f"--export: {name}: {problem}")
    chosen.update(explicit or {})  # --env: the request's own checks apply to it
    out = Exported(dict(chosen))
    if not everything:
        return out
    left = MAX_COMMAND_BYTES - used_bytes - command_bytes(None, chosen, None)
    for name in sorted(environ):
        if name in chosen or not _exportable(name):
            continue
        value = environ[name]
        why = _too_large(name, value) or ("not UTF-8" if text_problem(value) is not None else None)
        size = command_bytes(None, {name: value}, None) if why is None else 0
        if why is None and len(out.env) >= MAX_ENV:
            why = f"over {MAX_ENV} variables"
        if why is None and size > left:
            why = f"over {MAX_COMMAND_BYTES:,} bytes in all"
        if why is not None:
            out.dropped.setdefault(why, []).append(name)
            continue
        out.env[name] = value
        left -= size
    return out


def _exportable(name: str) -> bool:
    """Whether ``ALL`` takes ``name`` (module docstring)."""
    return (
        _NAME.match(name) is not None
        and name not in SESSION
        and name not in HUB_SET_ENV
        and not name.startswith(RESERVED_PREFIXES + SESSION_PREFIXES)
    )


def _refuse_reserved(name: str) -> None:
    if name in CLI_SECRETS:
        raise ExportError(f"--export: {name} is this CLI's own setting; it is never exported to a job")
    if name.startswith("STEPPE_") or name in HUB_SET_ENV:
        raise ExportError(f"--export: {name} is set by the hub in each job; it cannot be exported ({EXAMPLE})")


def _too_large(name: str, value: str) -> str | None:
    if len(name) > MAX_ENV_NAME_CHARS:
        return f"name over {MAX_ENV_NAME_CHARS:,} characters"
    if len(value) > MAX_ENV_VALUE_CHARS:
        return f"value over {MAX_ENV_VALUE_CHARS:,} characters"
    return None
