"""Checks on a submission that the request's schema cannot make, each an ``Invalid`` (422) naming the field.

* ``gpu_type`` and ``gpus``: the submission gate the twin also asks (``scheduling/gate.py``):
  the hub must have GPUs of that type and the project's current allocation must allow it (with
  one allowed type and none asked, the job gets that type); at most the largest pool of the type
  (a gang spans nodes of one type), the allocation's ``max_gpus`` and the organisation's
  ``gpu_quota`` (such a job could never start). Every refusal is listed, each naming its field;
* ``walltime_s``: at most the hub's maximum; ``gpus`` x ``walltime_s`` at most what is left of the
  project's GPU-hours for the period (else it could never start: ``AssocGrpGRESMinutes`` at
  submit); ``qos``: a QOS the hub defines;
* ``workdir``, ``output``, ``error``: confined to the submitter's own directories: the job's
  own directory ``<data-dir>/spool/%j`` (the default working directory; ``%j`` is the job id)
  or the home directory of the Unix account the user's jobs run as, when it has one. Paths are
  absolute or relative to ``workdir``; no ``..``. Whether they exist, and whether the account
  may write them, is decided at launch, as that account, with no symlink followed (a failure
  ends the job ``LaunchFailed`` with the reason), never by the hub at submission;
* ``dependency``: every job it names is one of the organisation's (it is then held with
  ``Dependency`` until it is met; ``DependencyNeverSatisfied`` once it cannot be);
* ``env``: variable names only, and not the ones the hub sets itself (``STEPPE_*``,
  ``CUDA_VISIBLE_DEVICES``, ``SLURM_JOB_ID`` and the other ``SLURM_*`` it sets: ``HUB_SET_ENV``);
* ``submit_dir``: the directory the job was submitted from, on the submitter's machine (the
  job's ``SLURM_SUBMIT_DIR``): absolute, stored normalised; no ``..``. It is a name only: the hub
  neither reads nor writes it.
"""

from __future__ import annotations

import functools
import posixpath
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steppe.app.errors import Invalid
from steppe.client.models import HUB_SET_ENV, JobSubmit
from steppe.core.cluster import Cluster
from steppe.core.dependency import parse_dependency
from steppe.core.job import WorkloadClass
from steppe.scheduling.gate import PowerCeiling, Refusal, SubmissionGate, default_gpu_type
from steppe.store import jobs as job_repo

if TYPE_CHECKING:
    from steppe.app.hub import Hub

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def validate_submission(
    hub: Hub, body: JobSubmit, project: Any, now: float, user_id: int = 0, user: str = ""
) -> dict[str, Any]:
    """The job row's values for a valid submission; raises ``Invalid`` naming the first bad field."""
    cluster = hub.fleet.cluster
    gpu_type = body.gpu_type.upper() if body.gpu_type else None
    grant = next((a for a in hub.grants(project.id) if a.start_s <= now < a.end_s), None)
    allowed = list(grant.gpu_types) if grant is not None and grant.gpu_types else None
    gpu_type = default_gpu_type(gpu_type, allowed)
    refused = _gate(cluster, hub.power_ceiling).refusals(
        body.gpus, gpu_type, project.org, allowed_types=allowed, project=body.project, qos=body.qos,
        workload=WorkloadClass(body.workload),
        max_gpus=grant.max_gpus if grant is not None else None,
    )  # fmt: skip
    if refused:
        raise _refusal_problem(refused)
    if grant is not None:
        _fits_balance(hub, body, now)
    if body.walltime_s > hub.settings.max_walltime_s:
        raise Invalid.field("walltime_s", f"at most {hub.settings.max_walltime_s:.0f} s on this hub")
    if body.qos not in cluster.qos:
        raise Invalid.field("qos", f"unknown QOS {body.qos!r}; valid: {', '.join(sorted(cluster.qos))}")
    job_dir = _job_dir(hub.settings.data_dir)
    account = hub.accounts.account(user_id, user)
    roots = [job_dir] + ([str(account.home)] if account.home is not None else [])
    workdir = job_dir
    if body.workdir:
        if not body.workdir.startswith("/"):
            raise Invalid.field("workdir", f"must be an absolute path, e.g. {job_dir}")
        workdir = _confined("workdir", body.workdir, roots)
    paths = {}
    for name, given in (("output", body.output), ("error", body.error)):
        default = f"{job_dir}/{'stdout' if name == 'output' else 'stderr'}"
        if not given:
            paths[name] = default
            continue
        paths[name] = _confined(name, given if given.startswith("/") else f"{workdir}/{given}", roots)
    for key in body.env:
        if not _ENV_NAME.match(key):
            raise Invalid.field(f"env.{key}", "not a valid environment variable name")
        if key.startswith("STEPPE_") or key in HUB_SET_ENV:
            raise Invalid.field(f"env.{key}", "set by the hub; it cannot be overridden")
    return {
        "project_id": project.id, "name": body.name or _default_name(body), "argv": body.argv, "script": body.script,
        "workdir": workdir, "env": body.env, "gpus": body.gpus, "gpu_type": gpu_type, "walltime_s": body.walltime_s,
        "qos": body.qos, "workload": body.workload, "submit_s": now, "stdout_path": paths["output"],
        "stderr_path": paths["error"], "submit_dir": _submit_dir(body.submit_dir),
        "dependency": _dependency(hub, body, project), "begin_s": body.begin_s,
    }  # fmt: skip


