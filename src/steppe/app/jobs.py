"""Job workflows: submit, cancel, and the jobs a caller may see.

**Submit** (``submit``): find the project (the caller's organisation's; another's is "no
project"), check the submission (``steppe.app.submission``: the submission gate, walltime, QOS,
paths, environment), the acceptable-use terms and the datasets, then write the job, its first
event and the loop's ``submit`` request in one transaction through the group-commit writer, hand
the committed row to the loop (``HubLoop.submitted``: its next step need not read it back) and
wake the loop. The scheduler's state is never touched here; the loop queues the job in its next
step. With an idempotency key, the same key and body from the same user return the first job
(``Submitted.replayed``); the same key with another body is a ``Conflict``. The request's digest
(``request_sha256``) is what a key is bound to: a job submitted without a key stores none.

Example: ``await submit(hub, alice, JobSubmit(project="kaznu/nlp", argv=["true"]), None)``
returns ``Submitted(job_id=17, row=..., replayed=False)``; the job is ``PENDING``/``Priority``
until the loop's next step gives it its reason.

**The queue** (``queue_selection``): the read model's running and pending jobs the caller may see
(their organisation's; a hub-admin's: all) that match every filter given, each a comma list as
``squeue`` takes them: projects (``-A``), users (``-u``), states by name or code (``-t PD,R``) and
job ids (``-j``). ``queue_selection(hub, alice, user="alice", state="PD")`` is alice's pending
jobs in the scheduler's order; a bad state or id is ``Invalid`` naming the field.

**Cancel** (``cancel``): the job's owner or an org-admin writes a ``cancel`` request and waits
(up to 5 s) for the loop's step that acts on it: a pending job ends at once, a running one is
stopped (SIGTERM, then SIGKILL after the grace period).

Both log a structured line (``steppe.api.logs``), with the request id of the HTTP request that
asked: ``job.submit`` (job, user, project, GPUs, walltime) once the job is stored, ``job.cancel``
(job, by whom) once the request is; the loop logs the transitions that follow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from steppe.app.errors import Conflict, Forbidden, Invalid, NotFound, TermsNotAccepted
from steppe.app.submission import validate_submission
from steppe.client import models as m
from steppe.control.views import PendingJob, RunningJob
from steppe.core.arrays import parse_array
from steppe.governance.residency import decide
from steppe.store import governance as gov_repo
from steppe.store import jobs as job_repo
from steppe.store import tenancy as tenancy_repo

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from steppe.app.auth import Principal
    from steppe.app.hub import Hub

log = logging.getLogger("steppe.jobs")
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"})


@dataclass(frozen=True)
class Submitted:
    """The outcome of a submission: the job's id, its row as the API shows it, and whether it is a replay."""

    job_id: int
    row: Any
    replayed: bool = False


def request_digest(body: m.JobSubmit) -> str:
    """The SHA-256 of the request's canonical JSON (what an idempotency key is bound to)."""
    return hashlib.sha256(json.dumps(body.model_dump(), sort_keys=True).encode()).hexdigest()


async def submit(hub: Hub, who: Principal, body: m.JobSubmit, idempotency_key: str | None) -> Submitted:
    """Check and store a new job, or find the first one of an idempotent retry; see the module docstring."""
    digest = None  # what an idempotency key is bound to; a job without a key needs none
    if idempotency_key is not None:
        digest = request_digest(body)
        found = replay(hub, who, idempotency_key, digest)
        if found is not None:
            return found
    now = time.time()
    org, _, name = body.project.partition("/")
    project = hub.project(org, name)
    if project is None or not who.sees_org(project.org_id):
        raise Invalid.field("project", f"no project {body.project!r}")
    values = validate_submission(hub, body, project, now, who.user_id, who.name)
    values.update(user_id=who.user_id, idempotency_key=idempotency_key, request_sha256=digest)
    terms = hub.terms_required(who.user_id, who.name)
    if terms is not None:
        raise TermsNotAccepted(terms)
    dataset_ids = _dataset_ids(hub, body.datasets)
    actor = who.name
    tasks, limit = parse_array(body.array) if body.array is not None else ((), 0)
    if tasks:
        values.update(array_task_id=tasks[0], array_count=len(tasks), array_limit=limit or None)
    task_ids: list[int] = []

    def write(conn: Connection) -> int:
        job_id = job_repo.insert_job(conn, values, actor)
        if dataset_ids:
            gov_repo.link_job_datasets(conn, job_id, dataset_ids)
        if tasks:  # an array: its first task's id is the array's; the others follow in one transaction
            job_repo.set_array_job(conn, job_id, job_id)
            task_ids[:] = [job_id]
            for task in tasks[1:]:
                more = job_repo.insert_job(conn, {**values, "array_job_id": job_id, "array_task_id": task}, actor)
                if dataset_ids:
                    gov_repo.link_job_datasets(conn, more, dataset_ids)
                task_ids.append(more)
        return job_id

    try:
        job_id: int = await hub.writes.run_soon(write)
    except IntegrityError:
        found = replay(hub, who, idempotency_key, digest) if idempotency_key is not None and digest else None
        if found is None:
            raise
        return found
    row = SimpleNamespace(**job_repo.NEW_JOB, **values, id=job_id, org=org, project_name=name, user=who.name)
    names = list(dict.fromkeys(body.datasets)) if dataset_ids else []
    if tasks:
        row.array_job_id = job_id
        for task_id, task in zip(task_ids[1:], tasks[1:], strict=True):
            hub.loop.submitted(SimpleNamespace(**{**vars(row), "id": task_id, "array_task_id": task}), names)
    hub.loop.submitted(row, names)  # the row, not re-read
    hub.loop.wake()
    log.info("job %d submitted by %s to %s", job_id, actor, body.project,
             extra={"fields": {"event": "job.submit", "job_id": job_id, "user": actor, "project": body.project,
                               "gpus": values["gpus"], "walltime_s": values["walltime_s"]}})  # fmt: skip
    return Submitted(job_id, row)


