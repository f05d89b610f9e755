"""The benchmark scripts answer ``--help`` with their usage, without running anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", ["replay_bench.py", "hub_bench.py", "sweep_bench.py"])
def test_help_prints_usage(script: str) -> None:
    out = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: {script} ") and out.stderr == ""


def test_replay_bench_names_its_parts_on_a_bad_one() -> None:
    out = subprocess.run([sys.executable, str(BENCH / "replay_bench.py"), "nope"], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.returncode == 2 and "philly, scale, fidelity" in out.stderr
