"""Jobs as text, the way Slurm prints them: ``squeue -o`` format strings, ``sacct --format`` field
lists and ``scontrol show job``'s ``Key=Value`` lines. Times are local ISO (``2026-11-30T15:36:50``).

**squeue formats** (``queue -o``): ``%[.][SIZE]LETTER``, with any other text kept as it is
(``%%`` is a ``%``). ``SIZE`` cuts the value to that many characters and pads it; ``.`` pads on the
left (right-justified); without a size the column is as wide as its widest value. The letters:

====  ===================  ===========================================================
 %i   JOBID                job id
 %j   NAME                 job name
 %u   USER                 user
 %a   ACCOUNT              project (ORG/PROJECT)
 %T   STATE                state (PENDING, RUNNING, ...)
 %t   ST                   state code (PD, R, CD, F, CA, TO)
 %M   TIME                 time used
 %l   TIME_LIMIT           time limit
 %L   TIME_LEFT            time left of a running job's limit
 %D   NODES                number of nodes (of a running job; pending: 1)
 %G   GPUS                 number of GPUs
 %b   TRES_PER_NODE        GPUs as gres, e.g. gres/gpu:H100:4
 %q   QOS                  quality of service
 %R   NODELIST(REASON)     nodes of a running job, (reason) of a pending one
 %r   REASON               reason (None when there is none)
 %N   NODELIST             nodes
 %S   START_TIME           start time (pending: the estimated start)
 %V   SUBMIT_TIME          submit time
 %e   END_TIME             end time (running: the end of its limit)
 %P   SITE                 the site a job runs or ran at (a hub at several sites; the
                           place of squeue's partition column, shown by default there)
====  ===================  ===========================================================

>>> cols = parse_squeue("%.6i %j %t")
>>> job = m.Job(id=42, name="train", project="kaznu/nlp", user="alice", state="RUNNING", gpus=4,
...             gpu_type="H100", walltime_s=7200, submit_s=0, workdir="/w", stdout_path="o", stderr_path="e")
>>> render(cols, [job])
[' JOBID NAME  ST', '    42 train R']

**sacct fields** (``history --format``): a comma list of field names, any case, each with an
optional ``%SIZE`` (``JobName%30``): JobID, JobName, Account (or Project), User, State, ExitCode,
Elapsed, Timelimit, Submit, Start, End, AllocTRES, NGPUS, NodeList, Reason, QOS. The header is
followed by a line of dashes, as sacct prints it.

**scontrol** (``show_lines``): ``JobId=42 JobName=train``, then indented lines ``UserId=alice
Account=kaznu/nlp QOS=normal``, ``JobState=PENDING Reason=Resources ExitCode=0:0``, ...; a missing
time is ``Unknown``, a missing list ``(null)``, never a Python ``None``.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from steppe.client import models as m
from steppe.core.units import format_duration

Get = Callable[[m.Job], str]


def when(t: float | None, missing: str = "N/A") -> str:
    """Epoch seconds as local ISO time to the second (``missing`` for None)."""
    return datetime.fromtimestamp(t).strftime("%Y-%m-%dT%H:%M:%S") if t is not None else missing


def _reason(j: m.Job) -> str:
    return j.reason or "None"


def _nodelist_reason(j: m.Job) -> str:
    return ",".join(j.nodes) if j.state == "RUNNING" else f"({_reason(j)})"


def _start(j: m.Job) -> str:
    return when(j.est_start_s if j.state == "PENDING" else j.start_s)


def _end(j: m.Job) -> str:
    if j.end_s is not None:
        return when(j.end_s)
    return when(j.start_s + j.walltime_s) if j.start_s is not None else "N/A"


def _left(j: m.Job) -> str:
    if j.state != "RUNNING" or j.start_s is None:
        return format_duration(j.walltime_s)
    return format_duration(max(0.0, j.start_s + j.walltime_s - time.time()))


def tres(j: m.Job) -> str:
    """The job's GPUs as Slurm's gres TRES: ``gres/gpu:H100=4`` (``gres/gpu=4`` when any type will do)."""
    kind = j.alloc_gpu_type or j.gpu_type
    return f"gres/gpu:{kind}={j.gpus}" if kind else f"gres/gpu={j.gpus}"


def _job_id(j: m.Job) -> str:
    """squeue's ``%i``: an array task as ``ARRAY_TASK`` (``123_4``), else the job id."""
    return f"{j.array_job_id}_{j.array_task_id}" if j.array_job_id is not None else str(j.id)


