"""The hub API's wire format (``/api/v1``), shared by the server and the SDK.

Request bodies are strict: unknown fields are refused (a typo such as ``gpu`` for ``gpus`` is a
422 naming the field, not a silently ignored option), nothing is coerced (``"gpus": "2"`` and
``"gpus": true`` are refused; an integer for a float field is fine), numbers are finite and
bounded, and every string, list and mapping has a length limit (the ``MAX_*`` constants below,
documented in docs/live-hub.md, "Input limits"). No request string may hold a NUL character or a
lone UTF-16 surrogate (``SafeStr``): they cannot reach a process, a path or the store. The SDK and
the CLI validate with the same models, so they refuse the same input before it is sent.

Times are epoch seconds (``_s``), GPU time in hours. Errors are RFC 9457
``application/problem+json`` documents (``Problem``); ``explain`` turns a pydantic error into the
one-line ``field: what is wrong (e.g. ...)`` message the hub and the CLI print.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from steppe.core.arrays import parse_array
from steppe.core.dependency import format_dependency, parse_dependency
from steppe.core.text import text_problem

# -- input limits (docs/live-hub.md, "Input limits") -------------------------------------------------------
MAX_INT = 2**63 - 1
"""The largest integer the store holds (SQLite INTEGER, PostgreSQL BIGINT): ids, offsets, byte counts."""
MAX_GPUS = 65_536
"""GPUs of one job or one allocation's ``max_gpus``."""
MAX_DURATION_S = 10 * 366 * 86400.0
"""About ten years: the longest ``walltime_s`` (the hub's own maximum is lower) and token lifetime."""
MAX_GPU_HOURS = 1e9
"""GPU-hours of an allocation or an approval's cap (100,000 GPUs for more than a year)."""
MAX_ARGV = 4096
"""Elements of a job's ``argv``."""
MAX_ARG_CHARS = 64 * 1024
"""Characters of one ``argv`` element."""
MAX_ENV = 256
"""Variables in a job's ``env``."""
MAX_ENV_NAME_CHARS = 256
"""Characters of an ``env`` variable name."""
MAX_ENV_VALUE_CHARS = 32 * 1024
"""Characters of an ``env`` value."""
MAX_SCRIPT_CHARS = 1024 * 1024
"""Characters of a job's ``script``."""
MAX_COMMAND_BYTES = 2 * 1024 * 1024
"""UTF-8 bytes of ``argv``, ``env`` (names and values) and ``script`` together."""
MAX_JOB_NAME = 128
"""Characters of a job's ``name``."""
MAX_PATH = 4096
"""Characters of ``workdir``, ``output``, ``error`` and ``submit_dir`` (Linux ``PATH_MAX``)."""
MAX_REASON = 4096
"""Characters of a reason (allocations, reviews)."""
MAX_TERMS_TEXT = 256 * 1024
"""Characters of the acceptable-use terms' text."""
MAX_WORD = 64
"""Characters of short words: GPU types, QOS, sites, periods, token names, jurisdictions."""
MAX_ITEMS = 64
"""Items of short lists: datasets of a job, GPU types, sites, jurisdictions."""
MAX_PAGE = 1000
"""Jobs per page of ``GET /jobs`` and ``GET /queue``."""
HUB_SET_ENV = frozenset({
    "CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "SLURM_JOB_NAME", "SLURM_JOB_NODELIST", "SLURM_NODELIST",
    "SLURM_JOB_NUM_NODES", "SLURM_NNODES", "SLURM_SUBMIT_DIR", "SLURM_JOB_ACCOUNT", "SLURM_JOB_PARTITION",
    "SLURM_JOB_USER", "SLURM_GPUS", "SLURM_GPUS_ON_NODE", "SLURM_JOB_GPUS", "SLURM_NTASKS", "SLURM_CPUS_PER_TASK",
    "SLURM_CLUSTER_NAME", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT",
})  # fmt: skip
"""Variables the hub sets in every job (besides ``STEPPE_*``): a job's ``env`` may not name them."""
COMMAND_PREVIEW_CHARS = 200
"""Characters of ``Job.command``, the command line shown in listings."""


