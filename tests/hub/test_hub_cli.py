"""The ``steppe`` CLI against a real hub: Slurm-like verbs, ``--json``, exit codes 0/1/2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hubtest import ENTRY, HubProcess, Tenant, wait_for


def steppe(
    *args: str, env: dict[str, str], cwd: Path | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", ENTRY, *args], env=env, cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def test_cli_round_trip(hub: HubProcess, tenants: dict[str, Tenant], tmp_path: Path) -> None:
    t = tenants["kaznu"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPPE_")}
    env["STEPPE_CONFIG"] = str(tmp_path / "config.toml")
    login = steppe("login", "--url", hub.url, env=env, stdin=t.member_token + "\n")
    assert login.returncode == 0 and "as kaznu-user (member, kaznu)" in login.stdout
    assert oct((tmp_path / "config.toml").stat().st_mode & 0o777) == "0o600"

    script = tmp_path / "train.sh"
    script.write_text(f"#!/bin/sh\n#STEPPE -J train --gpus=2\n#STEPPE -A {t.project} --time 00:05:00\n"
                      "echo gpus=$CUDA_VISIBLE_DEVICES name=$STEPPE_JOB_NAME\n")  # fmt: skip
    sub = steppe("submit", "--parsable", str(script), env=env, cwd=tmp_path)
    assert sub.returncode == 0, sub.stderr
    job_id = int(sub.stdout)
    wait_for(lambda: t.member.get_job(job_id).state == "COMPLETED", what="the script job")
    job = t.member.get_job(job_id)
    own = str(hub.data_dir / "spool" / str(job_id))  # the hub's filesystem is not the client's: its own directory
    assert (job.name, job.gpus, job.walltime_s, job.workdir) == ("train", 2, 300.0, own)
    logs = steppe("logs", "-f", str(job_id), env=env)
    assert logs.returncode == 0 and logs.stdout.startswith("gpus=") and "name=train" in logs.stdout

    long = steppe("submit", "-A", t.project, "-G", "4", "-t", "1-00:00:00", "-J", "long", "--", "sleep", "30",
                  env=env, cwd=tmp_path)  # fmt: skip
    assert long.returncode == 0 and long.stdout.startswith("Submitted batch job ")
    long_id = int(long.stdout.split()[-1])
    wait_for(lambda: t.member.get_job(long_id).state == "RUNNING", what="the long job")
    queue = json.loads(steppe("queue", "--json", env=env).stdout)
    assert any(j["id"] == long_id and j["state"] == "RUNNING" for j in queue)
    assert steppe("cancel", str(long_id), env=env).stdout == ""  # like scancel: silent on success
    wait_for(lambda: t.member.get_job(long_id).state == "CANCELLED", what="the cancel")
    history = json.loads(steppe("history", "-A", t.project, "--state", "COMPLETED,CANCELLED", "--json", env=env).stdout)
    assert {job_id, long_id} <= {j["id"] for j in history}

    missing = steppe("cancel", "999999", env=env)
    assert missing.returncode == 1 and "job 999999 not found" in missing.stderr
    bad_time = steppe("submit", "-A", t.project, "--time", "1:2:3:4", "--", "true", env=env)
    assert bad_time.returncode == 2 and "time limit" in bad_time.stderr
    denied = steppe("admin", "org", "create", "rogue", "--country", "KZ", env=env)
    assert denied.returncode == 1 and "hub-admin" in denied.stderr
