"""A generic CSV trace for workloads from other systems: a header row, then one job per row.

Columns may come in any order; a column not listed here is an error that names it.

Required columns:

===========  ============================================================================
submit_s     submission time in seconds, any origin (shifted so the first job is at 0)
gpus         GPUs the job needs, an integer >= 1
runtime_s    how long the job really runs, seconds >= 0
tenant       the organisation it is charged to, non-empty
===========  ============================================================================

Optional columns (an empty cell, like a missing column, means the default):

===========  ============================================================================
job_id       a unique integer; default 1..N in submission order
walltime_s   the requested limit, seconds > 0; default derived by the Philly rule
             ``ceil(runtime_s x factor / round) x round`` and counted in ``adjusted``
project      default: the tenant
gpu_type     a GPU type Steppe knows (A100, H100, H200, B200, GB200, V100, P100, T4, A10,
             GENERIC), any case; default: any type
qos          QOS class name; default ``normal``
preemptible  true/false (also yes/no, 1/0); default true
workload     training, inference or interactive; default training
name, user   free text; default empty
deferrable   true/false; default false (may the job wait for a cheaper or cleaner window)
deadline_s   seconds on the same clock as submit_s (shifted with it); default none
dependency   what it waits for, sbatch's syntax (``afterok:3:4,singleton``; job ids are the
             trace's job_id); default none
begin_s      not before this time, on submit_s's clock (shifted with it); default none
===========  ============================================================================

Jobs are sorted by ``submit_s`` (stable). ``write_csv`` writes every column, so a trace read
from any format can be saved and read back unchanged::

    job_id,submit_s,gpus,runtime_s,walltime_s,tenant,project,gpu_type,qos,preemptible,...
    1,0.0,8,3600.0,7200.0,kaznu,kaznu,H100,normal,true,training,,,false,
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from steppe.core.dependency import format_dependency, parse_dependency
from steppe.core.errors import SteppeError, TraceError
from steppe.core.gpu import gpu_type
from steppe.core.job import JobSpec, WorkloadClass
from steppe.twin.readers.philly import WALLTIME_DERIVED, check_walltime_rule, existing_file, walltime_rule_note
from steppe.twin.trace import Trace

REQUIRED = ("submit_s", "gpus", "runtime_s", "tenant")
OPTIONAL = (
    "job_id", "walltime_s", "project", "gpu_type", "qos", "preemptible", "workload", "name", "user",
    "deferrable", "deadline_s", "dependency", "begin_s",
)  # fmt: skip
COLUMNS = (
    "job_id", "submit_s", "gpus", "runtime_s", "walltime_s", "tenant", "project", "gpu_type", "qos",
    "preemptible", "workload", "name", "user", "deferrable", "deadline_s", "dependency", "begin_s",
)  # fmt: skip
_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def _at_least(low: float, strict: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _number(text)
        if value < low or (strict and value == low):
            raise ValueError(f"must be {'>' if strict else '>='} {low:g}, got {text!r}")
        return value

    return parse


def _integer(low: int | None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"not an integer: {text!r}") from None
        if low is not None and value < low:
            raise ValueError(f"must be >= {low}, got {value}")
        return value

    return parse


def _boolean(text: str) -> bool:
    value = _BOOLS.get(text.lower())
    if value is None:
        raise ValueError(f"not true/false: {text!r}")
    return value


def _text(text: str) -> str:
    return text


def _gpu_type(text: str) -> str:
    try:
        return gpu_type(text).name
    except SteppeError as exc:
        raise ValueError(str(exc)) from None


def _workload(text: str) -> WorkloadClass:
    try:
        return WorkloadClass(text.lower())
    except ValueError:
        raise ValueError(f"not one of {', '.join(w.value for w in WorkloadClass)}: {text!r}") from None


def _dependency(text: str) -> tuple[tuple[str, int], ...]:
    try:
        return parse_dependency(text)
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("dependency: ")) from None


PARSERS: dict[str, Callable[[str], Any]] = {
    "submit_s": _number,
    "gpus": _integer(1),
    "runtime_s": _at_least(0.0, strict=False),
    "tenant": _text,
    "job_id": _integer(None),
    "walltime_s": _at_least(0.0, strict=True),
    "project": _text,
    "gpu_type": _gpu_type,
    "qos": _text,
    "preemptible": _boolean,
    "workload": _workload,
    "name": _text,
    "user": _text,
    "deferrable": _boolean,
    "deadline_s": _number,
    "dependency": _dependency,
    "begin_s": _number,
}


def read_csv(
    path: str | Path,
    *,
    walltime_factor: float = 2.0,
    walltime_round_s: float = 3600.0,
    limit: int | None = None,
) -> Trace:
    """Read a generic CSV trace; the schema is in the module docstring."""
    check_walltime_rule(walltime_factor, walltime_round_s)
    p = existing_file(path)
    src = str(p)
    trace = Trace(source=f"csv:{p}", jobs=[])
    rows: list[tuple[float, int, dict[str, Any]]] = []
    with p.open(newline="") as fh:
        reader = csv.reader(fh)
        header = _header(next(reader, None), src)
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            line = reader.line_num
            if len(row) != len(header):
                raise TraceError(src, line, f"expected {len(header)} columns ({','.join(header)}), got {len(row)}")
            fields: dict[str, Any] = {}
            for column, raw in zip(header, row, strict=True):
                text = raw.strip()
                if not text:
                    if column in REQUIRED:
                        raise TraceError(src, line, f"{column}: empty, but the column is required")
                    continue
                try:
                    fields[column] = PARSERS[column](text)
                except ValueError as exc:
                    raise TraceError(src, line, f"{column}: {exc}") from None
            rows.append((fields["submit_s"], line, fields))
    rows.sort(key=lambda r: r[0])
    if limit is not None:
        rows = rows[: max(0, limit)]
    t0 = rows[0][0] if rows else 0.0
    ids: dict[int, int] = {}
    for index, (_submit, line, fields) in enumerate(rows, start=1):
        job_id = fields.setdefault("job_id", index)
        if job_id in ids:
            raise TraceError(src, line, f"job_id: {job_id} repeats line {ids[job_id]}")
        ids[job_id] = line
        fields["submit_s"] -= t0
        if "deadline_s" in fields:
            fields["deadline_s"] -= t0
        if "begin_s" in fields:
            fields["begin_s"] -= t0
        if "walltime_s" not in fields:
            runtime = fields["runtime_s"]
            wall = max(1, math.ceil(runtime * walltime_factor / walltime_round_s)) * walltime_round_s
            fields["walltime_s"] = max(wall, runtime)
            trace.adjusted[WALLTIME_DERIVED] += 1
        trace.jobs.append(JobSpec(**fields))
    if trace.adjusted[WALLTIME_DERIVED]:
        trace.notes.append(walltime_rule_note(walltime_factor, walltime_round_s) + " (walltime_s empty or absent)")
    if t0:
        trace.notes.append(f"submit_s shifted by {-t0:g} s so the first submission is at 0")
    return trace


def write_csv(jobs: Iterable[JobSpec], path: str | Path) -> None:
    """Write jobs with every column of the schema (floats exactly, booleans as true/false)."""
    with Path(path).open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for j in jobs:
            writer.writerow(
                [
                    j.job_id, repr(j.submit_s), j.gpus, repr(j.runtime_s), repr(j.walltime_s), j.tenant,
                    j.project, j.gpu_type or "", j.qos, _flag(j.preemptible), j.workload.value, j.name,
                    j.user, _flag(j.deferrable), "" if j.deadline_s is None else repr(j.deadline_s),
                    format_dependency(j.dependency), "" if j.begin_s is None else repr(j.begin_s),
                ]
            )  # fmt: skip


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _header(header: list[str] | None, src: str) -> list[str]:
    if not header:
        raise TraceError(src, 1, f"empty file; the header row needs at least {','.join(REQUIRED)}")
    names = [h.strip() for h in header]
    unknown = [n for n in names if n not in PARSERS]
    if unknown:
        raise TraceError(src, 1, f"unknown column(s): {', '.join(unknown)}; allowed: {', '.join(REQUIRED + OPTIONAL)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TraceError(src, 1, f"repeated column(s): {', '.join(repeated)}")
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise TraceError(src, 1, f"missing required column(s): {', '.join(missing)}")
    return names