def check_text(value: str) -> str:
    """``value`` unchanged if it has no NUL character and no lone surrogate, else a ``ValueError``.

    >>> check_text("train.py")
    'train.py'
    >>> check_text("a\\x00b")
    Traceback (most recent call last):
    ...
    ValueError: must not contain a NUL character (\\u0000, at character 1)
    """
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _iso_date(value: Any) -> Any:
    if isinstance(value, str | date):
        return value
    raise ValueError(f"must be a date YYYY-MM-DD, not {_kind(value)}")


SafeStr = Annotated[str, AfterValidator(check_text)]
"""A string with no NUL character and no lone surrogate (every request string is one)."""
Word = Annotated[SafeStr, Field(min_length=1, max_length=MAX_WORD)]
Reason = Annotated[SafeStr, Field(max_length=MAX_REASON)]
FilePath = Annotated[SafeStr, Field(min_length=1, max_length=MAX_PATH)]
IsoDate = Annotated[date, Field(strict=False), BeforeValidator(_iso_date)]
"""A date as ``YYYY-MM-DD`` (JSON) or a ``date`` (Python); not a number."""

_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
_PROJECT_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}/[a-z0-9][a-z0-9_.-]{0,62}$"
_COUNTRY_PATTERN = r"^[A-Z]{2}$"
_PATTERNS = {
    _NAME_PATTERN: "1-63 lowercase letters, digits, '_', '.' or '-', starting with a letter or digit",
    _PROJECT_PATTERN: "ORG/PROJECT: two names of lowercase letters, digits, '_', '.' or '-'",
    _COUNTRY_PATTERN: "a two-letter ISO 3166-1 country code in capitals",
}
"""What each pattern means, in words (error messages show these, never the regular expression)."""

Name = Annotated[str, Field(pattern=_NAME_PATTERN, description=_PATTERNS[_NAME_PATTERN], examples=["kaznu"])]
Country = Annotated[
    str, Field(pattern=_COUNTRY_PATTERN, description="ISO 3166-1 alpha-2 code, e.g. KZ", examples=["KZ"])
]
Role = Literal["hub-admin", "org-admin", "member", "reviewer"]


