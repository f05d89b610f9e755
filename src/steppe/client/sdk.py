"""A typed Python SDK for the hub API (httpx); the ``steppe`` CLI uses nothing else to talk to a hub.

>>> import httpx
>>> def fake(request: httpx.Request) -> httpx.Response:
...     return httpx.Response(200, json={"name": "alice", "role": "member", "org": "kaznu"})
>>> HubClient("http://hub", "stp_x", transport=httpx.MockTransport(fake)).whoami().org
'kaznu'

Errors from the hub (RFC 9457 problem documents) raise ``HubError`` with the problem's title,
detail and field errors; an unreachable hub raises ``HubUnreachable``. Both are
``SteppeError``s, which the CLI prints as one line and exits 1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from steppe.client import models as m
from steppe.client.config import ClientConfig, load_config
from steppe.core.errors import SteppeError

M = TypeVar("M", bound=BaseModel)
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"})


class HubError(SteppeError):
    """The hub answered with an error."""

    def __init__(self, status: int, problem: m.Problem) -> None:
        self.status, self.problem = status, problem
        text = problem.detail or problem.title
        super().__init__(f"{problem.title} ({status}): {text}" if problem.title not in text else text)


class HubUnreachable(SteppeError):
    """No answer from the hub at all."""


class HubClient:
    """A client for one hub, authenticated with one token."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0, transport: Any = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    @classmethod
    def from_config(cls, config: ClientConfig | None = None) -> HubClient:
        """A client from ``STEPPE_URL``/``STEPPE_TOKEN``, else the file ``steppe login`` wrote."""
        cfg = config or load_config()
        return cls(cfg.url, cfg.token)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise HubUnreachable(f"cannot reach the hub at {self.url}: {exc}") from None
        if resp.status_code >= 400:
            try:
                problem = m.Problem.model_validate(resp.json())
            except ValueError:
                title = resp.reason_phrase or "Error"
                problem = m.Problem(title=title, status=resp.status_code, detail=resp.text[:200])
            raise HubError(resp.status_code, problem)
        return resp

    def _get(self, model: type[M], path: str, **params: Any) -> M:
        clean = {k: v for k, v in params.items() if v is not None}
        return model.model_validate(self.request("GET", path, params=clean).json())

    def _list(self, model: type[M], path: str, **params: Any) -> list[M]:
        clean = {k: v for k, v in params.items() if v is not None}
        return TypeAdapter(list[model]).validate_python(self.request("GET", path, params=clean).json())  # type: ignore[valid-type]

    def _post(self, model: type[M], path: str, body: BaseModel | None = None, **kwargs: Any) -> M:
        payload = body.model_dump(exclude_none=True) if body is not None else None
        return model.model_validate(self.request("POST", path, json=payload, **kwargs).json())

    # -- who and what ---------------------------------------------------------------------------------------
    def whoami(self) -> m.Whoami:
        return self._get(m.Whoami, "/api/v1/whoami")

    def version(self) -> m.Version:
        return self._get(m.Version, "/api/v1/version")

    # -- tenancy ---------------------------------------------------------------------------------------------
    def create_org(self, name: str, country: str) -> m.Org:
        return self._post(m.Org, "/api/v1/orgs", m.OrgCreate(name=name, country=country))

    def list_orgs(self) -> list[m.Org]:
        return self._list(m.Org, "/api/v1/orgs")

    def set_share(self, org: str, share: m.OrgShare) -> m.Org:
        """Set an organisation's fair-share weight and GPU quota (hub-admin; the reason is audited)."""
        body = share.model_dump(mode="json")  # None is meaningful here: the cluster file's value
        return m.Org.model_validate(self.request("PUT", f"/api/v1/orgs/{org}/share", json=body).json())

    def create_project(self, org: str, name: str) -> m.Project:
        return self._post(m.Project, f"/api/v1/orgs/{org}/projects", m.ProjectCreate(name=name))

    def list_projects(self) -> list[m.Project]:
        return self._list(m.Project, "/api/v1/projects")

    def add_member(self, org: str, name: str, role: str = "member") -> m.User:
        return self._post(m.User, f"/api/v1/orgs/{org}/members", m.MemberCreate(name=name, role=role))  # type: ignore[arg-type]

    def list_members(self, org: str) -> list[m.User]:
        return self._list(m.User, f"/api/v1/orgs/{org}/members")

    def remove_member(self, org: str, name: str) -> None:
        self.request("DELETE", f"/api/v1/orgs/{org}/members/{name}")

    def create_token(self, user: str, name: str = "default", expires_in_s: float | None = None) -> m.TokenCreated:
        body = m.TokenCreate(name=name, expires_in_s=expires_in_s)
        return self._post(m.TokenCreated, f"/api/v1/users/{user}/tokens", body)

    def list_tokens(self, user: str) -> list[m.TokenInfo]:
        return self._list(m.TokenInfo, f"/api/v1/users/{user}/tokens")

    def revoke_token(self, prefix: str) -> None:
        self.request("DELETE", f"/api/v1/tokens/{prefix}")

    def create_allocation(
        self,
        project: str,
        period: str,
        gpu_hours: float,
        max_gpus: int | None = None,
        gpu_types: list[str] | None = None,
        *,
        reason: str,
    ) -> m.Allocation:
        """Grant GPU-hours for a period; ``reason`` goes to the audit log (required)."""
        org, _, name = project.partition("/")
        body = m.AllocationCreate(
            period=period, gpu_hours=gpu_hours, max_gpus=max_gpus, gpu_types=gpu_types or None, reason=reason
        )
        return self._post(m.Allocation, f"/api/v1/orgs/{org}/projects/{name}/allocations", body)

    def list_allocations(self, project: str | None = None) -> list[m.Allocation]:
        return self._list(m.Allocation, "/api/v1/allocations", project=project)

    def usage(self, project: str) -> list[m.UsageRow]:
        org, _, name = project.partition("/")
        return self._list(m.UsageRow, f"/api/v1/orgs/{org}/projects/{name}/usage")

    def usage_by_user(self, project: str, period: str | None = None) -> list[m.UserUsage]:
        """GPU-hours per user of ``project`` (``org/name``), of one period (``2026-05``, ``2026-Q2``) if given."""
        org, _, name = project.partition("/")
        return self._list(m.UserUsage, f"/api/v1/orgs/{org}/projects/{name}/usage/users", period=period)

    def balance(self, project: str) -> m.Balance:
        """``project``'s allocation in force, its GPU-hours used and left."""
        org, _, name = project.partition("/")
        return self._get(m.Balance, f"/api/v1/orgs/{org}/projects/{name}/balance")

    # -- jobs ------------------------------------------------------------------------------------------------
    def submit(self, job: m.JobSubmit, idempotency_key: str | None = None) -> m.Job:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._post(m.Job, "/api/v1/jobs", job, headers=headers)

    def get_job(self, job_id: int) -> m.Job:
        return self._get(m.Job, f"/api/v1/jobs/{job_id}")

    def list_jobs(self, **filters: Any) -> m.JobPage:
        """Filters: ``project``, ``state`` (names or codes: ``PENDING,R``), ``user``, ``jobs`` (ids: ``42,43``),
        ``since_s``, ``until_s`` (submit time), ``limit``, ``offset``, ``newest_first``."""
        return self._get(m.JobPage, "/api/v1/jobs", **filters)

    def iter_jobs(self, page_size: int = 500, **filters: Any) -> Iterator[m.Job]:
        """Every job matching ``filters``, page by page."""
        offset = 0
        while True:
            page = self.list_jobs(limit=page_size, offset=offset, **filters)
            yield from page.items
            offset += len(page.items)
            if not page.items or offset >= page.total:
                return

    def cancel(self, job_id: int) -> m.Job:
        return self._post(m.Job, f"/api/v1/jobs/{job_id}/cancel")

    def logs(self, job_id: int, stream: str = "stdout", offset: int = 0, max_bytes: int = 256 * 1024) -> m.LogChunk:
        return self._get(m.LogChunk, f"/api/v1/jobs/{job_id}/logs", stream=stream, offset=offset, max_bytes=max_bytes)

    def follow_logs(self, job_id: int, stream: str = "stdout", poll_s: float = 0.5) -> Iterator[str]:
        """Yield output as it is written until the job has ended and all of it was read."""
        offset = 0
        while True:
            chunk = self.logs(job_id, stream, offset)
            if chunk.data:
                yield chunk.data
            offset = chunk.next_offset
            if chunk.eof:
                return
            if not chunk.data:
                time.sleep(poll_s)

    def wait(self, job_id: int, timeout_s: float = 60.0, poll_s: float = 0.2) -> m.Job:
        """Poll until the job has ended; raises TimeoutError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.get_job(job_id)
            if job.state in TERMINAL:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state} after {timeout_s} s")
            time.sleep(poll_s)

    def queue(
        self,
        project: str | None = None,
        limit: int = 1000,
        offset: int = 0,
        *,
        user: str | None = None,
        state: str | None = None,
        jobs: str | None = None,
    ) -> m.JobPage:
        """The queue (running, then pending in the scheduler's order); each filter a comma list, as squeue's:
        ``project`` (``-A``), ``user`` (``-u``), ``state`` (names or codes, ``-t PD,R``), ``jobs`` (ids, ``-j``)."""
        return self._get(m.JobPage, "/api/v1/queue", project=project, user=user, state=state, jobs=jobs,
                         limit=limit, offset=offset)  # fmt: skip

    def iter_queue(self, page_size: int = 1000, **filters: Any) -> Iterator[m.Job]:
        """Every queued job matching ``filters`` (those of ``queue``), page by page."""
        offset = 0
        while True:
            page = self.queue(limit=page_size, offset=offset, **filters)
            yield from page.items
            offset += len(page.items)
            if not page.items or offset >= page.total:
                return

    def nodes(self) -> list[m.Node]:
        return self._list(m.Node, "/api/v1/nodes")

    def gpus(self) -> list[m.Gpu]:
        return self._list(m.Gpu, "/api/v1/gpus")

    def drain_node(self, node: str, reason: str) -> m.Node:
        """Drain a node (hub-admin; audited): its jobs finish, nothing new starts there."""
        return self._post(m.Node, f"/api/v1/nodes/{node}/drain", m.NodeDrain(reason=reason))

    def resume_node(self, node: str, reason: str = "") -> m.Node:
        """Give a drained node back to the scheduler (hub-admin; audited)."""
        return self._post(m.Node, f"/api/v1/nodes/{node}/resume", m.NodeResume(reason=reason))

    def priorities(self, jobs: list[int] | None = None) -> list[m.Priority]:
        """Pending jobs' priority factors (sprio): the caller's organisation's, or all for a hub-admin."""
        return self._list(m.Priority, "/api/v1/priorities", job=jobs or None)

    def shares(self) -> list[m.FairShare]:
        """Organisations' fair share (sshare): the caller's, or all for a hub-admin."""
        return self._list(m.FairShare, "/api/v1/shares")

    def metrics(self) -> str:
        return self.request("GET", "/metrics").text

    # -- governance: proposals, datasets, terms, audit -----------------------------------------------------
    def submit_proposal(self, spec: dict[str, Any]) -> m.Proposal:
        """Submit a proposal (a dict as in docs/governance.md); the answer includes its screening."""
        return m.Proposal.model_validate(self.request("POST", "/api/v1/proposals", json=spec).json())

    def check_proposal(self, spec: dict[str, Any]) -> m.ProposalCheck:
        """Screen a proposal as a submission would, rule by rule; the hub stores nothing."""
        return m.ProposalCheck.model_validate(self.request("POST", "/api/v1/proposals/check", json=spec).json())

    def amend_proposal(self, proposal_id: int, spec: dict[str, Any]) -> m.Proposal:
        return m.Proposal.model_validate(self.request("PUT", f"/api/v1/proposals/{proposal_id}", json=spec).json())

    def get_proposal(self, proposal_id: int) -> m.Proposal:
        return self._get(m.Proposal, f"/api/v1/proposals/{proposal_id}")

    def list_proposals(self, project: str | None = None, state: str | None = None) -> list[m.Proposal]:
        return self._list(m.Proposal, "/api/v1/proposals", project=project, state=state)

    def review(self, proposal_id: int, action: m.ReviewAction) -> m.Proposal:
        """Start review, request changes, approve (with conditions), reject, revoke or expire."""
        payload = action.model_dump(mode="json", exclude_none=True)
        return m.Proposal.model_validate(
            self.request("POST", f"/api/v1/proposals/{proposal_id}/review", json=payload).json()
        )

    def register_dataset(self, dataset: m.DatasetCreate) -> m.Dataset:
        return self._post(m.Dataset, "/api/v1/datasets", dataset)

    def list_datasets(self) -> list[m.Dataset]:
        return self._list(m.Dataset, "/api/v1/datasets")

    def publish_terms(self, terms: m.TermsPublish) -> m.Terms:
        payload = terms.model_dump(mode="json")
        return m.Terms.model_validate(self.request("POST", "/api/v1/terms", json=payload).json())

    def terms(self) -> m.Terms:
        return self._get(m.Terms, "/api/v1/terms")

    def accept_terms(self, version: str) -> m.Terms:
        return self._post(m.Terms, "/api/v1/terms/accept", m.TermsAccept(version=version))

    def audit_entries(self, since_seq: int = 0, limit: int = 1000) -> list[m.AuditEntry]:
        return self._list(m.AuditEntry, "/api/v1/audit", since_seq=since_seq, limit=limit)

    def audit_verify(self, head: tuple[int, str] | None = None) -> m.AuditVerify:
        """Verify the stored chain; with ``head`` (seq, hash) recorded earlier, also detect truncation."""
        seq, digest = head if head is not None else (None, None)
        return self._get(m.AuditVerify, "/api/v1/audit/verify", head_seq=seq, head_hash=digest)

    def audit_export(self) -> bytes:
        """The whole log as JSON lines (canonical encoding, with hashes)."""
        return self.request("GET", "/api/v1/audit/export").content
