"""Fixtures for the Slurm executor's tests: a throwaway Slurm cluster (``scripts/slurm_throwaway.py``:
munged, slurmctld and slurmd of one node with 8 fake H200 GPUs) and an ordinary Unix account for jobs.

Both are made once per session and removed whatever happens; a machine without Slurm fails the
tests (never skips them): ``make services`` installs it.
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

from slurm_throwaway import SlurmUnavailable, ThrowawaySlurm, throwaway_slurm  # noqa: E402


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