class _Request(BaseModel):
    """A request body: unknown fields refused, no coercion, finite numbers (module docstring)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


# -- error messages --------------------------------------------------------------------------------------------
def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number" if value == value and abs(value) != float("inf") else "Infinity or NaN"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _example(info: FieldInfo | None, element: bool) -> str:
    if info is None:
        return ""
    ex: Any = info.examples[0] if info.examples else info.default
    if ex is None or ex is PydanticUndefined or ex in ("", [], {}):
        return ""
    if element and isinstance(ex, list):
        ex = ex[0] if ex else None
    elif element and isinstance(ex, Mapping):
        ex = next(iter(ex.values()), None)
    if ex is None or isinstance(ex, list | Mapping) and not ex:
        return ""
    return f" (e.g. {json.dumps(ex, ensure_ascii=False, default=str)})"


def explain(
    err: Mapping[str, Any], model: type[BaseModel] | None = None, info: FieldInfo | None = None
) -> dict[str, str]:
    """One pydantic error (an item of ``ValidationError.errors()``) as ``{field, message}`` in plain words.

    ``model`` (the request model) or ``info`` (the field) supply examples and the valid field names.

    >>> try:
    ...     JobSubmit.model_validate({"project": "kaznu/nlp", "argv": ["true"], "gpus": "2"})
    ... except ValidationError as exc:
    ...     explain(exc.errors()[0], JobSubmit)
    {'field': 'gpus', 'message': 'must be an integer, not a string (e.g. 2)'}
    """
    parts = [p for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
    key_error = bool(parts) and parts[-1] == "[key]"
    if key_error:
        parts = parts[:-1]
    field = ".".join(str(p) for p in parts)
    kind, ctx, value = str(err.get("type", "")), err.get("ctx") or {}, err.get("input")
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if info is None and model is not None and parts and isinstance(parts[0], str):
        info = model.model_fields.get(parts[0])
    eg = _example(info, element=len(parts) > 1)
    if kind == "missing":
        message = "required" + eg
    elif kind == "extra_forbidden":
        valid = f"; valid fields: {', '.join(model.model_fields)}" if model is not None else ""
        message = "unknown field" + valid
    elif kind in ("int_type", "int_parsing", "int_from_float"):
        message = f"must be an integer, not {_kind(value)}" + eg
    elif kind in ("float_type", "float_parsing"):
        message = f"must be a number, not {_kind(value)}" + eg
    elif kind == "finite_number":
        message = "must be a finite number, not Infinity or NaN" + eg
    elif kind in ("bool_type", "bool_parsing"):
        message = f"must be true or false, not {_kind(value)}"
    elif kind == "string_type":
        message = f"must be a string, not {_kind(value)}" + eg
    elif kind == "string_unicode":
        message = "must be valid Unicode text (it holds a lone surrogate)"
    elif kind == "list_type":
        message = f"must be a list, not {_kind(value)}" + eg
    elif kind in ("dict_type", "model_type", "model_attributes_type", "dataclass_type"):
        message = f"must be an object, not {_kind(value)}" + eg
        if not field:
            message = f"the body must be a JSON object, not {_kind(value)}"
    elif kind == "string_too_short":
        n = ctx.get("min_length", 1)
        message = "must not be empty" + eg if n == 1 else f"must be at least {n} characters" + eg
    elif kind == "string_too_long":
        got = f" (got {len(value):,})" if isinstance(value, str) else ""
        message = f"must be at most {_num(ctx.get('max_length'))} characters{got}"
    elif kind == "too_long" and isinstance(value, str):
        message = f"must be at most {_num(ctx.get('max_length'))} characters (got {len(value):,})"
    elif kind == "too_short" and isinstance(value, str):
        n = ctx.get("min_length", 1)
        message = "must not be empty" + eg if n == 1 else f"must be at least {n} characters" + eg
    elif kind == "too_short":
        n = ctx.get("min_length", 1)
        message = f"must have at least {n} item{'s' if n != 1 else ''}" + eg
    elif kind == "too_long":
        actual = ctx.get("actual_length")
        message = f"must have at most {_num(ctx.get('max_length'))} items" + (
            f" (got {_num(actual)})" if actual else ""
        )
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        word = {"greater_than": "more than", "greater_than_equal": "at least", "less_than": "less than",
                "less_than_equal": "at most"}[kind]  # fmt: skip
        bound = next(iter(ctx.values()), "")
        message = f"must be {word} {_num(bound)}" + eg
    elif kind == "string_pattern_mismatch":
        message = f"must be {_PATTERNS.get(str(ctx.get('pattern')), 'of the documented form')}" + eg
    elif kind in ("literal_error", "enum"):
        message = f"must be {ctx.get('expected', 'one of the documented values')}"
    elif kind.startswith("date_"):
        message = "must be a date YYYY-MM-DD" + eg
    else:
        message = msg
    if key_error:
        message = f"the name {message}"
    return {"field": field or "body", "message": message}


def explain_all(exc: ValidationError, model: type[BaseModel] | None = None, limit: int = 10) -> list[dict[str, str]]:
    """The first ``limit`` errors of ``exc`` in plain words (``explain``)."""
    return [explain(err, model) for err in exc.errors(include_url=False)[:limit]]


def one_line(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """A validation error as one line: ``field: message; field: message``, as the CLI prints it.

    >>> try:
    ...     JobSubmit.model_validate({"project": "kaznu/nlp", "argv": ["true"], "walltime_s": 0})
    ... except ValidationError as exc:
    ...     one_line(exc, JobSubmit)
    'walltime_s: must be more than 0 (e.g. 3600)'
    """
    return "; ".join(f"{e['field']}: {e['message']}" for e in explain_all(exc, model))


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: list[FieldError] = []


# -- tenancy -------------------------------------------------------------------------------------------
class OrgCreate(_Request):
    name: Name
    country: Country


class Org(BaseModel):
    name: str
    country: str
    created_s: float
    fairshare_weight: float | None = Field(None, description="stored fair-share weight (None: the cluster file's)")
    gpu_quota: int | None = Field(None, description="stored concurrent-GPU quota (None: the cluster file's)")


class OrgShare(_Request):
    """An organisation's share of the hub: fair-share weight and concurrent-GPU quota (hub-admin, audited)."""

    fairshare_weight: Annotated[float | None, Field(gt=0, le=1e6, examples=[2.0])] = None
    gpu_quota: Annotated[int | None, Field(ge=0, le=MAX_GPUS, examples=[16])] = None
    reason: Annotated[
        Reason, Field(min_length=1, description="why: written to the audit log (required)", examples=["2027 call"])
    ]


