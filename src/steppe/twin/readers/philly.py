"""Microsoft Philly job list (Jeon et al., ATC'19), as processed for the Pollux OSDI'21 artifact.

Format: a CSV file with the header ``timestamp,duration,num_gpus,gpu_time,cluster`` and one row
per job. ``timestamp`` is the submission time ``YYYY-MM-DD HH:MM:SS`` (no time zone),
``duration`` the run time in seconds, ``num_gpus`` the GPUs used, ``gpu_time`` their product
(redundant, not read) and ``cluster`` the hashed virtual cluster (VC), which becomes the tenant.

Rules applied:

* Jobs are sorted by submission time (stable: ties keep file order), ``submit_s`` counts from
  the first submission and ``job_id`` is 1..N in that order.
* Philly logs no walltime limit, so one is derived for every job (counted in ``adjusted``)::

      walltime_s = max(1, ceil(runtime_s * walltime_factor / walltime_round_s)) * walltime_round_s

  i.e. by default twice the run time rounded up to whole hours, which is how users over-ask.
  ``walltime_factor`` must be at least 1, so a job never outlives its own limit. The other
  readers apply the same rule wherever a trace lacks a walltime.
* If ``philly_vc_nodes.csv`` (header ``vc,node num``) lies beside the file, each VC in the trace
  becomes a ``TenantSpec`` with its node count as fair-share weight; VCs missing from that file
  get the median weight of the listed ones.

>>> derive_walltime(1144.0)
3600.0
>>> derive_walltime(5400.0, factor=1.5, round_s=900.0)
8100.0
"""

from __future__ import annotations

import csv
import math
import statistics
from datetime import datetime
from operator import itemgetter
from pathlib import Path

from steppe.core.cluster import TenantSpec
from steppe.core.errors import SteppeError, TraceError
from steppe.core.job import JobSpec
from steppe.twin.memory import gc_paused
from steppe.twin.trace import Trace

COLUMNS = ("timestamp", "duration", "num_gpus", "gpu_time", "cluster")
VC_NODES_FILE = "philly_vc_nodes.csv"
WALLTIME_DERIVED = "walltime derived (none in trace)"


def check_walltime_rule(factor: float, round_s: float) -> None:
    """Reject a walltime rule that could give a limit shorter than the run time, or none at all."""
    if not factor >= 1.0 or math.isinf(factor):
        raise SteppeError(f"walltime factor must be a finite number >= 1, got {factor}")
    if not round_s > 0.0 or math.isinf(round_s):
        raise SteppeError(f"walltime rounding must be a finite number of seconds > 0, got {round_s}")


def derive_walltime(runtime_s: float, factor: float = 2.0, round_s: float = 3600.0) -> float:
    """The walltime limit for a trace that logs none: ``runtime x factor`` rounded up to ``round_s``."""
    return max(max(1, math.ceil(runtime_s * factor / round_s)) * round_s, runtime_s)


def walltime_rule_note(factor: float, round_s: float) -> str:
    """The sentence that goes into ``Trace.notes`` when walltimes were derived."""
    return (
        f"walltime_s derived where the trace has none: ceil(runtime_s x {factor:g} / {round_s:g} s)"
        f" x {round_s:g} s, at least {round_s:g} s"
    )


def existing_file(path: str | Path) -> Path:
    """``path`` as a Path, or an error naming it when no such file exists (shared by every reader)."""
    p = Path(path)
    if not p.is_file():
        raise SteppeError(f"{p}: no such trace file")
    return p


def read_philly(
    path: str | Path,
    *,
    walltime_factor: float = 2.0,
    walltime_round_s: float = 3600.0,
    limit: int | None = None,
) -> Trace:
    """Read a Philly job list; see the module docstring for the rules."""
    check_walltime_rule(walltime_factor, walltime_round_s)
    p = existing_file(path)
    ceil = math.ceil
    jobs: list[JobSpec] = []
    append = jobs.append
    with gc_paused():
        rows = _parse(p, str(p))
        rows.sort(key=itemgetter(0))
        if limit is not None:
            rows = rows[: max(0, limit)]
        t0 = rows[0][0] if rows else 0.0
        for job_id, (t, dur, gpus, vc) in enumerate(rows, start=1):
            wall = (ceil(dur * walltime_factor / walltime_round_s) or 1) * walltime_round_s
            append(JobSpec(job_id, t - t0, gpus, dur, wall if wall >= dur else dur, vc))
    trace = Trace(source=f"philly:{p}", jobs=jobs)
    trace.notes.append(walltime_rule_note(walltime_factor, walltime_round_s) + " (Philly logs no limits)")
    if jobs:
        trace.adjusted[WALLTIME_DERIVED] = len(jobs)
    trace.notes.append("tenant = Philly virtual cluster (the 'cluster' column)")
    vc_file = p.parent / VC_NODES_FILE
    if vc_file.is_file():
        _add_tenants(trace, vc_file, sorted({j.tenant for j in jobs}))
    return trace


