"""Live processes and their command lines (``/proc/<pid>/cmdline``, NUL-separated), for executors
that must learn after a crash whether a launch they began still runs (``local``: the wrapper of a
job directory; ``slurm``: the ``sbatch`` of a start).

>>> import os
>>> os.getpid() in {pid for pid, _ in command_lines()}
True
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def command_lines() -> Iterator[tuple[int, bytes]]:
    """``(pid, command line)`` of every process that can be read now (one that ends meanwhile is skipped)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            yield int(entry.name), (entry / "cmdline").read_bytes()
        except OSError:
            continue