def _dependency(hub: Hub, body: JobSubmit, project: Any) -> list[list[Any]] | None:
    """The parsed dependency as stored; every job it names must be one of the submitter's
    organisation's (another organisation's jobs do not exist for it, as everywhere else)."""
    if body.dependency is None:
        return None
    dep = parse_dependency(body.dependency)
    ids = sorted({j for kind, j in dep if kind != "singleton"})
    if ids:
        with hub.store.read() as conn:
            found = job_repo.jobs_by_id(conn, ids)
        missing = [j for j in ids if j not in found or found[j].org_id != project.org_id]
        if missing:
            raise Invalid.field(
                "dependency", f"no job {', '.join(map(str, missing))} in {project.org}; e.g. afterok:123 with "
                "a job id from steppe queue",
            )
    return [[kind, job_id] for kind, job_id in dep]


def _submit_dir(path: str | None) -> str | None:
    """The submit directory, normalised; ``Invalid`` unless it is absolute and free of ``..``.

    >>> _submit_dir("/home/alice//run/"), _submit_dir(None)
    ('/home/alice/run', None)
    """
    if path is None:
        return None
    if not path.startswith("/") or ".." in path.split("/"):
        raise Invalid.field("submit_dir", "must be an absolute path without '..', e.g. /home/alice/run")
    norm = posixpath.normpath(path)
    return "/" + norm.lstrip("/")


def _fits_balance(hub: Hub, body: JobSubmit, now: float) -> None:
    """Refuse a job whose GPUs x walltime exceed what is left of its project's GPU-hours for this
    period even with nothing of the project running (Slurm's ``AssocGrpGRESMinutes`` at submit); one
    that may fit once running jobs end is queued and held with a sentence (``GpuHoursCheck``)."""
    ledger = hub.loop.ledger
    grant = ledger.current(body.project, now)
    if grant is None:
        return
    need = body.gpus * body.walltime_s
    left = grant.gpu_seconds - ledger.used_in(body.project, grant)
    if need > left:
        raise Invalid.field(
            "walltime_s",
            f"{body.gpus} GPUs x {body.walltime_s / 3600:,.2f} h = {need / 3600:,.2f} GPU-hours, but {body.project} "
            f"has {max(left, 0.0) / 3600:,.2f} of its {grant.gpu_seconds / 3600:,.2f} GPU-hours for {grant.period} "
            f"left; ask for less time or fewer GPUs, e.g. --time {_hms(max(left, 0.0) / body.gpus)}",
        )


def _hms(seconds: float) -> str:
    """``HH:MM:SS`` rounded down to the minute (at least 00:01:00).

    >>> _hms(5430.0), _hms(10.0)
    ('01:30:00', '00:01:00')
    """
    minutes = max(int(seconds // 60), 1)
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


@functools.lru_cache(maxsize=8)
def _job_dir(data_dir: Path) -> str:
    """A job's own directory, ``<data-dir>/spool/%j`` (the same for every submission to a hub)."""
    return str(data_dir / "spool" / "%j")


def _confined(field: str, path: str, roots: list[str]) -> str:
    """``path`` (absolute) normalised, if it lies in one of ``roots``; else ``Invalid`` naming ``field``."""
    if ".." in path.split("/"):
        raise Invalid.field(field, f"'..' is not allowed in a job path; e.g. {roots[0]}/out.txt")
    norm = posixpath.normpath(path)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if not any(norm == root or norm.startswith(root + "/") for root in roots):
        where = " or ".join(roots)
        raise Invalid.field(field, f"{norm!r} is outside your own directories ({where}); e.g. {roots[0]}/out.txt")
    return norm


_GATES: list[tuple[Cluster, PowerCeiling | None, SubmissionGate]] = []


def _gate(cluster: Cluster, ceiling: PowerCeiling | None) -> SubmissionGate:
    """The submission gate of ``cluster`` and its power ceiling (neither changes while the hub runs)."""
    cached = _GATES[-1] if _GATES else None
    if cached is not None and cached[0] is cluster and cached[1] is ceiling:
        return cached[2]
    gate = SubmissionGate(cluster, ceiling)
    _GATES[:] = [(cluster, ceiling, gate)]
    return gate


def _refusal_problem(refused: list[Refusal]) -> Invalid:
    """One ``Invalid`` listing every reason the job could never start, each naming its field."""
    return Invalid([{"field": r.field, "message": r.message} for r in refused])


def _default_name(body: JobSubmit) -> str:
    if body.argv:
        return path_name(body.argv[0])[:128]
    return "script"


def path_name(path: str) -> str:
    """``Path(path).name`` without building a path: the last component that is neither empty nor ``.``.

    >>> path_name("/usr/bin/python3"), path_name("train.py/"), path_name("a/."), path_name("/"), path_name("..")
    ('python3', 'train.py', 'a', '', '..')
    """
    for part in reversed(path.split("/")):
        if part and part != ".":
            return part
    return ""
