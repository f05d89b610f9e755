"""Jobs (submit, get, list, cancel, logs), the queue, nodes and GPUs (``/api/v1``).

Submitting writes the job and a request for the loop in one transaction and wakes the loop;
it never touches the scheduler's state. With an ``Idempotency-Key`` header, the same key and
body from the same user return the first job (200); the same key with another body is a 409.

Governance at submit: once acceptable-use terms are in force, a user who has not accepted them
gets a 403 (``steppe terms accept``); ``datasets`` must name registered datasets (422). Jobs of
projects without a current approval are accepted and wait (``AwaitingReview``); ``GET
/jobs/{id}`` explains why (``reason_detail``) and shows each dataset's route and estimated
staging time to the hub's site (``staging``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from dataclasses import asdict
from types import SimpleNamespace
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from sqlalchemy.exc import IntegrityError

from steppe.api.deps import HubDep, Who
from steppe.api.jobcheck import validate_submission
from steppe.api.params import EpochS, Filter, JobId, Offset, PageLimit
from steppe.api.problems import ApiProblem, conflict, forbidden, not_found
from steppe.client import models as m
from steppe.control.rows import resolve
from steppe.control.views import QueueEntry, nodes_view, queue_view
from steppe.executors.safefile import open_recorded
from steppe.governance.residency import decide
from steppe.store import governance as gov_repo
from steppe.store import jobs as job_repo
from steppe.store import tenancy

router = APIRouter(prefix="/api/v1", tags=["jobs"])
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}


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
        reason=row.reason, exit_code=exit_code, gpus=row.gpus, gpu_type=row.gpu_type,
        workload=getattr(row, "workload", None) or "training", alloc_gpu_type=getattr(row, "alloc_gpu_type", None),
        nodes=[node_names[n] for n, _ in (getattr(row, "alloc", None) or [])],
        devices=[d for _, ids in handle.get("devices", []) for d in ids], walltime_s=row.walltime_s,
        submit_s=row.submit_s, start_s=start_s, end_s=end_s, elapsed_s=elapsed, argv=None if summary else row.argv,
        command=m.command_preview(row.argv, getattr(row, "script", None)),
        workdir=resolve(row.workdir, row.id), stdout_path=resolve(row.stdout_path, row.id),
        stderr_path=resolve(row.stderr_path, row.id),
        stop_requested=getattr(row, "stop_intent", None) is not None and row.state not in TERMINAL,
        position=entry.position if entry else None, est_start_s=entry.est_start_s if entry else None,
        events=None if events is None else [m.JobEvent(t_s=e.t_s, state=e.state, reason=e.reason) for e in events],
    )  # fmt: skip


def _visible_job(hub: HubDep, who: Who, job_id: int) -> Any:
    if not 1 <= job_id <= m.MAX_INT:  # no such id can be stored
        raise not_found(f"job {job_id}")
    with hub.store.read() as conn:
        row = job_repo.get_job(conn, job_id)
    if row is None or not who.sees_org(row.org_id):
        raise not_found(f"job {job_id}")
    return row


@router.post("/jobs", status_code=201, response_model=m.Job)
async def submit_job(
    body: m.JobSubmit,
    hub: HubDep,
    who: Who,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> m.Job:
    """Submit a job. Runs on the event loop: its only blocking work, the insert, is handed to the
    group-commit writer (a thread pool hop per request cost more than the insert itself)."""
    digest = hashlib.sha256(json.dumps(body.model_dump(), sort_keys=True).encode()).hexdigest()
    if idempotency_key is not None:
        found = _replay(hub, who, idempotency_key, digest, response)
        if found is not None:
            return found
    now = time.time()
    org, _, name = body.project.partition("/")
    project = hub.project(org, name)
    if project is None or not who.sees_org(project.org_id):
        message = f"no project {body.project!r}"
        raise ApiProblem(422, "Invalid request", f"project: {message}", [{"field": "project", "message": message}])
    values = validate_submission(hub, body, project, now, who.user_id, who.name)
    values.update(user_id=who.user_id, idempotency_key=idempotency_key, request_sha256=digest)
    terms = hub.terms_required(who.user_id, who.name)
    if terms is not None:
        raise ApiProblem(403, "Terms not accepted", terms, kind="terms-not-accepted")
    dataset_ids = _dataset_ids(hub, body.datasets)

    def write(conn: Any) -> int:
        job_id = job_repo.insert_job(conn, values, who.name)
        gov_repo.link_job_datasets(conn, job_id, dataset_ids)
        return job_id

    try:
        job_id = await asyncio.wrap_future(hub.writes.run(write))
    except IntegrityError:
        if idempotency_key is None:
            raise
        found = _replay(hub, who, idempotency_key, digest, response)
        if found is None:
            raise
        return found
    hub.loop.wake()
    response.headers["Location"] = f"/api/v1/jobs/{job_id}"
    row = SimpleNamespace(**job_repo.NEW_JOB, **values, id=job_id, org=org, project_name=name, user=who.name)
    return job_view(row, hub.fleet.node_names)


def _dataset_ids(hub: HubDep, names: list[str]) -> list[int]:
    if not names:
        return []
    with hub.store.read() as conn:
        ids = {r.name: r.id for r in gov_repo.list_datasets(conn)}
    unknown = [n for n in names if n not in ids]
    if unknown:
        message = f"not registered: {', '.join(unknown)}"
        raise ApiProblem(422, "Invalid request", f"datasets: {message}", [{"field": "datasets", "message": message}])
    return [ids[n] for n in dict.fromkeys(names)]


def _replay(hub: HubDep, who: Who, key: str, digest: str, response: Response) -> m.Job | None:
    with hub.store.read() as conn:
        prior = job_repo.find_by_idempotency_key(conn, who.user_id, key)
        row = job_repo.get_job(conn, prior.id) if prior is not None else None
    if prior is None or row is None:
        return None
    if prior.request_sha256 != digest:
        raise conflict(f"Idempotency-Key {key!r} was used for a different request (job {prior.id})")
    response.status_code = 200
    response.headers["Location"] = f"/api/v1/jobs/{prior.id}"
    return job_view(row, hub.fleet.node_names)


@router.get("/jobs", response_model=m.JobPage)
def list_jobs(
    hub: HubDep,
    who: Who,
    project: Filter = None,
    state: Annotated[str | None, Query(max_length=256, description="comma-separated states: PENDING,RUNNING")] = None,
    user: Filter = None,
    since_s: EpochS = None,
    until_s: EpochS = None,
    limit: PageLimit = 100,
    offset: Offset = 0,
    newest_first: bool = False,
) -> m.JobPage:
    """Jobs, newest last (or first): summaries without ``argv`` (``GET /jobs/{id}`` has the full job)."""
    states = [s.strip().upper() for s in state.split(",")] if state else []
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
            states=states, since_s=since_s, until_s=until_s, limit=limit, offset=offset, newest_first=newest_first,
        )  # fmt: skip
    items = [job_view(r, hub.fleet.node_names, summary=True) for r in rows]
    return m.JobPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/jobs/{job_id}", response_model=m.Job)
def get_job(job_id: JobId, hub: HubDep, who: Who) -> m.Job:
    row = _visible_job(hub, who, job_id)
    with hub.store.read() as conn:
        events = job_repo.events_of(conn, job_id)
        names = gov_repo.datasets_of_jobs(conn, [job_id]).get(job_id, [])
        registry = gov_repo.registry(conn) if names else {}
    view = job_view(row, hub.fleet.node_names, events)
    gov = hub.loop.governance
    if names:
        view.datasets = names
        view.staging = [
            m.Staging(**asdict(decide(registry[n], gov.site, gov.topology))) for n in names if n in registry
        ]
    if row.state == "PENDING":
        view.reason_detail = hub.loop.call(lambda: _why(hub, job_id))
    return view


def _why(hub: HubDep, job_id: int) -> str | None:
    rec = hub.loop.state.jobs.get(job_id)
    return hub.loop.governance.why(rec) if rec is not None else None


@router.post("/jobs/{job_id}/cancel", status_code=202, response_model=m.Job)
def cancel_job(job_id: JobId, hub: HubDep, who: Who) -> m.Job:
    """Cancel a pending job at once, or a running one (SIGTERM, then SIGKILL after the grace period)."""
    row = _visible_job(hub, who, job_id)
    if not who.acts_on_job(row.org_id, row.user_id):
        raise forbidden("only the job's owner or an org-admin may cancel it")
    if row.state in TERMINAL:
        raise conflict(f"job {job_id} has already ended ({row.state})")
    with hub.store.write() as conn:
        job_repo.add_request(conn, job_id, "cancel", who.name, time.time())
    hub.loop.wake_and_wait(timeout=5.0)
    return job_view(_visible_job(hub, who, job_id), hub.fleet.node_names)


@router.get("/jobs/{job_id}/logs", response_model=m.LogChunk)
def job_logs(
    job_id: int,
    hub: HubDep,
    who: Who,
    stream: Annotated[str, Query(pattern="^(stdout|stderr)$")] = "stdout",
    offset: Annotated[int, Query(ge=0)] = 0,
    max_bytes: Annotated[int, Query(ge=1, le=4 * 1024 * 1024)] = 256 * 1024,
) -> m.LogChunk:
    row = _visible_job(hub, who, job_id)
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
    project: Filter = None,
    limit: PageLimit = 100,
    offset: Offset = 0,
) -> m.JobPage:
    """Running jobs, then pending jobs in the scheduler's order with reasons and estimated starts (summaries)."""
    loop = hub.loop

    def snapshot() -> tuple[list[tuple[int, str, str]], list[QueueEntry]]:
        running = sorted(loop.state.running.values(), key=lambda r: r.last_start_s)
        runs = [(r.job_id, r.spec.tenant, r.spec.project) for r in running]
        entries = queue_view(loop.state, loop.clock())
        specs = {e.job_id: loop.state.jobs[e.job_id].spec for e in entries}
        return runs + [(e.job_id, specs[e.job_id].tenant, specs[e.job_id].project) for e in entries], entries

    order, entries = loop.call(snapshot)
    by_id = {e.job_id: e for e in entries}
    mine = [jid for jid, tenant, proj in order if (who.is_hub_admin or tenant == who.org) and proj == (project or proj)]
    page = mine[offset : offset + limit]
    with hub.store.read() as conn:
        rows = job_repo.jobs_by_id(conn, page)
    items = [job_view(rows[j], hub.fleet.node_names, entry=by_id.get(j), summary=True) for j in page if j in rows]
    return m.JobPage(items=items, total=len(mine), limit=limit, offset=offset)


@router.get("/nodes", response_model=list[m.Node])
def nodes(hub: HubDep, who: Who) -> list[m.Node]:
    """Nodes with their free GPUs (of every job) and the running jobs the caller may see (another
    organisation's job ids are hidden, as everywhere else; hub-admins see all)."""

    def snapshot() -> tuple[list[Any], dict[int, str]]:
        running = hub.loop.state.running
        return nodes_view(hub.loop.state), {j: rec.spec.tenant for j, rec in running.items()}

    views, tenant = hub.loop.call(snapshot)
    return [
        m.Node(name=v.name, gpu_type=v.gpu_type, gpus=v.gpus, free=v.free,
               jobs=[j for j in v.jobs if who.is_hub_admin or tenant.get(j) == who.org])
        for v in views
    ]  # fmt: skip


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
