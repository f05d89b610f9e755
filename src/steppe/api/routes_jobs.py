"""Jobs (submit, get, list, cancel, logs), the queue, nodes and GPUs (``/api/v1``).

Submitting writes the job and a request for the loop in one transaction and wakes the loop;
it never touches the scheduler's state. With an ``Idempotency-Key`` header, the same key and
body from the same user return the first job (200); the same key with another body is a 409.

``POST /jobs`` has a fast path (``submit_fast``, called by the edge before routing): the body
parsed and validated as FastAPI would (``json.loads``, then ``JobSubmit``), the same workflow,
the same answer. Whatever it does not take (another content type, a repeated or over-long
``Idempotency-Key``, a body that is not valid JSON or not a valid ``JobSubmit``) goes on to the
route below, which answers it exactly as before: the fast path never writes an error of its own
except the application layer's (``problems.app_error_response``).

Governance at submit: once acceptable-use terms are in force, a user who has not accepted them
gets a 403 (``steppe terms accept``); ``datasets`` must name registered datasets (422). Jobs of
projects without a current approval are accepted and wait (``AwaitingReview``); ``GET
/jobs/{id}`` explains why (``reason_detail``) and shows each dataset's route and estimated
staging time to the hub's site (``staging``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import ValidationError

from steppe.api.deps import HubDep, Who
from steppe.api.edge import PRINCIPAL, Scope
from steppe.api.hub import Hub
from steppe.api.params import EpochS, Filter, JobId, Offset, PageLimit
from steppe.api.problems import app_error_response, forbidden, not_found
from steppe.app import jobs
from steppe.app import nodes as nodes_
from steppe.app.auth import Principal
from steppe.app.errors import AppError, Invalid
from steppe.app.jobs import TERMINAL
from steppe.client import models as m
from steppe.control.rows import resolve
from steppe.control.views import PendingJob, QueueEntry
from steppe.core.dependency import format_dependency
from steppe.executors.safefile import open_recorded
from steppe.governance.residency import decide
from steppe.store import governance as gov_repo
from steppe.store import jobs as job_repo
from steppe.store import tenancy

router = APIRouter(prefix="/api/v1", tags=["jobs"])


def job_view(
    row: Any,
    node_names: list[str],
    events: list[Any] | None = None,
    entry: QueueEntry | None = None,
    summary: bool = False,
) -> m.Job:
    """A job row as the API shows it; a ``summary`` (listings) leaves ``argv`` out, ``command`` previews it."""
    exit_code = None if getattr(row, "exit_code", None) is None else f"{row.exit_code}:{row.exit_signal or 0}"
    handle = getattr(row, "handle", None) or {}
    start_s, end_s = getattr(row, "start_s", None), getattr(row, "end_s", None)
    elapsed = None
    if start_s is not None:
        elapsed = (end_s if end_s is not None else time.time()) - start_s
    return m.Job(
        id=row.id, name=row.name, project=f"{row.org}/{row.project_name}", user=row.user, state=row.state,
        reason=m.no_reason(row.reason), exit_code=exit_code, gpus=row.gpus, gpu_type=row.gpu_type,
        workload=getattr(row, "workload", None) or "training", alloc_gpu_type=getattr(row, "alloc_gpu_type", None),
        nodes=[node_names[n] for n, _ in (getattr(row, "alloc", None) or [])],
        devices=[d for _, ids in handle.get("devices", []) for d in ids], engine_job_id=handle.get("engine_id"),
        site=handle.get("site"),
        walltime_s=row.walltime_s, qos=getattr(row, "qos", None) or "normal",
        submit_s=row.submit_s, start_s=start_s, end_s=end_s, elapsed_s=elapsed, argv=None if summary else row.argv,
        command=m.command_preview(row.argv, getattr(row, "script", None)),
        workdir=resolve(row.workdir, row.id), stdout_path=resolve(row.stdout_path, row.id),
        stderr_path=resolve(row.stderr_path, row.id),
        stop_requested=getattr(row, "stop_intent", None) is not None and row.state not in TERMINAL,
        position=entry.position if entry else None, est_start_s=entry.est_start_s if entry else None,
        events=None if events is None else [m.JobEvent(t_s=e.t_s, state=e.state, reason=e.reason) for e in events],
        dependency=_dependency_text(getattr(row, "dependency", None)), begin_s=getattr(row, "begin_s", None),
        array_job_id=getattr(row, "array_job_id", None), array_task_id=getattr(row, "array_task_id", None),
    )  # fmt: skip


def _dependency_text(stored: Any) -> str | None:
    """A stored dependency (``[[kind, id], ...]``) in sbatch's syntax."""
    return format_dependency(tuple((str(k), int(j)) for k, j in stored)) if stored else None