def _dataset_ids(hub: Hub, names: list[str]) -> list[int]:
    """The registered datasets' ids; refused (``datasets``) when one is not registered, or when no
    site of the hub may process them all (such a job would wait ``DataResidency`` for ever)."""
    if not names:
        return []
    with hub.store.read() as conn:
        rows = gov_repo.list_datasets(conn)
    ids = {r.name: r.id for r in rows}
    unknown = [n for n in names if n not in ids]
    if unknown:
        raise Invalid.field("datasets", f"not registered: {', '.join(unknown)}")
    gov = hub.loop.governance
    registry = {r.name: gov_repo.dataset_of(r) for r in rows if r.name in names}
    denials: list[str] = []
    for site in gov.sites or (gov.site,):
        denied = [d for d in (decide(registry[n], site, gov.topology) for n in dict.fromkeys(names)) if not d.allowed]
        if not denied:
            break
        denials.append(f"{site}: {denied[0].reason}")
    else:
        raise Invalid.field(
            "datasets", "no site of this hub may ever process them (" + "; ".join(denials) + "); submit it to a hub "
            "at a site its data may reach, or ask the data owner to allow this jurisdiction",
        )
    return [ids[n] for n in dict.fromkeys(names)]


def replay(hub: Hub, who: Principal, key: str, digest: str) -> Submitted | None:
    """The job first submitted with ``key`` by ``who``, if any; ``Conflict`` if its body differed."""
    with hub.store.read() as conn:
        prior = job_repo.find_by_idempotency_key(conn, who.user_id, key)
        row = job_repo.get_job(conn, prior.id) if prior is not None else None
    if prior is None or row is None:
        return None
    if prior.request_sha256 != digest:
        raise Conflict(f"Idempotency-Key {key!r} was used for a different request (job {prior.id})")
    return Submitted(int(prior.id), row, replayed=True)


def visible_job(hub: Hub, who: Principal, job_id: int) -> Any:
    """The job's row, if ``who`` may see it (another organisation's job is ``NotFound``, as a missing one)."""
    if not 1 <= job_id <= m.MAX_INT:  # no such id can be stored
        raise NotFound(f"job {job_id}")
    with hub.store.read() as conn:
        row = job_repo.get_job(conn, job_id)
    if row is None or not who.sees_org(row.org_id):
        raise NotFound(f"job {job_id}")
    return row


def _items(text: str | None) -> set[str] | None:
    return {p.strip() for p in text.split(",") if p.strip()} if text else None


def queue_selection(
    hub: Hub,
    who: Principal,
    *,
    project: str | None = None,
    user: str | None = None,
    state: str | None = None,
    jobs: str | None = None,
) -> list[RunningJob | PendingJob]:
    """The queue's jobs ``who`` may see that match every filter, running first (see the module docstring)."""
    try:
        states = set(m.parse_states(state)) if state else None
    except ValueError as exc:
        raise Invalid.field("state", str(exc)) from None
    try:
        ids = set(m.parse_ids(jobs)) if jobs else None
    except ValueError as exc:
        raise Invalid.field("jobs", str(exc)) from None
    projects, users = _items(project), _items(user)
    listed = [j for j in hub.reads.model.listed if who.is_hub_admin or j.tenant == who.org]
    if projects is not None:
        listed = [j for j in listed if j.project in projects]
    if states is not None:
        listed = [j for j in listed if ("RUNNING" if isinstance(j, RunningJob) else "PENDING") in states]
    if ids is not None:
        listed = [j for j in listed if j.job_id in ids]
    if users is not None:
        theirs: set[int] = set()
        with hub.store.read() as conn:
            for name in users:
                row = tenancy_repo.get_user(conn, name)
                if row is not None:
                    found, _ = job_repo.list_jobs(conn, user_id=row.id, states=["PENDING", "RUNNING"], limit=m.MAX_INT)
                    theirs.update(r.id for r in found)
        listed = [j for j in listed if j.job_id in theirs]
    return listed


def cancel(hub: Hub, who: Principal, job_id: int) -> Any:
    """Ask the loop to cancel a job and wait for the step that does; returns the job's row after it."""
    row = visible_job(hub, who, job_id)
    if not who.acts_on_job(row.org_id, row.user_id):
        raise Forbidden("only the job's owner or an org-admin may cancel it")
    if row.state in TERMINAL:
        raise Conflict(f"job {job_id} has already ended ({row.state})")
    with hub.store.write() as conn:
        job_repo.add_request(conn, job_id, "cancel", who.name, time.time())
    log.info("job %d: cancel asked by %s", job_id, who.name,
             extra={"fields": {"event": "job.cancel", "job_id": job_id, "user": who.name, "state": row.state}})
    hub.loop.wake_and_wait(timeout=5.0)
    return visible_job(hub, who, job_id)