class ProjectCreate(_Request):
    name: Annotated[Name, Field(examples=["nlp"])]


class Project(BaseModel):
    org: str
    name: str
    key: str
    created_s: float


class MemberCreate(_Request):
    name: Annotated[Name, Field(examples=["alice"])]
    role: Literal["org-admin", "member", "reviewer"] = "member"


class User(BaseModel):
    name: str
    org: str | None
    role: Role
    created_s: float
    disabled: bool = False


class TokenCreate(_Request):
    name: Annotated[Word, Field(examples=["laptop"])] = "default"
    expires_in_s: Annotated[
        float | None, Field(gt=0, le=MAX_DURATION_S, description="lifetime in seconds", examples=[2592000])
    ] = None


class TokenCreated(BaseModel):
    token: str
    prefix: str
    user: str
    name: str
    expires_s: float | None


class TokenInfo(BaseModel):
    prefix: str
    name: str
    created_s: float
    expires_s: float | None
    revoked_s: float | None


class Whoami(BaseModel):
    name: str
    role: Role
    org: str | None


class AllocationCreate(_Request):
    period: Annotated[Word, Field(description="YYYY, YYYY-H1, YYYY-Q1 or YYYY-MM (UTC)", examples=["2026-Q1"])]
    gpu_hours: Annotated[float, Field(gt=0, le=MAX_GPU_HOURS, examples=[5000])]
    max_gpus: Annotated[int | None, Field(ge=1, le=MAX_GPUS, examples=[16])] = None
    gpu_types: Annotated[list[Word] | None, Field(min_length=1, max_length=MAX_ITEMS, examples=[["H100"]])] = None
    reason: Annotated[
        Reason, Field(min_length=1, description="why: written to the audit log (required)", examples=["2026 call"])
    ]


class Allocation(BaseModel):
    project: str
    period: str
    start_s: float
    end_s: float
    gpu_hours: float
    max_gpus: int | None
    gpu_types: list[str] | None
    used_gpu_hours: float
    remaining_gpu_hours: float


class UsageRow(BaseModel):
    project: str
    period: str
    gpu_type: str
    gpu_hours: float


class UserUsage(BaseModel):
    """GPU-hours one user's jobs were charged in a project (``steppe usage``)."""

    project: str
    user: str
    jobs: int
    gpu_hours: float


class Balance(BaseModel):
    """A project's GPU-hours now (``steppe balance``): the allocation in force, what was used in its period and
    what is left; without an allocation in force ``period``, ``granted`` and ``left`` are null and ``used`` is all
    the project's usage."""

    project: str
    period: str | None
    granted_gpu_hours: float | None
    used_gpu_hours: float
    left_gpu_hours: float | None


# -- jobs ------------------------------------------------------------------------------------------------
Arg = Annotated[SafeStr, Field(max_length=MAX_ARG_CHARS)]
EnvName = Annotated[SafeStr, Field(min_length=1, max_length=MAX_ENV_NAME_CHARS)]
EnvValue = Annotated[SafeStr, Field(max_length=MAX_ENV_VALUE_CHARS)]