SQUEUE: dict[str, tuple[str, Get]] = {
    "i": ("JOBID", _job_id),
    "j": ("NAME", lambda j: j.name),
    "u": ("USER", lambda j: j.user),
    "a": ("ACCOUNT", lambda j: j.project),
    "T": ("STATE", lambda j: j.state),
    "t": ("ST", lambda j: m.STATE_CODES.get(j.state, j.state)),
    "M": ("TIME", lambda j: format_duration(j.elapsed_s or 0)),
    "l": ("TIME_LIMIT", lambda j: format_duration(j.walltime_s)),
    "L": ("TIME_LEFT", _left),
    "D": ("NODES", lambda j: str(len(j.nodes) or 1)),
    "G": ("GPUS", lambda j: str(j.gpus)),
    "b": ("TRES_PER_NODE", lambda j: tres(j).replace("=", ":")),
    "q": ("QOS", lambda j: j.qos),
    "R": ("NODELIST(REASON)", _nodelist_reason),
    "r": ("REASON", _reason),
    "N": ("NODELIST", lambda j: ",".join(j.nodes)),
    "S": ("START_TIME", _start),
    "V": ("SUBMIT_TIME", lambda j: when(j.submit_s)),
    "e": ("END_TIME", _end),
    "P": ("SITE", lambda j: j.site or ""),
}
"""squeue's letters: header and value (module docstring)."""
QUEUE_DEFAULT = "%i %a %j %u %t %M %G %R %S"
"""``steppe queue``'s columns when no ``-o`` is given."""
QUEUE_START = "%i %a %j %u %t %S %G %R"
"""``steppe queue --start``'s columns (pending jobs, by estimated start)."""


def with_site(fmt: str) -> str:
    """A default format with the site after the job id (a hub at several sites).

    >>> with_site(QUEUE_DEFAULT)
    '%i %P %a %j %u %t %M %G %R %S'
    """
    return fmt.replace("%i ", "%i %P ", 1)

SACCT: dict[str, tuple[str, Get]] = {
    "jobid": ("JobID", lambda j: str(j.id)),
    "jobname": ("JobName", lambda j: j.name),
    "account": ("Account", lambda j: j.project),
    "project": ("Project", lambda j: j.project),
    "user": ("User", lambda j: j.user),
    "state": ("State", lambda j: j.state),
    "exitcode": ("ExitCode", lambda j: j.exit_code or "0:0"),
    "elapsed": ("Elapsed", lambda j: format_duration(j.elapsed_s or 0)),
    "timelimit": ("Timelimit", lambda j: format_duration(j.walltime_s)),
    "submit": ("Submit", lambda j: when(j.submit_s, "Unknown")),
    "start": ("Start", lambda j: when(j.start_s, "Unknown")),
    "end": ("End", lambda j: when(j.end_s, "Unknown")),
    "alloctres": ("AllocTRES", tres),
    "ngpus": ("NGPUS", lambda j: str(j.gpus)),
    "nodelist": ("NodeList", lambda j: ",".join(j.nodes) or "None assigned"),
    "reason": ("Reason", _reason),
    "qos": ("QOS", lambda j: j.qos),
    "site": ("Site", lambda j: j.site or ""),
}
"""sacct's fields by lowercase name: header and value (module docstring)."""
HISTORY_DEFAULT = "JobID,JobName,Project,User,State,ExitCode,Elapsed,AllocTRES,Start,End"
"""``steppe history``'s fields when no ``--format`` is given."""


@dataclass(frozen=True)
class Column:
    """One field of a listing: its header, how to get its value, its width (None: fit) and justification."""

    header: str
    get: Get
    width: int | None = None
    right: bool = False


_SPEC = re.compile(r"%(\.?)(\d*)(.)", re.DOTALL)


def parse_squeue(fmt: str) -> list[Column | str]:
    """An squeue format string as columns and the literal text between them (``ValueError`` for a bad one).

    >>> [c if isinstance(c, str) else (c.header, c.width, c.right) for c in parse_squeue("%.8i|%j")]
    [('JOBID', 8, True), '|', ('NAME', None, False)]
    """
    out: list[Column | str] = []
    pos = 0
    for spec in _SPEC.finditer(fmt):
        if spec.start() > pos:
            out.append(fmt[pos : spec.start()])
        pos = spec.end()
        dot, size, letter = spec.groups()
        if letter == "%" and not dot and not size:
            out.append("%")
            continue
        if letter not in SQUEUE:
            letters = "".join(sorted(SQUEUE, key=str.lower))
            raise ValueError(f"unknown field %{letter} in {fmt!r}; valid letters: {letters} (e.g. '%.10i %j %T')")
        if dot and not size:
            raise ValueError(f"'%.' needs a size in {fmt!r} (e.g. %.10i)")
        header, get = SQUEUE[letter]
        out.append(Column(header, get, int(size) if size else None, bool(dot)))
    if pos < len(fmt):
        if "%" in fmt[pos:]:
            raise ValueError(f"a '%' without a field letter in {fmt!r} (e.g. '%.10i %j'; %% for a '%')")
        out.append(fmt[pos:])
    if not any(isinstance(c, Column) for c in out):
        raise ValueError(f"no field in {fmt!r}; give %LETTER fields (e.g. '%.10i %j %T')")
    return out


