"""Fixtures of the Ray executor's tests: one throwaway Ray head for the session (``scripts/ray_throwaway.py``).

The head declares 8 H200 GPUs (Ray hands out declared GPUs; none are needed) and a custom
resource ``gpu_type:H200`` per GPU. It is killed, with every process it started, and its temp
dir deleted at the end of the session whatever happens; a head that cannot start fails the
tests (never skips them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from ray_throwaway import RayHead, RayUnavailable  # noqa: E402

HEAD_GPUS = 8


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """A running throwaway Ray head (8 declared H200 GPUs) shared by the session."""
    head = RayHead(HEAD_GPUS, "H200")
    try:
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