def _parse(p: Path, src: str) -> list[tuple[float, float, int, str]]:
    """Rows as ``(submit epoch s, duration, gpus, vc)`` in file order, every field checked.

    The loop converts optimistically; a row that fails any check goes to ``_row_problem`` for
    the precise message.
    """
    rows: list[tuple[float, float, int, str]] = []
    append = rows.append
    # A timestamp is cut into "YYYY-MM-DD ", "HH:MM" and ":SS"; each piece is looked up in a
    # table of valid pieces, so the common case costs three dict lookups and stays strict.
    days: dict[str, float] = {}
    with p.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != COLUMNS:
            raise TraceError(src, 1, f"header must be {','.join(COLUMNS)}, got {','.join(header or [])!r}")
        for row in reader:
            try:
                stamp, dur_text, gpus_text, _gpu_time, vc = row
                day = days.get(stamp[:11])
                if day is None:
                    day = days[stamp[:11]] = _day_seconds(stamp[:11])
                minute = _MINUTES.get(stamp[11:16])
                second = _SECONDS.get(stamp[16:])
                dur = float(dur_text)
                gpus = int(gpus_text)
            except ValueError:
                if not row:
                    continue
                raise TraceError(src, reader.line_num, _row_problem(row)) from None
            if minute is None or second is None or not (0.0 <= dur < 1e12 and gpus >= 1 and vc):
                raise TraceError(src, reader.line_num, _row_problem(row))
            append((day + minute + second, dur, gpus, vc))
    return rows


_MINUTES = {f"{h:02d}:{m:02d}": h * 3600 + m * 60 for h in range(24) for m in range(60)}
_SECONDS = {f":{s:02d}": s for s in range(61)}


def _day_seconds(date_text: str) -> float:
    """Seconds from year 1 to the start of ``YYYY-MM-DD `` (the trailing space is part of the key)."""
    return float(datetime.strptime(date_text, "%Y-%m-%d ").toordinal() * 86400)


def _row_problem(row: list[str]) -> str:
    """What is wrong with a row the fast loop rejected: the field and the reason."""
    if len(row) != len(COLUMNS):
        return f"expected {len(COLUMNS)} columns ({','.join(COLUMNS)}), got {len(row)}"
    stamp, dur_text, gpus_text, _gpu_time, vc = row
    try:
        _day_seconds(stamp[:11])
    except ValueError:
        return f"timestamp: not YYYY-MM-DD HH:MM:SS (bad date): {stamp!r}"
    if stamp[11:16] not in _MINUTES or stamp[16:] not in _SECONDS:
        return f"timestamp: not YYYY-MM-DD HH:MM:SS (bad time of day): {stamp!r}"
    try:
        dur = float(dur_text)
    except ValueError:
        return f"duration: not a number: {dur_text!r}"
    if not 0.0 <= dur < 1e12:
        return f"duration: must be a number of seconds >= 0, got {dur_text!r}"
    try:
        gpus = int(gpus_text)
    except ValueError:
        return f"num_gpus: not an integer: {gpus_text!r}"
    if gpus < 1:
        return f"num_gpus: must be >= 1, got {gpus}"
    return "cluster: empty (the virtual cluster is the tenant)"


def _add_tenants(trace: Trace, vc_file: Path, vcs: list[str]) -> None:
    """Fair-share weights = VC node counts from ``philly_vc_nodes.csv``; the median for unlisted VCs."""
    src = str(vc_file)
    nodes: dict[str, float] = {}
    with vc_file.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or len(header) != 2:
            raise TraceError(src, 1, f"header must be 'vc,node num', got {','.join(header or [])!r}")
        for row in reader:
            if not row:
                continue
            if len(row) != 2:
                raise TraceError(src, reader.line_num, f"expected 2 columns (vc,node num), got {len(row)}")
            try:
                count = int(row[1])
            except ValueError:
                raise TraceError(src, reader.line_num, f"node num: not an integer: {row[1]!r}") from None
            if count < 1:
                raise TraceError(src, reader.line_num, f"node num: must be >= 1, got {count}")
            nodes[row[0].strip()] = float(count)
    if not nodes:
        return
    median = float(statistics.median(nodes.values()))
    missing = [vc for vc in vcs if vc not in nodes]
    for vc in vcs:
        trace.tenants[vc] = TenantSpec(vc, weight=nodes.get(vc, median), gpu_quota=None)
    trace.notes.append(f"tenant weights = VC node counts from {VC_NODES_FILE}")
    if missing:
        trace.notes.append(
            f"{len(missing)} VC(s) not in {VC_NODES_FILE} get the median weight {median:g}: " + ", ".join(missing)
        )