def parse_sacct(fields: str) -> list[Column]:
    """An sacct field list (``JobID,JobName%30,State``) as columns (``ValueError`` for an unknown field).

    >>> [(c.header, c.width) for c in parse_sacct("jobid,JobName%30")]
    [('JobID', None), ('JobName', 30)]
    """
    out: list[Column] = []
    for item in (f.strip() for f in fields.split(",")):
        if not item:
            continue
        name, _, size = item.partition("%")
        known = SACCT.get(name.lower())
        if known is None or (size and not size.isdigit()):
            valid = ", ".join(h for h, _ in SACCT.values())
            raise ValueError(f"unknown field {item!r}; valid: {valid} (e.g. JobID,JobName,State,ExitCode,Elapsed)")
        out.append(Column(known[0], known[1], int(size) if size else None))
    if not out:
        raise ValueError("no field given (e.g. JobID,JobName,State,ExitCode,Elapsed)")
    return out


def spaced(columns: Sequence[Column]) -> list[Column | str]:
    """Columns with one space between each two (an sacct listing)."""
    out: list[Column | str] = []
    for c in columns:
        out.extend([" ", c] if out else [c])
    return out


def _cell(text: str, width: int, right: bool, cut: bool, mark: str) -> str:
    if cut and len(text) > width:
        text = text[: width - len(mark)] + mark if width > len(mark) else text[:width]
    return text.rjust(width) if right else text.ljust(width)


def render(parts: Sequence[Column | str], jobs: Sequence[m.Job], dashes: bool = False, mark: str = "") -> list[str]:
    """The header and one line per job; a column without a width is as wide as its widest value.
    ``dashes`` adds sacct's line of dashes under the header; ``mark`` ends a value cut to its width."""
    values = [[c.get(j) if isinstance(c, Column) else c for c in parts] for j in jobs]
    widths = [
        (c.width or max([len(c.header), *(len(row[k]) for row in values)])) if isinstance(c, Column) else 0
        for k, c in enumerate(parts)
    ]

    def line(cells: Sequence[str], cut: str = mark) -> str:
        return "".join(
            _cell(text, widths[k], c.right, c.width is not None, cut) if isinstance(c, Column) else c
            for k, (c, text) in enumerate(zip(parts, cells, strict=True))
        ).rstrip()

    lines = [line([c.header if isinstance(c, Column) else c for c in parts], "")]  # a header is cut unmarked
    if dashes:
        lines.append(line(["-" * widths[k] if isinstance(c, Column) else c for k, c in enumerate(parts)]))
    lines.extend(line(row) for row in values)
    return lines


def show_lines(j: m.Job) -> list[str]:
    """``scontrol show job``'s ``Key=Value`` lines for one job (module docstring)."""
    nodes = ",".join(j.nodes) or "(null)"
    start = j.est_start_s if j.state == "PENDING" else j.start_s
    end = j.end_s if j.end_s is not None else (j.start_s + j.walltime_s if j.start_s is not None else None)
    lines = [
        f"JobId={j.id} JobName={j.name or '(null)'}",
        f"   UserId={j.user} Account={j.project} QOS={j.qos}",
        f"   JobState={j.state} Reason={_reason(j)} ExitCode={j.exit_code or '0:0'}",
        f"   RunTime={format_duration(j.elapsed_s or 0)} TimeLimit={format_duration(j.walltime_s)}",
        f"   SubmitTime={when(j.submit_s, 'Unknown')} StartTime={when(start, 'Unknown')} "
        f"EndTime={when(end, 'Unknown')}",
        f"   NodeList={nodes} NumNodes={len(j.nodes) or 1} NumGPUs={j.gpus} "
        f"GPUType={j.alloc_gpu_type or j.gpu_type or 'any'} Devices={','.join(map(str, j.devices)) or '(null)'}",
        f"   TRES={tres(j)} Workload={j.workload}",
        f"   Command={shlex.join(j.argv) if j.argv else j.command or '(null)'}",
        f"   WorkDir={j.workdir}",
        f"   StdOut={j.stdout_path}",
        f"   StdErr={j.stderr_path}",
    ]
    if j.position is not None:
        lines.insert(3, f"   Position={j.position}")
    if j.site:
        lines.append(f"   Site={j.site}")
    if j.array_job_id is not None:
        lines.append(f"   ArrayJobId={j.array_job_id} ArrayTaskId={j.array_task_id}")
    if j.dependency:
        lines.append(f"   Dependency={j.dependency}")
    if j.engine_job_id:
        lines.append(f"   EngineJobId={j.engine_job_id}")
    if j.stop_requested:
        lines.append("   StopRequested=yes")
    if j.reason_detail:
        lines.append(f"   ReasonDetail={j.reason_detail}")
    if j.datasets:
        lines.append(f"   Datasets={','.join(j.datasets)}")
    for st in j.staging or []:
        eta = format_duration(st.staging_time_s) if st.staging_time_s is not None else "Unknown"
        lines.append(f"   Staging={st.dataset} Allowed={'yes' if st.allowed else 'no'} Route={st.route or 'local'} "
                     f"StagingTime={eta} Why={st.reason}")  # fmt: skip
    for e in j.events or []:
        lines.append(f"   Event={when(e.t_s)} {e.state}({e.reason})")
    return lines