class JobSubmit(_Request):
    """A job: a command (``argv``) or a script, the GPUs and time it needs, and where it runs.

    Limits: ``argv`` at most ``MAX_ARGV`` elements of ``MAX_ARG_CHARS`` characters, ``env`` at most
    ``MAX_ENV`` variables with values of ``MAX_ENV_VALUE_CHARS``, ``script`` ``MAX_SCRIPT_CHARS``,
    and all three together ``MAX_COMMAND_BYTES`` of UTF-8.
    """

    project: Annotated[str, Field(pattern=_PROJECT_PATTERN, description="org/project", examples=["kaznu/nlp"])]
    argv: Annotated[list[Arg] | None, Field(min_length=1, max_length=MAX_ARGV, examples=[["python", "train.py"]])] = (
        None
    )
    script: Annotated[
        SafeStr | None, Field(min_length=1, max_length=MAX_SCRIPT_CHARS, examples=["#!/bin/sh\npython train.py\n"])
    ] = None
    name: Annotated[SafeStr, Field(max_length=MAX_JOB_NAME, examples=["train"])] = ""
    gpus: Annotated[int, Field(ge=1, le=MAX_GPUS, examples=[2])] = 1
    gpu_type: Annotated[Word | None, Field(examples=["H100"])] = None
    walltime_s: Annotated[
        float, Field(gt=0, le=MAX_DURATION_S, description="time limit in seconds", examples=[3600])
    ] = 3600.0
    qos: Annotated[Word, Field(examples=["normal"])] = "normal"
    workload: Literal["training", "inference", "interactive"] = Field(
        "training", description="what the job does: sets its modelled power and whether it may be capped"
    )
    workdir: Annotated[FilePath | None, Field(examples=["/home/alice/run"])] = None
    env: Annotated[dict[EnvName, EnvValue], Field(max_length=MAX_ENV, examples=[{"OMP_NUM_THREADS": "8"}])] = {}
    submit_dir: Annotated[
        FilePath | None,
        Field(description="the absolute directory it was submitted from (the job's SLURM_SUBMIT_DIR)",
              examples=["/home/alice/run"]),
    ] = None
    output: Annotated[
        FilePath | None, Field(description="stdout file; %j is replaced by the job id", examples=["logs/%j.out"])
    ] = None
    error: Annotated[
        FilePath | None, Field(description="stderr file; %j is replaced by the job id", examples=["logs/%j.err"])
    ] = None
    datasets: Annotated[
        list[Name],
        Field(max_length=MAX_ITEMS, description="registered datasets the job reads", examples=[["kazcorpus"]]),
    ] = []
    dependency: Annotated[
        str | None,
        Field(max_length=1024, description="what it waits for, in sbatch's --dependency syntax",
              examples=["afterok:12:13,singleton"]),
    ] = None
    begin_s: Annotated[
        float | None, Field(gt=0, description="not before this time (POSIX seconds; sbatch --begin)",
                            examples=[1_796_100_000])
    ] = None
    array: Annotated[
        str | None,
        Field(max_length=256, description="submit an array: its task indices and throttle, as sbatch's --array",
              examples=["0-99%8"]),
    ] = None

    @field_validator("array")
    @classmethod
    def _array(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse_array(value)
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("array: ")) from None
        return value.strip()

    @field_validator("dependency")
    @classmethod
    def _dependency(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return format_dependency(parse_dependency(value))  # one canonical spelling
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("dependency: ")) from None

    @model_validator(mode="after")
    def _one_command(self) -> JobSubmit:
        if (self.argv is None) == (self.script is None):
            raise ValueError('give exactly one of argv (a command) or script (e.g. ["python", "train.py"])')
        size = command_bytes(self.argv, self.env, self.script)
        if size > MAX_COMMAND_BYTES:
            raise ValueError(
                f"argv, env and script together must be at most {MAX_COMMAND_BYTES:,} bytes of UTF-8 (got {size:,})"
            )
        return self