@router.post("/jobs", status_code=201, response_model=m.Job)
async def submit_job(
    body: m.JobSubmit,
    hub: HubDep,
    who: Who,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> Response:
    """Submit a job (``steppe.app.jobs.submit``). Runs on the event loop: its only blocking work, the
    insert, is handed to the group-commit writer (a thread pool hop per request cost more than the insert).
    The answer is the ``Job`` model serialised once, here (the hub's hottest route: FastAPI would
    validate and serialise the returned model again)."""
    return _submitted(hub, await jobs.submit(hub, who, body, idempotency_key))


def _submitted(hub: Hub, done: jobs.Submitted) -> Response:
    job = job_view(done.row, hub.fleet.node_names)
    return Response(
        job.model_dump_json(), status_code=200 if done.replayed else 201, media_type="application/json",
        headers={"Location": f"/api/v1/jobs/{done.job_id}"},
    )  # fmt: skip


MAX_IDEMPOTENCY_KEY = 128  # the route's Header(max_length=128)


async def submit_fast(hub: Hub, scope: Scope, body: bytes) -> Response | None:
    """``POST /api/v1/jobs`` for the edge, before routing (see the module docstring); None: the route answers."""
    who = scope.get(PRINCIPAL)
    if not isinstance(who, Principal):
        return None
    content_type = key = None
    keys = 0
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"idempotency-key":
            key, keys = value.decode("latin-1"), keys + 1
    if content_type is None or content_type.lower() != b"application/json" or keys > 1:
        return None
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        return None
    try:
        submission = m.JobSubmit.model_validate(json.loads(body))
    except (ValidationError, ValueError, RecursionError):
        return None
    try:
        return _submitted(hub, await jobs.submit(hub, who, submission, key))
    except AppError as exc:
        return app_error_response(exc)


@router.get("/jobs", response_model=m.JobPage)
def list_jobs(
    hub: HubDep,
    who: Who,
    project: Filter = None,
    state: Annotated[
        str | None, Query(max_length=256, description="states or codes, comma-separated: PENDING,R")
    ] = None,
    user: Filter = None,
    jobs_: Annotated[str | None, Query(alias="jobs", max_length=4096, description="job ids: 42,43")] = None,
    since_s: EpochS = None,
    until_s: EpochS = None,
    limit: PageLimit = 100,
    offset: Offset = 0,
    newest_first: bool = False,
) -> m.JobPage:
    """Jobs, newest last (or first): summaries without ``argv`` (``GET /jobs/{id}`` has the full job)."""
    try:
        states = m.parse_states(state) if state else []
    except ValueError as exc:
        raise Invalid.field("state", str(exc)) from None
    try:
        ids = m.parse_ids(jobs_) if jobs_ else None
    except ValueError as exc:
        raise Invalid.field("jobs", str(exc)) from None
    with hub.store.read() as conn:
        project_id = user_id = None
        if project is not None:
            prow = tenancy.get_project(conn, *(project.split("/", 1) + [""])[:2])
            if prow is None or not who.sees_org(prow.org_id):
                raise not_found(f"project {project}")
            project_id = prow.id
        if user is not None:
            urow = tenancy.get_user(conn, user)
            user_id = urow.id if urow is not None else -1
        rows, total = job_repo.list_jobs(
            conn, org_id=None if who.is_hub_admin else (who.org_id or -1), project_id=project_id, user_id=user_id,
            states=states, ids=ids, since_s=since_s, until_s=until_s, limit=limit, offset=offset,
            newest_first=newest_first,
        )  # fmt: skip
    items = [job_view(r, hub.fleet.node_names, summary=True) for r in rows]
    return m.JobPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/jobs/{job_id}", response_model=m.Job)
def get_job(job_id: JobId, hub: HubDep, who: Who) -> m.Job:
    row = jobs.visible_job(hub, who, job_id)
    with hub.store.read() as conn:
        events = job_repo.events_of(conn, job_id)
        names = gov_repo.datasets_of_jobs(conn, [job_id]).get(job_id, [])
        registry = gov_repo.registry(conn) if names else {}
    view = job_view(row, hub.fleet.node_names, events)
    gov = hub.loop.governance
    if names:
        view.datasets = names
        view.staging = [
            m.Staging(**asdict(decide(registry[n], view.site or gov.site, gov.topology)))
            for n in names
            if n in registry
        ]
    if row.state == "PENDING":  # why a governance check holds it, and its estimated start, as of the last step
        model = hub.reads.model
        known = model.by_id.get(job_id)
        view.reason_detail = known.detail if isinstance(known, PendingJob) else None
        entry = next((e for e in model.queue if e.job_id == job_id), None) if known is not None else None
        if entry is not None:
            view.position, view.est_start_s = entry.position, entry.est_start_s
    return view


@router.post("/jobs/{job_id}/cancel", status_code=202, response_model=m.Job)
def cancel_job(job_id: JobId, hub: HubDep, who: Who) -> m.Job:
    """Cancel a pending job at once, or a running one (SIGTERM, then SIGKILL after the grace period)."""
    return job_view(jobs.cancel(hub, who, job_id), hub.fleet.node_names)


@router.get("/jobs/{job_id}/logs", response_model=m.LogChunk)
def job_logs(
    job_id: int,
    hub: HubDep,
    who: Who,
    stream: Annotated[str, Query(pattern="^(stdout|stderr)$")] = "stdout",
    offset: Annotated[int, Query(ge=0)] = 0,
    max_bytes: Annotated[int, Query(ge=1, le=4 * 1024 * 1024)] = 256 * 1024,
) -> m.LogChunk:
    row = jobs.visible_job(hub, who, job_id)
    if not who.acts_on_job(row.org_id, row.user_id):
        raise forbidden("only the job's owner or an org-admin may read its output")
    path = resolve(row.stdout_path if stream == "stdout" else row.stderr_path, job_id)
    data = b""
    size = 0
    written = hub.loop.executor.outputs(job_id).get(stream)  # only a file the job itself opened, unchanged
    fd = open_recorded(path, written) if written is not None else None
    if fd is not None:
        with os.fdopen(fd, "rb") as f:
            size = f.seek(0, 2)
            f.seek(min(offset, size))
            data = f.read(max_bytes)
    nxt = min(offset, size) + len(data)
    return m.LogChunk(
        job_id=job_id, stream=stream, offset=offset, next_offset=nxt,
        data=data.decode("utf-8", errors="replace"), eof=row.state in TERMINAL and nxt >= size,
    )  # fmt: skip


@router.get("/queue", response_model=m.JobPage)
def queue(
    hub: HubDep,
    who: Who,
    project: Annotated[str | None, Query(max_length=256, description="projects, comma-separated: kaznu/nlp")] = None,
    user: Annotated[str | None, Query(max_length=256, description="users, comma-separated: alice,bob")] = None,
    state: Annotated[str | None, Query(max_length=256, description="states or codes, comma-separated: PD,R")] = None,
    jobs_: Annotated[str | None, Query(alias="jobs", max_length=4096, description="job ids: 42,43")] = None,
    limit: PageLimit = 100,
    offset: Offset = 0,
) -> m.JobPage:
    """Running jobs, then pending jobs in the scheduler's order with reasons and estimated starts (summaries),
    as of the loop's last step (its read model: never waits for a scheduling step); filtered as ``squeue -A -u
    -t -j`` filter (``steppe.app.jobs.queue_selection``)."""
    model = hub.reads.model
    visible = jobs.queue_selection(hub, who, project=project, user=user, state=state, jobs=jobs_)
    shown = visible[offset : offset + limit]
    page = [j.job_id for j in shown]
    waiting = any(isinstance(j, PendingJob) for j in shown)  # estimates only when the page shows pending jobs
    entries = {e.job_id: e for e in model.queue} if waiting else {}
    with hub.store.read() as conn:
        rows = job_repo.jobs_by_id(conn, page)
    items = [job_view(rows[j], hub.fleet.node_names, entry=entries.get(j), summary=True) for j in page if j in rows]
    return m.JobPage(items=items, total=len(visible), limit=limit, offset=offset)


@router.get("/nodes", response_model=list[m.Node])
def nodes(hub: HubDep, who: Who) -> list[m.Node]:
    """Nodes with their free GPUs, state (idle, mixed, allocated, drain, draining, down) and drain reason,
    and the running jobs the caller may see (another organisation's job ids are hidden, as everywhere else;
    hub-admins see all), as of the loop's last step."""
    return nodes_.node_views(hub, who)


@router.get("/gpus", response_model=list[m.Gpu])
def gpus(hub: HubDep, who: Who) -> list[m.Gpu]:
    """Every GPU and the running job holding it, if the caller may see that job (hub-admins see all)."""
    with hub.store.read() as conn:
        rows, _ = job_repo.list_jobs(conn, states=["RUNNING"], limit=100000)
    owner = {(int(n), d): r for r in rows for n, ids in (r.handle or {}).get("devices", []) for d in ids}
    out = []
    for node in hub.fleet.cluster.nodes:
        for d in hub.fleet.devices[node.index]:
            row = owner.get((node.index, d))
            job_id = row.id if row is not None and who.sees_org(row.org_id) else None
            out.append(m.Gpu(node=node.name, index=d, gpu_type=node.gpu_type.name, job_id=job_id,
                              busy=row is not None))  # fmt: skip
    return out
