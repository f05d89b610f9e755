"""Fixtures for the engines' tests: a throwaway Slurm cluster (``scripts/slurm_throwaway.py``:
munged, slurmctld and slurmd of one node with 8 fake H200 GPUs), an ordinary Unix account for jobs,
and a throwaway Ray head (``scripts/ray_throwaway.py``: 8 declared H200 GPUs and a custom resource
``gpu_type:H200`` per GPU; Ray hands out declared GPUs, none are needed).

Each is made once per session, when a test first needs it, and removed whatever happens (the Ray
head with every process it started); a machine without Slurm or Ray fails the tests (never skips
them): ``make`` installs Ray, ``make services`` Slurm.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "hub"))  # hubtest: the hub process helpers
sys.path.insert(0, str(ROOT / "scripts"))

from ray_throwaway import RayHead, RayUnavailable  # noqa: E402
from slurm_throwaway import SlurmUnavailable, ThrowawaySlurm, throwaway_slurm  # noqa: E402

HEAD_GPUS = 8


@pytest.fixture(scope="session")
def slurm() -> Iterator[ThrowawaySlurm]:
    """A running one-node Slurm cluster; fails (never skips) if Slurm is missing or does not start."""
    try:
        with throwaway_slurm(gpus=8, gpu_type="h200", install=False) as cluster:
            yield cluster
    except SlurmUnavailable as exc:
        pytest.fail(f"the Slurm executor's tests need Slurm: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def job_account() -> Iterator[str]:
    """An ordinary Unix account for the jobs (Slurm runs jobs only as accounts with a passwd entry)."""
    name = f"stp-slurm-{os.getpid()}"
    made = subprocess.run(["useradd", "-M", "-U", "-s", "/usr/sbin/nologin", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.fail(f"useradd {name} failed: {made.stderr.strip()}", pytrace=False)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """A running throwaway Ray head (8 declared H200 GPUs) shared by the session. A start that fails
    is tried once more on new ports (another process may take a chosen port before Ray binds it)."""
    head = RayHead(HEAD_GPUS, "H200")
    try:
        try:
            head.start()
        except RayUnavailable:
            head.close()
            head = RayHead(HEAD_GPUS, "H200")
            try:
                head.start()
            except RayUnavailable as exc:
                pytest.fail(f"the Ray tests need a Ray head: {exc}", pytrace=False)
        yield head
    finally:
        head.close()


@pytest.fixture
def live_head(ray_head: RayHead) -> RayHead:
    """The session's head, started again if a test before left it stopped."""
    if ray_head.proc is None or not ray_head.answers():
        ray_head.stop()
        ray_head.start()
    return ray_head
