"""Dispatch through the Slurm executor: Steppe's queue to running Slurm jobs; prints figures.

It starts a throwaway one-node Slurm cluster (``scripts/slurm_throwaway.py``) with as many fake
GPUs as jobs, an ordinary Unix account for the jobs (removed afterwards), and a real ``steppe
serve --executor slurm`` as root, then measures:

1. **Dispatch rate**: ``--jobs`` one-GPU jobs submitted at once (they all fit, so none waits for
   another to end); each job prints ``date +%s.%N`` as its first instruction. Jobs/s is the
   number of jobs over the time from the first submission to the last job's first instruction.
   The hub's CPU time per dispatched job (user + system of the ``steppe serve`` process over that
   run, from ``/proc``: the API, the scheduler loop, ``sbatch`` from the command thread and the
   poller's ``squeue``/``sinfo``) is the figure that depends least on how busy the machine is.
2. **Submit-to-start latency** on an idle hub: one job at a time, from ``POST /jobs`` to the
   job's first instruction on the Slurm node.

Usage: ``python bench/dispatch_slurm.py [--jobs 200] [--samples 15] [--poll-s 0.25]`` (as root).
Reference: Slurm's own ``sbatch`` alone, sequential, did 118 jobs/s on the 2-core machine the
figures were first taken on. Target: submit-to-start < 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))

from hub_bench import Server, _submit_many, setup_tenant  # noqa: E402
from slurm_throwaway import ThrowawaySlurm, throwaway_slurm  # noqa: E402

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")


def job_account() -> str:
    """A fresh ordinary account for the bench's jobs (Slurm needs a passwd entry)."""
    name = f"stp-bench-{os.getpid()}"
    subprocess.run(["useradd", "-M", "-U", "-s", "/usr/sbin/nologin", name], check=True, capture_output=True)
    return name


def start_hub(cluster: ThrowawaySlurm, data: Path, gpus: int, account: str, poll_s: float) -> Server:
    accounts = data.parent / "accounts.toml"
    accounts.write_text(f'[accounts]\nu = "{account}"\n')
    return Server(
        data, "--executor", "slurm", "--executor-opt", f"conf={cluster.conf}", "--executor-opt", f"poll_s={poll_s}",
        "--gpus", str(gpus), "--gpu-type", "H200", "--no-review-gate", "--accounts", str(accounts),
    )  # fmt: skip


def started_at(c: httpx.Client, job_ids: list[int], timeout_s: float) -> list[float]:
    """Each job's first instruction (it printed ``date +%s.%N``), once all have ended."""
    deadline = time.monotonic() + timeout_s
    for job_id in job_ids:
        while c.get(f"/api/v1/jobs/{job_id}").json()["state"] not in TERMINAL:
            if time.monotonic() > deadline:
                view = c.get(f"/api/v1/jobs/{job_id}").json()
                raise RuntimeError(f"job {job_id} did not end within {timeout_s:.0f} s: {view['state']} {view}")
            time.sleep(0.05)
    return [float(c.get(f"/api/v1/jobs/{j}/logs").json()["data"].split()[0]) for j in job_ids]


def bench_dispatch(server: Server, token: str, jobs: int) -> None:
    body = {"project": "bench/p", "argv": ["date", "+%s.%N"], "gpus": 1}
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
        before = {j["id"] for j in _all_jobs(c)}
        cpu0, t0 = server.cpu_s(), time.time()
        submit_s = asyncio.run(_submit_many(server.url, token, jobs, 4, body))
        ids = sorted(int(str(j["id"])) for j in _all_jobs(c) if j["id"] not in before)
        starts = started_at(c, ids, timeout_s=60 + jobs)
        cpu_ms = (server.cpu_s() - cpu0) * 1000.0 / jobs
    span = max(starts) - t0
    print(
        f"dispatch: {jobs / span:.1f} jobs/s from Steppe's queue to running in Slurm ({jobs} one-GPU jobs, "
        f"submitted in {submit_s:.2f} s, last started {span:.2f} s after the first submission); "
        f"hub CPU {cpu_ms:.1f} ms per dispatched job"
    )


def _all_jobs(c: httpx.Client) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    while True:
        page = c.get("/api/v1/jobs", params={"limit": 500, "offset": len(out)}).json()
        out += page["items"]
        if len(page["items"]) < 500:
            return out


def bench_latency(server: Server, token: str, samples: int) -> None:
    lat = []
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
        for _ in range(samples):
            t0 = time.time()
            job = c.post("/api/v1/jobs", json={"project": "bench/p", "argv": ["date", "+%s.%N"]}).json()
            lat.append(started_at(c, [job["id"]], timeout_s=60)[0] - t0)
    lat.sort()
    print(
        f"submit-to-start on an idle hub: median {statistics.median(lat) * 1000:.0f} ms, "
        f"max {lat[-1] * 1000:.0f} ms ({samples} jobs; target < 2 s)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=200, help="jobs in the dispatch run (and fake GPUs; default 200)")
    ap.add_argument("--samples", type=int, default=15, help="jobs in the latency run (default 15)")
    ap.add_argument("--poll-s", type=float, default=0.25, help="the executor's poll_s (default 0.25)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("dispatch_slurm.py runs slurmd and a hub that starts jobs as their users: run it as root")
    account = job_account()
    try:
        with (
            throwaway_slurm(gpus=args.jobs, cpus=args.jobs, install=False) as cluster,
            tempfile.TemporaryDirectory(dir="/tmp") as tmp,
        ):
            Path(tmp).chmod(0o711)
            server = start_hub(cluster, Path(tmp) / "data", args.jobs, account, args.poll_s)
            try:
                token = setup_tenant(server.url, server.admin)
                bench_latency(server, token, args.samples)
                bench_dispatch(server, token, args.jobs)
            finally:
                server.stop()
    finally:
        subprocess.run(["userdel", account], capture_output=True, check=False)


if __name__ == "__main__":
    main()
