"""From a store row to the scheduler's ``JobSpec`` and the executor's ``Launch``.

The live hub does not know true run times, so ``runtime_s`` is the walltime limit; the tenant
is the organisation and the project is ``org/project``; the job id is the row's id.
"""

from __future__ import annotations

from typing import Any

from steppe.core.job import JobSpec, WorkloadClass
from steppe.executors.base import Launch


def resolve(template: str, job_id: int) -> str:
    """A path as stored (``%j`` stands for the job id, as in sbatch's ``--output``) for one job."""
    return template.replace("%j", str(job_id))


def project_key(row: Any) -> str:
    return f"{row.org}/{row.project_name}"


def spec_from_row(row: Any) -> JobSpec:
    return JobSpec(
        job_id=row.id,
        submit_s=row.submit_s,
        gpus=row.gpus,
        runtime_s=row.walltime_s,
        walltime_s=row.walltime_s,
        tenant=row.org,
        project=project_key(row),
        gpu_type=row.gpu_type,
        qos=row.qos,
        workload=WorkloadClass(getattr(row, "workload", None) or "training"),
        name=row.name,
        user=row.user,
        dependency=tuple((str(k), int(j)) for k, j in (getattr(row, "dependency", None) or ())),
        begin_s=getattr(row, "begin_s", None),
        array_job=getattr(row, "array_job_id", None) or 0,
        array_task=_or(getattr(row, "array_task_id", None), -1),
        array_limit=getattr(row, "array_limit", None) or 0,
    )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def launch_from_row(row: Any) -> Launch:
    return Launch(
        argv=list(row.argv) if row.argv is not None else None,
        script=row.script,
        workdir=resolve(row.workdir, row.id),
        env=dict(row.env or {}),
        stdout_path=resolve(row.stdout_path, row.id),
        stderr_path=resolve(row.stderr_path, row.id),
        name=row.name,
        project=project_key(row),
        user=row.user,
        user_id=row.user_id,
        submit_dir=getattr(row, "submit_dir", None),
        array=_array(row),
    )


def _array(row: Any) -> tuple[int, int, int] | None:
    """``(array id, task index, tasks)`` of an array task's row, else None."""
    array_id = getattr(row, "array_job_id", None)
    if array_id is None:
        return None
    return int(array_id), int(row.array_task_id), int(row.array_count or 0)