def command_bytes(argv: list[str] | None, env: Mapping[str, str], script: str | None) -> int:
    """UTF-8 bytes of a job's command, environment and script together (``MAX_COMMAND_BYTES``)."""
    total = sum(len(a.encode("utf-8", "surrogatepass")) + 1 for a in argv or [])
    total += sum(len(k.encode("utf-8", "surrogatepass")) + len(v.encode("utf-8", "surrogatepass")) + 2
                 for k, v in env.items())  # fmt: skip
    return total + len((script or "").encode("utf-8", "surrogatepass"))


def command_preview(argv: list[str] | None, script: str | None = None) -> str:
    """The command line as listings show it, at most ``COMMAND_PREVIEW_CHARS`` characters.

    >>> command_preview(["python", "train.py", "--lr", "3e-4"])
    'python train.py --lr 3e-4'
    >>> command_preview(None, "#!/bin/sh\\npython train.py\\n")
    '(script) #!/bin/sh'
    """
    text = shlex.join(argv) if argv else "(script) " + (script or "").split("\n", 1)[0]
    return text if len(text) <= COMMAND_PREVIEW_CHARS else text[: COMMAND_PREVIEW_CHARS - 3] + "..."


JOB_STATES = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED")
"""A job's states, by Slurm's names."""
STATE_CODES = {"PENDING": "PD", "RUNNING": "R", "COMPLETED": "CD", "FAILED": "F", "CANCELLED": "CA", "TIMEOUT": "TO",
               "PREEMPTED": "PR"}  # fmt: skip
"""Slurm's short code of each state (``squeue``'s ST column)."""
_BY_CODE = {**{s: s for s in JOB_STATES}, **{c: s for s, c in STATE_CODES.items()}, "CANCELED": "CANCELLED"}


def no_reason(reason: str | None) -> str | None:
    """A stored reason as the API shows it: Slurm's ``None`` (no reason) is ``null``, never the string.

    >>> no_reason("None"), no_reason("Resources")
    (None, 'Resources')
    """
    return None if reason in (None, "", "None") else reason


def parse_states(text: str) -> list[str]:
    """A comma list of state names or Slurm's codes as state names, in order, each once (``ValueError`` else).

    >>> parse_states("pd,R,completed")
    ['PENDING', 'RUNNING', 'COMPLETED']
    >>> parse_states("all")
    ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'PREEMPTED']
    """
    names: list[str] = []
    for item in (p.strip().upper() for p in text.split(",")):
        if item == "ALL":
            names.extend(JOB_STATES)
        elif item in _BY_CODE:
            names.append(_BY_CODE[item])
        elif item:
            codes = ", ".join(f"{s} ({c})" for s, c in STATE_CODES.items())
            raise ValueError(f"unknown state {item!r}; valid: {codes} or all (e.g. PD,R)")
    return list(dict.fromkeys(names))


def parse_ids(text: str) -> list[int]:
    """A comma list of job ids (``ValueError`` naming the bad item else).

    >>> parse_ids("42, 43,42")
    [42, 43]
    """
    ids: list[int] = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        if not item.isdigit() or not 1 <= int(item) <= MAX_INT:
            raise ValueError(f"{item!r} is not a job id; give numbers separated by commas (e.g. 42,43)")
        ids.append(int(item))
    return list(dict.fromkeys(ids))


class Staging(BaseModel):
    """Whether a dataset may be used at the hub's site, over which route, and the estimated staging time."""

    dataset: str
    site: str
    allowed: bool
    route: str | None
    reason: str
    staging_time_s: float | None


class JobEvent(BaseModel):
    t_s: float
    state: str
    reason: str


