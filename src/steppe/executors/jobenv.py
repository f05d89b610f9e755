"""The variables the hub sets in every job, whatever engine runs it: Steppe's and Slurm's.

A job finds ``STEPPE_*`` (``steppe_variables``) and, so that batch scripts written for Slurm run
unchanged, the ``SLURM_*`` variables sbatch sets, with Slurm's meaning (``slurm_variables``):

=========================================  ==================================================
``SLURM_JOB_ID``, ``SLURM_JOB_NAME``       the job's id and name
``SLURM_JOB_NODELIST``, ``SLURM_NODELIST``  its nodes, comma-separated (a valid hostlist)
``SLURM_JOB_NUM_NODES``, ``SLURM_NNODES``   how many nodes
``SLURM_SUBMIT_DIR``                       where its user submitted it (else its working directory)
``SLURM_JOB_ACCOUNT``, ``SLURM_JOB_USER``  its project (``org/project``) and user
``SLURM_JOB_PARTITION``                    the site it runs at, or ``steppe`` in a hub without sites
``SLURM_CLUSTER_NAME``                     ``steppe``
``SLURM_GPUS``                             its GPUs in all
``SLURM_GPUS_ON_NODE``, ``SLURM_JOB_GPUS``  GPUs on the first node (where the batch script runs)
                                           and their device indices (when the executor knows them)
``SLURM_NTASKS``                           1 (one batch task)
``SLURM_CPUS_PER_TASK``                    the cores it asked for, when known
``SLURM_ARRAY_JOB_ID``, ``_TASK_ID``,      a task of an array: the array's id, its index and the
``SLURM_ARRAY_TASK_COUNT``                 array's tasks (also ``STEPPE_ARRAY_JOB_ID``, ``_TASK_ID``)
=========================================  ==================================================

Each executor sets them after the job's own variables, so a job cannot override them (the hub
refuses them at submission: ``client.models.HUB_SET_ENV``). An engine that sets Slurm's variables
itself (the Slurm executor: Slurm's job id is its own) takes only ``steppe_variables``.

>>> from steppe.core.job import JobSpec
>>> from steppe.core.records import JobRecord
>>> rec = JobRecord(JobSpec(42, 0.0, 4, 60.0, 60.0, "kaznu", "kaznu/nlp"), seq=1)
>>> rec.allocation, rec.gpu_type = ((0, 2), (1, 2)), "H100"
>>> launch = Launch(None, "#!/bin/sh", "/srv/spool/42", {}, "o", "e", "train", "kaznu/nlp", "alice",
...                 submit_dir="/home/alice/run")
>>> env = slurm_variables(rec, launch, ["node001", "node002"], gpu_ids=(0, 1))
>>> env["SLURM_JOB_NODELIST"], env["SLURM_NNODES"], env["SLURM_GPUS"], env["SLURM_GPUS_ON_NODE"], env["SLURM_JOB_GPUS"]
('node001,node002', '2', '4', '2', '0,1')
>>> env["SLURM_SUBMIT_DIR"], env["SLURM_JOB_PARTITION"], env["SLURM_NTASKS"], "SLURM_CPUS_PER_TASK" in env
('/home/alice/run', 'steppe', '1', False)
"""

from __future__ import annotations

from collections.abc import Sequence

from steppe.core.records import JobRecord
from steppe.executors.base import Launch

CLUSTER_NAME = "steppe"
"""``SLURM_CLUSTER_NAME``, and ``SLURM_JOB_PARTITION`` in a hub without sites."""


def steppe_variables(rec: JobRecord, launch: Launch, nodes: Sequence[str]) -> dict[str, str]:
    """``STEPPE_JOB_ID``, ``STEPPE_JOB_NAME``, ``STEPPE_PROJECT``, ``STEPPE_USER``, ``STEPPE_GPUS``,
    ``STEPPE_GPU_TYPE`` and ``STEPPE_NODELIST``."""
    return {
        "STEPPE_JOB_ID": str(rec.job_id), "STEPPE_JOB_NAME": launch.name, "STEPPE_PROJECT": launch.project,
        "STEPPE_USER": launch.user, "STEPPE_GPUS": str(rec.gpus), "STEPPE_GPU_TYPE": rec.gpu_type,
        "STEPPE_NODELIST": ",".join(nodes),
        **(
            {"STEPPE_ARRAY_JOB_ID": str(launch.array[0]), "STEPPE_ARRAY_TASK_ID": str(launch.array[1])}
            if launch.array is not None else {}
        ),
    }  # fmt: skip


def slurm_variables(
    rec: JobRecord, launch: Launch, nodes: Sequence[str], gpu_ids: Sequence[int] = (),
    cpus_per_task: int | None = None,
) -> dict[str, str]:  # fmt: skip
    """Slurm's variables for the job on ``nodes`` (see the module docstring); ``gpu_ids``: the device
    indices of its GPUs on the first node, when the executor chose them."""
    nodelist = ",".join(nodes)
    env = {
        "SLURM_JOB_ID": str(rec.job_id), "SLURM_JOB_NAME": launch.name, "SLURM_JOB_NODELIST": nodelist,
        "SLURM_NODELIST": nodelist, "SLURM_JOB_NUM_NODES": str(len(nodes)), "SLURM_NNODES": str(len(nodes)),
        "SLURM_SUBMIT_DIR": launch.submit_dir or launch.workdir, "SLURM_JOB_ACCOUNT": launch.project,
        "SLURM_JOB_USER": launch.user, "SLURM_JOB_PARTITION": rec.site or CLUSTER_NAME,
        "SLURM_CLUSTER_NAME": CLUSTER_NAME, "SLURM_GPUS": str(rec.gpus),
        "SLURM_GPUS_ON_NODE": str(rec.allocation[0][1] if rec.allocation else rec.gpus), "SLURM_NTASKS": "1",
    }  # fmt: skip
    if gpu_ids:
        env["SLURM_JOB_GPUS"] = ",".join(str(d) for d in gpu_ids)
    if cpus_per_task is not None:
        env["SLURM_CPUS_PER_TASK"] = str(cpus_per_task)
    if launch.array is not None:  # a task of an array (sbatch --array)
        array_id, task, count = launch.array
        env.update(SLURM_ARRAY_JOB_ID=str(array_id), SLURM_ARRAY_TASK_ID=str(task),
                   SLURM_ARRAY_TASK_COUNT=str(count))  # fmt: skip
    return env


def job_variables(
    rec: JobRecord, launch: Launch, nodes: Sequence[str], gpu_ids: Sequence[int] = (),
    cpus_per_task: int | None = None,
) -> dict[str, str]:  # fmt: skip
    """``steppe_variables`` and ``slurm_variables`` together: what a job gets from an engine that sets neither."""
    return {**steppe_variables(rec, launch, nodes), **slurm_variables(rec, launch, nodes, gpu_ids, cpus_per_task)}
