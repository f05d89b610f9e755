"""Standard Workload Format v2.2 (Parallel Workloads Archive), e.g. the KTH IBM SP2 log.

Format: one job per line, 18 whitespace-separated numeric fields; ``-1`` means unknown; lines
starting with ``;`` are header comments. The fields read are:

====  =====================  =======================================================
 #    SWF field              becomes
====  =====================  =======================================================
 1    job number             ``job_id`` (kept, so logs and results can be joined)
 2    submit time (s)        ``submit_s``, counted from the first submission
 3    wait time (s)          the logged wait, see ``read_swf_logged_waits``
 4    run time (s)           ``runtime_s``
 5    allocated processors   ``gpus`` (processors are treated as devices)
 8    requested processors   ``gpus`` when field 5 is -1 or 0 (counted in ``adjusted``)
 9    requested time (s)     ``walltime_s``; when -1 derived by the Philly rule (counted)
 12   user id                ``user`` = ``u<id>`` ("" when -1)
 13   group id               ``tenant`` = ``g<id>`` ("unknown" when -1)
====  =====================  =======================================================

Jobs with run time <= 0 or no processors are dropped and counted by reason. A job whose logged
run time exceeds its requested time (a grace period in the original scheduler) gets
``walltime_s = runtime_s`` so the twin replays what happened; that is counted too.

>>> _group(12.0), _group(-1.0)
('g12', 'unknown')
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path

from steppe.core.errors import TraceError
from steppe.core.job import JobSpec
from steppe.twin.readers.philly import WALLTIME_DERIVED, check_walltime_rule, existing_file, walltime_rule_note
from steppe.twin.trace import Trace

FIELDS = (
    "job number", "submit time", "wait time", "run time", "allocated processors", "average CPU time",
    "used memory", "requested processors", "requested time", "requested memory", "status", "user id",
    "group id", "executable id", "queue number", "partition number", "preceding job", "think time",
)  # fmt: skip

DROP_RUNTIME = "run time <= 0"
DROP_PROCS = "processors <= 0 (allocated and requested unknown)"
PROCS_FROM_REQUEST = "processors taken from requested (allocated unknown)"
WALLTIME_RAISED = "walltime raised to the logged run time"


def read_swf(
    path: str | Path,
    *,
    walltime_factor: float = 2.0,
    walltime_round_s: float = 3600.0,
    limit: int | None = None,
) -> Trace:
    """Read an SWF log; see the module docstring for the mapping."""
    check_walltime_rule(walltime_factor, walltime_round_s)
    p = existing_file(path)
    trace = Trace(source=f"swf:{p}", jobs=[])
    rows: list[tuple[float, int, int, float, float, str, str]] = []
    for _line, f in _records(p, trace):
        runtime, procs, requested = f[3], int(f[4]), f[8]
        if procs <= 0:
            procs = int(f[7])
            trace.adjusted[PROCS_FROM_REQUEST] += 1
        if requested <= 0:
            walltime = max(1, math.ceil(runtime * walltime_factor / walltime_round_s)) * walltime_round_s
            trace.adjusted[WALLTIME_DERIVED] += 1
        elif requested < runtime:
            walltime = runtime
            trace.adjusted[WALLTIME_RAISED] += 1
        else:
            walltime = requested
        user = f"u{int(f[11])}" if f[11] >= 0 else ""
        rows.append((f[1], int(f[0]), procs, runtime, max(walltime, runtime), _group(f[12]), user))
    rows.sort(key=itemgetter(0))
    if limit is not None:
        rows = rows[: max(0, limit)]
    t0 = rows[0][0] if rows else 0.0
    trace.jobs = [
        JobSpec(job, t - t0, procs, rt, wall, tenant, user=user) for t, job, procs, rt, wall, tenant, user in rows
    ]
    trace.notes.append("SWF processors are treated as GPUs; tenant = group id (field 13), user = user id (field 12)")
    if trace.adjusted[WALLTIME_DERIVED]:
        trace.notes.append(walltime_rule_note(walltime_factor, walltime_round_s) + " (requested time -1)")
    if trace.adjusted[WALLTIME_RAISED]:
        trace.notes.append("walltime below the logged run time was raised to it, so the twin replays the log")
    return trace


def read_swf_logged_waits(path: str | Path) -> dict[int, float]:
    """The logged wait (field 3, seconds) of each job ``read_swf`` keeps, keyed by job number.

    Jobs whose wait is unknown (-1) are left out. The fidelity benchmark compares these with the
    waits the twin simulates for the same job ids.
    """
    p = existing_file(path)
    return {int(f[0]): f[2] for _line, f in _records(p, Trace(source="", jobs=[])) if f[2] >= 0}


def _records(p: Path, trace: Trace) -> Iterator[tuple[int, list[float]]]:
    """Kept job lines as ``(line number, 18 floats)``; dropped ones are counted in ``trace.dropped``."""
    src = str(p)
    seen: dict[int, int] = {}
    with p.open() as fh:
        for line_no, line in enumerate(fh, start=1):
            text = line.strip()
            if not text or text.startswith(";"):
                continue
            parts = text.split()
            if len(parts) != len(FIELDS):
                raise TraceError(src, line_no, f"expected {len(FIELDS)} fields (SWF v2.2), got {len(parts)}")
            try:
                f = [float(x) for x in parts]
            except ValueError:
                raise TraceError(src, line_no, _bad_field(parts)) from None
            if not all(map(math.isfinite, f)):
                raise TraceError(src, line_no, _bad_field(parts))
            if f[0] != int(f[0]) or f[0] < 0:
                raise TraceError(src, line_no, f"field 1 (job number): not a job number: {parts[0]!r}")
            job = int(f[0])
            if job in seen:
                raise TraceError(src, line_no, f"field 1 (job number): {job} repeats line {seen[job]}")
            seen[job] = line_no
            if f[1] < 0:
                raise TraceError(src, line_no, f"field 2 (submit time): must be >= 0, got {parts[1]!r}")
            if f[3] <= 0:
                trace.dropped[DROP_RUNTIME] += 1
            elif f[4] <= 0 and f[7] <= 0:
                trace.dropped[DROP_PROCS] += 1
            else:
                yield line_no, f


def _bad_field(parts: list[str]) -> str:
    for i, text in enumerate(parts):
        try:
            if math.isfinite(float(text)):
                continue
        except ValueError:
            pass
        return f"field {i + 1} ({FIELDS[i]}): not a number: {text!r}"
    return "unreadable line"


def _group(gid: float) -> str:
    return f"g{int(gid)}" if gid >= 0 else "unknown"