class Job(BaseModel):
    id: int
    name: str
    project: str
    user: str
    state: str
    reason: str | None = Field(None, description="Slurm's reason, e.g. Resources; null when there is none")
    exit_code: str | None = Field(None, description="Slurm's exit:signal")
    gpus: int
    gpu_type: str | None
    workload: str = "training"
    alloc_gpu_type: str | None = None
    nodes: list[str] = []
    devices: list[int] = []
    engine_job_id: str | None = None  # the engine's own id of the job (Slurm job id, Ray submission id)
    site: str | None = None  # where it runs or ran, in a hub at several sites (else null)
    walltime_s: float
    qos: str = "normal"
    submit_s: float
    start_s: float | None = None
    end_s: float | None = None
    elapsed_s: float | None = None
    argv: list[str] | None = Field(None, description="the full command; listings leave it out (see command)")
    command: str | None = Field(None, description="the command line, shortened (COMMAND_PREVIEW_CHARS)")
    workdir: str
    stdout_path: str
    stderr_path: str
    stop_requested: bool = False
    position: int | None = None
    est_start_s: float | None = None
    events: list[JobEvent] | None = None
    datasets: list[str] = []
    reason_detail: str | None = Field(default=None, description="why a governance check holds the job")
    staging: list[Staging] | None = Field(default=None, description="per dataset: route, staging time")
    dependency: str | None = Field(default=None, description="what it waits for (sbatch --dependency syntax)")
    begin_s: float | None = Field(default=None, description="not before this time (sbatch --begin)")
    array_job_id: int | None = Field(default=None, description="a task of this array (its first task's job id)")
    array_task_id: int | None = Field(default=None, description="its index in the array")


class JobPage(BaseModel):
    """A page of jobs. Listings are summaries: ``argv`` is left out and ``command`` is a short preview;
    ``GET /jobs/{id}`` returns the full job."""

    items: list[Job]
    total: int
    limit: int
    offset: int


class LogChunk(BaseModel):
    job_id: int
    stream: Literal["stdout", "stderr"]
    offset: int
    next_offset: int
    data: str
    eof: bool = Field(description="the job has ended and nothing is left to read")


class Node(BaseModel):
    """A node; ``others``: GPUs held there by jobs the hub did not start (given to its engine directly);
    ``site``: where it is, in a hub at several sites (else null); ``state`` as sinfo names it (idle,
    mixed, allocated, drain, draining, down); ``reason``: why an operator drained it (else null)."""

    name: str
    gpu_type: str
    gpus: int
    free: int
    jobs: list[int]
    others: int = 0
    site: str | None = None
    state: str = "idle"
    reason: str | None = None


class Priority(BaseModel):
    """A pending job's priority and its weighted factors, as ``sprio`` shows them (null: the policy
    has no multifactor priority; ``position`` is then its place in the policy's order)."""

    job_id: int
    org: str
    project: str
    position: int
    priority: float | None = None
    age: float | None = None
    fairshare: float | None = None
    job_size: float | None = None
    qos: float | None = None


class FairShare(BaseModel):
    """An organisation's fair share, as ``sshare`` shows it: raw and normalised shares, decayed usage
    (GPU-seconds), normalised and effective usage, and the fair-share factor (null: no fair share)."""

    org: str
    raw_shares: float
    norm_shares: float
    raw_usage: float
    norm_usage: float
    effective_usage: float
    fairshare: float | None = None


class NodeDrain(_Request):
    """Drain a node (hub-admin, audited): jobs running there finish, nothing new starts there."""

    reason: Annotated[
        Reason, Field(min_length=1, description="why: shown by steppe nodes and audited", examples=["bad fan"])
    ]


class NodeResume(_Request):
    """Resume a drained node (hub-admin, audited)."""

    reason: Annotated[Reason, Field(description="why, for the audit log (optional)", examples=["fan replaced"])] = ""


class Gpu(BaseModel):
    """A GPU; ``busy`` is true while a job holds it, ``job_id`` only when the caller may see that job."""

    node: str
    index: int
    gpu_type: str
    job_id: int | None
    busy: bool = False


class Version(BaseModel):
    version: str
    api: str = "v1"
    policy: str
    fleet: str


