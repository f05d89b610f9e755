"""The CLI as users and scripts call it: a real process, JSON output, clear errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"


CODE = "import sys; from steppe.cli.main import main; sys.argv[0] = 'steppe'; main()"


def steppe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CODE, *args], capture_output=True, text=True, timeout=300)


def test_simulate_json_has_the_script_keys(tmp_path: Path) -> None:
    out = tmp_path / "res"
    r = steppe("simulate", "--trace", "philly-sample", "--cluster", "4x8:H100", "--policy", "easy-backfill",
               "--limit", "300", "--json", "--out", str(out))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    for key in ("jobs", "mean_jct_s", "p99_jct_s", "mean_wait_s", "utilization", "makespan_s", "jain_index", "wall_s"):
        assert key in data
    assert data["jobs"] == 300 and data["policy"] == "easy-backfill"
    assert "walltime" in " ".join(data["trace_provenance"]["notes"])
    assert (out / "easy-backfill-jobs.csv").read_text().count("\n") == 301
    assert json.loads((out / "easy-backfill-summary.json").read_text())["tenants"]


def test_compare_json_keyed_by_policy_and_plot(tmp_path: Path) -> None:
    r = steppe("compare", "--trace", "philly-sample", "--cluster", "1x64:H100", "--policies", "fifo,las",
               "--limit", "200", "--json", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) == {"fifo", "las"} and data["las"]["jobs"] == 200
    assert (tmp_path / "compare.png").stat().st_size > 10_000


def test_simulate_table_output() -> None:
    r = steppe("simulate", "--trace", "philly-sample", "--cluster", "hub-sample", "--limit", "100")
    assert r.returncode == 0, r.stderr
    assert "mean JCT" in r.stdout and "Per tenant" in r.stdout


def test_swf_trace_from_shared() -> None:
    swf = SHARED / "kth-sp2" / "KTH-SP2-1996-2.1-cln.swf"
    r = steppe("simulate", "--trace", f"swf:{swf}", "--cluster", "1x100:GENERIC", "--policy", "easy-backfill",
               "--limit", "500", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["jobs"] == 500


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("simulate", "--trace", "philly:/nonexistent/philly.csv"), "/nonexistent/philly.csv"),
        (("simulate", "--trace", "philly-sample", "--policy", "round-robin"), "valid: easy-backfill"),
        (("simulate", "--trace", "philly-sample", "--cluster", "8x8:Q999"), "unknown GPU type"),
        (("simulate", "--trace", "nope:thing"), "unknown trace format"),
        (("compare", "--trace", "philly-sample", "--policies", "fifo,bogus"), "bogus"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_1(args: tuple[str, ...], message: str) -> None:
    r = steppe(*args)
    assert r.returncode == 1
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_trace_row_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-01 00:00:00,60,1,60,a\n"
                   "2017-10-01 00:01:00,sixty,1,60,a\n")
    r = steppe("simulate", "--trace", f"philly:{bad}")
    assert r.returncode == 1
    assert "bad.csv:3" in r.stderr and "duration" in r.stderr


def test_usage_error_exits_2() -> None:
    r = steppe("simulate", "--no-such-flag")
    assert r.returncode == 2


def test_submit_refuses_a_script_that_could_never_run_before_it_reaches_the_hub(tmp_path: Path) -> None:
    """A missing script used to be accepted and end with exit 127; a file that is not a batch script
    (no #!) or a directory is refused as sbatch refuses it. Each is one line, exit 1, and nothing is
    sent: no hub is configured here."""
    (tmp_path / "plain.sh").write_text("echo hi\n")
    (tmp_path / "jobs").mkdir()
    cases = {
        "missing.sh": "SCRIPT: missing.sh: no such file",
        "./run": "SCRIPT: ./run: no such file",
        "plain.sh": "first line must start with #!",
        "jobs/": "is a directory",
    }
    for arg, expected in cases.items():
        r = subprocess.run([sys.executable, "-c", CODE, "submit", arg], capture_output=True, text=True, timeout=120,
                           cwd=tmp_path, env={**os.environ, "STEPPE_CONFIG": str(tmp_path / "none.toml")})  # fmt: skip
        assert r.returncode == 1, (arg, r.stdout, r.stderr)
        assert expected in r.stderr and len(r.stderr.strip().splitlines()) == 1, (arg, r.stderr)
