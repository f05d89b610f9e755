"""Job arrays in Slurm's words (``sbatch --array``): one submission, many tasks, a throttle.

``0-99`` tasks 0 to 99; ``1,3,5-7`` a list; ``0-15:4`` a step (0, 4, 8, 12); ``%8`` after any of
them: at most 8 tasks run at once (``ArrayThrottle``, ``scheduling/arrays.py``, holds the rest
with Slurm's ``JobArrayTaskLimit``). Each task is a job of its own; the array's id is its first
task's job id (``%A``), a task's index is ``%a`` (``STEPPE_ARRAY_TASK_ID``, ``SLURM_ARRAY_TASK_ID``).

>>> parse_array("0-3%2")
((0, 1, 2, 3), 2)
>>> parse_array("1,3,5-9:2")
((1, 3, 5, 7, 9), 0)
>>> parse_array("0-2000")
Traceback (most recent call last):
...
ValueError: array: at most 1001 tasks (Slurm's MaxArraySize), got 2001; e.g. 0-99%8
"""

from __future__ import annotations

MAX_TASKS = 1001
"""Tasks in one array at most (Slurm's default ``MaxArraySize``)."""
EXAMPLE = "e.g. 0-99%8"


def parse_array(text: str) -> tuple[tuple[int, ...], int]:
    """The task indices and the throttle (0: none) of ``--array TEXT``; ``ValueError`` (one line:
    the field, what is wrong, an example) when it is malformed."""
    spec, pct, limit_text = text.strip().partition("%")
    limit = 0
    if pct:
        if not limit_text.isdigit() or int(limit_text) < 1:
            raise ValueError(f"array: the throttle after % must be a whole number >= 1; {EXAMPLE}")
        limit = int(limit_text)
    tasks: list[int] = []
    for part in spec.split(","):
        span, colon, step_text = part.strip().partition(":")
        first, dash, last = span.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"array: {part.strip()!r} is not N, N-M or N-M:STEP; {EXAMPLE}")
        step = int(step_text) if colon and step_text.isdigit() else 1
        if colon and (not step_text.isdigit() or step < 1):
            raise ValueError(f"array: the step in {part.strip()!r} must be a whole number >= 1; {EXAMPLE}")
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise ValueError(f"array: {part.strip()!r} ends before it begins; {EXAMPLE}")
        if high - low + 1 > MAX_TASKS * step:
            count = high - low + 1
            raise ValueError(f"array: at most {MAX_TASKS} tasks (Slurm's MaxArraySize), got {count}; {EXAMPLE}")
        tasks.extend(range(low, high + 1, step))
    unique = tuple(sorted(set(tasks)))
    if len(unique) > MAX_TASKS:
        raise ValueError(f"array: at most {MAX_TASKS} tasks (Slurm's MaxArraySize), got {len(unique)}; {EXAMPLE}")
    return unique, limit