# -- governance --------------------------------------------------------------------------------------------
class ReviewAction(_Request):
    """A reviewer's (or hub-admin's) action on a proposal; approve needs ``expires_on``."""

    action: Literal["start_review", "request_changes", "approve", "reject", "revoke", "expire"]
    reason: Annotated[Reason, Field(examples=["standard review"])] = ""
    expires_on: Annotated[IsoDate | None, Field(examples=["2026-12-31"])] = None
    gpu_hour_cap: Annotated[float | None, Field(gt=0, le=MAX_GPU_HOURS, examples=[5000])] = None
    allowed_gpu_types: Annotated[
        list[Word], Field(max_length=MAX_ITEMS, description="GPU types of the hub", examples=[["H100"]])
    ] = []
    allowed_sites: Annotated[list[Word], Field(max_length=MAX_ITEMS, examples=[["astana"]])] = []
    running_jobs: Literal["finish", "cancel"] = Field("finish", description="on revoke: what running jobs do")


class Finding(BaseModel):
    rule_id: str
    effect: str
    citation: str
    reason: str


class Screening(BaseModel):
    outcome: str
    rules_version: str
    compute_flop: float
    systemic_risk: bool
    findings: list[Finding]


class ReviewStep(BaseModel):
    t_s: float
    actor: str
    role: str
    action: str
    from_state: str
    to_state: str
    reason: str


class RuleResult(BaseModel):
    """One screening rule's result for a proposal: ``pass``, or the effect of its finding."""

    rule_id: str
    result: str
    citation: str
    reason: str


class ProposalCheck(BaseModel):
    """A screening dry run (``POST /proposals/check``): nothing is stored and nothing is audited."""

    project: str
    screening: Screening
    rules: list[RuleResult]
    open_proposal: int | None
    next_step: str


class Proposal(BaseModel):
    id: int
    project: str
    state: str
    revision: int
    spec: dict[str, Any]
    screening: Screening | None
    approval: dict[str, Any] | None
    approval_current: bool
    created_s: float
    updated_s: float
    transitions: list[ReviewStep] | None = None


class DatasetCreate(_Request):
    name: Name
    jurisdiction: Annotated[Country, Field(description="ISO country code whose law governs it")]
    sensitivity: Literal["public", "internal", "personal", "restricted"]
    location: Annotated[Word, Field(description="the site holding it, e.g. astana", examples=["astana"])]
    size_bytes: Annotated[int, Field(ge=0, le=MAX_INT, examples=[10**12])]
    allowed_jurisdictions: Annotated[
        list[Word],
        Field(
            max_length=MAX_ITEMS, description="where it may be processed (countries or blocs)", examples=[["KZ", "EU"]]
        ),
    ] = []
    forbidden_transit: Annotated[
        list[Word], Field(max_length=MAX_ITEMS, description="countries it may not cross in transit", examples=[["RU"]])
    ] = []


class Dataset(BaseModel):
    name: str
    jurisdiction: str
    sensitivity: str
    location: str
    size_bytes: int
    allowed_jurisdictions: list[str]
    forbidden_transit: list[str]
    created_s: float
    here: Staging | None = Field(None, description="the residency decision at this hub's site")


class TermsPublish(_Request):
    version: Annotated[SafeStr, Field(min_length=1, max_length=32, examples=["2026.1"])]
    effective_on: Annotated[IsoDate, Field(examples=["2026-01-01"])]
    text: Annotated[SafeStr, Field(min_length=1, max_length=MAX_TERMS_TEXT)]


class Terms(BaseModel):
    version: str
    effective_on: date
    digest: str
    text: str
    accepted: bool = False


class TermsAccept(_Request):
    version: Annotated[SafeStr, Field(min_length=1, max_length=32, examples=["2026.1"])]


class AuditEntry(BaseModel):
    seq: int
    time_s: float
    actor: str
    action: str
    subject: str
    reason: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditVerify(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""
    head_seq: int | None = None
    head_hash: str | None = None
