"""Job dependencies in Slurm's words (``sbatch --dependency``): what a job waits for.

``afterok:ID[:ID...]`` the jobs ended ``COMPLETED``; ``afternotok:ID`` they ended otherwise
(``FAILED``, ``CANCELLED``, ``TIMEOUT``); ``afterany:ID`` they ended at all; ``after:ID`` they
started (or ended); ``singleton``: no other job of the same user and name runs. Conditions are
joined by ``,`` (all must hold); Slurm's ``?`` (any of) is not taken. The parsed form is a tuple
of ``(kind, job id)`` pairs, ``("singleton", 0)`` for singleton, which the scheduler's
``DependencyCheck`` (``scheduling/dependency.py``) reads and the store keeps as JSON.

>>> parse_dependency("afterok:12:13,singleton")
(('afterok', 12), ('afterok', 13), ('singleton', 0))
>>> format_dependency(parse_dependency("afterany:7"))
'afterany:7'
>>> parse_dependency("afterok:x")
Traceback (most recent call last):
...
ValueError: dependency: 'x' is not a job id; e.g. afterok:123 or afterany:123:124,singleton
"""

from __future__ import annotations

KINDS = ("after", "afterany", "afterok", "afternotok", "singleton")
EXAMPLE = "e.g. afterok:123 or afterany:123:124,singleton"
MAX_CONDITIONS = 64

Dependency = tuple[tuple[str, int], ...]


def parse_dependency(text: str) -> Dependency:
    """``text`` in Slurm's syntax as ``(kind, job id)`` pairs (module docstring); ``ValueError`` (one
    line naming the field, what is wrong and an example) when it is not."""
    text = text.strip()
    if not text:
        raise ValueError(f"dependency: empty; {EXAMPLE}")
    if "?" in text:
        raise ValueError(f"dependency: '?' (any of) is not supported: every condition must hold; {EXAMPLE}")
    out: list[tuple[str, int]] = []
    for part in text.split(","):
        kind, _, ids = part.strip().partition(":")
        if kind not in KINDS:
            raise ValueError(f"dependency: unknown type {kind!r}; one of {', '.join(KINDS)}; {EXAMPLE}")
        if kind == "singleton":
            if ids:
                raise ValueError(f"dependency: singleton takes no job id; {EXAMPLE}")
            out.append(("singleton", 0))
            continue
        if not ids:
            raise ValueError(f"dependency: {kind} needs at least one job id; {EXAMPLE}")
        for word in ids.split(":"):
            if not word.isdigit() or int(word) < 1:
                raise ValueError(f"dependency: {word!r} is not a job id; {EXAMPLE}")
            out.append((kind, int(word)))
    if len(out) > MAX_CONDITIONS:
        raise ValueError(f"dependency: at most {MAX_CONDITIONS} conditions; {EXAMPLE}")
    return tuple(dict.fromkeys(out))


def format_dependency(dep: Dependency) -> str:
    """Slurm's syntax again (ids of one kind joined by ``:``)."""
    parts: dict[str, list[str]] = {}
    for kind, job_id in dep:
        parts.setdefault(kind, [])
        if kind != "singleton":
            parts[kind].append(str(job_id))
    return ",".join(kind if kind == "singleton" else f"{kind}:{':'.join(ids)}" for kind, ids in parts.items())
