"""The hub API's wire format (``/api/v1``), shared by the server and the SDK.

Request bodies reject unknown fields (a typo such as ``gpu`` for ``gpus`` is a 422 naming the
field, not a silently ignored option). Times are epoch seconds (``_s``), GPU time in hours.
Errors are RFC 9457 ``application/problem+json`` documents (``Problem``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", description="lowercase letters, digits, _ . -")]
Role = Literal["hub-admin", "org-admin", "member", "reviewer"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code, e.g. KZ")]


class Org(BaseModel):
    name: str
    country: str
    created_s: float


class ProjectCreate(_Request):
    name: Name


class Project(BaseModel):
    org: str
    name: str
    key: str
    created_s: float


class MemberCreate(_Request):
    name: Name
    role: Literal["org-admin", "member", "reviewer"] = "member"


class User(BaseModel):
    name: str
    org: str | None
    role: Role
    created_s: float
    disabled: bool = False


class TokenCreate(_Request):
    name: Annotated[str, Field(min_length=1, max_length=64)] = "default"
    expires_in_s: Annotated[float | None, Field(gt=0)] = None


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
    period: Annotated[str, Field(description="YYYY, YYYY-H1, YYYY-Q1 or YYYY-MM (UTC)")]
    gpu_hours: Annotated[float, Field(gt=0)]
    max_gpus: Annotated[int | None, Field(ge=1)] = None
    gpu_types: Annotated[list[str] | None, Field(min_length=1)] = None
    reason: Annotated[str, Field(min_length=1, description="why: written to the audit log (required)")]


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


# -- jobs ------------------------------------------------------------------------------------------------
class JobSubmit(_Request):
    """A job: a command (``argv``) or a script, the GPUs and time it needs, and where it runs."""

    project: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*/[a-z0-9][a-z0-9_.-]*$", description="org/project")]
    argv: Annotated[list[str] | None, Field(min_length=1)] = None
    script: Annotated[str | None, Field(min_length=1)] = None
    name: Annotated[str, Field(max_length=128)] = ""
    gpus: Annotated[int, Field(ge=1, le=65536)] = 1
    gpu_type: str | None = None
    walltime_s: Annotated[float, Field(gt=0, description="time limit in seconds")] = 3600.0
    qos: str = "normal"
    workdir: str | None = None
    env: dict[str, str] = {}
    output: str | None = Field(None, description="stdout file; %j is replaced by the job id")
    error: str | None = Field(None, description="stderr file; %j is replaced by the job id")
    datasets: Annotated[list[Name], Field(description="registered datasets the job reads")] = []

    @model_validator(mode="after")
    def _one_command(self) -> JobSubmit:
        if (self.argv is None) == (self.script is None):
            raise ValueError("give exactly one of argv (a command) or script")
        return self


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
    reason: str
    exit_code: str | None = Field(None, description="Slurm's exit:signal")
    gpus: int
    gpu_type: str | None
    alloc_gpu_type: str | None = None
    nodes: list[str] = []
    devices: list[int] = []
    walltime_s: float
    submit_s: float
    start_s: float | None = None
    end_s: float | None = None
    elapsed_s: float | None = None
    argv: list[str] | None = None
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


class JobPage(BaseModel):
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
    name: str
    gpu_type: str
    gpus: int
    free: int
    jobs: list[int]


class Gpu(BaseModel):
    node: str
    index: int
    gpu_type: str
    job_id: int | None


class Version(BaseModel):
    version: str
    api: str = "v1"
    policy: str
    fleet: str


# -- governance --------------------------------------------------------------------------------------------
class ReviewAction(_Request):
    """A reviewer's (or hub-admin's) action on a proposal; approve needs ``expires_on``."""

    action: Literal["start_review", "request_changes", "approve", "reject", "revoke", "expire"]
    reason: str = ""
    expires_on: date | None = None
    gpu_hour_cap: Annotated[float | None, Field(gt=0)] = None
    allowed_gpu_types: list[str] = []
    allowed_sites: list[str] = []
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
    jurisdiction: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO country code whose law governs it")]
    sensitivity: Literal["public", "internal", "personal", "restricted"]
    location: Annotated[str, Field(description="the site holding it, e.g. astana")]
    size_bytes: Annotated[int, Field(ge=0)]
    allowed_jurisdictions: list[str] = Field([], description="where it may be processed (countries or blocs)")
    forbidden_transit: list[str] = Field([], description="countries it may not cross in transit")


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
    version: Annotated[str, Field(min_length=1, max_length=32)]
    effective_on: date
    text: Annotated[str, Field(min_length=1)]


class Terms(BaseModel):
    version: str
    effective_on: date
    digest: str
    text: str
    accepted: bool = False


class TermsAccept(_Request):
    version: str


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
