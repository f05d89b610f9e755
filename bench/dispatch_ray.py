"""Dispatch to Ray: how fast a real hub (``steppe serve --executor ray``) gets jobs running in a Ray cluster.

Starts a throwaway Ray head (``scripts/ray_throwaway.py``: loopback, declared GPUs) and a hub
in single-user mode driving it, then measures through the SDK and Ray's Job API:

* **submit-to-start latency** on an idle hub: one job at a time, from the SDK's submit to the
  first moment Ray's job table says ``RUNNING`` (target < 3 s);
* **jobs/s**: a burst of short one-GPU jobs, from the first submit until every one has run
  in Ray (``RUNNING`` or ended), GPUs freed and reused as jobs end;
* **hub CPU per dispatched job**: the hub process's user+system CPU time over the burst, per job.

Example::

    python bench/dispatch_ray.py --jobs 40 --latency-samples 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from free_ports import free_ports  # noqa: E402
from ray_throwaway import throwaway_ray  # noqa: E402

from steppe.client import HubClient  # noqa: E402
from steppe.client import models as m  # noqa: E402

ENTRY = "from steppe.cli.main import main; main()"


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ray_states(api: str) -> dict[str, str]:
    """Steppe job id -> Ray status, for the jobs a hub submitted (claims excluded)."""
    jobs = httpx.get(f"{api}/api/jobs/", timeout=30).json()
    return {j["metadata"]["steppe_job"]: j["status"] for j in jobs if (j.get("metadata") or {}).get("steppe_job")}


def start_hub(api: str, gpus: int, data: Path) -> tuple[subprocess.Popen[bytes], HubClient, str]:
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-c", ENTRY, "serve", "--port", str(port), "--data-dir", str(data), "--gpus", str(gpus),
           "--gpu-type", "H200", "--no-review-gate", "--single-user", "--executor", "ray",
           "--executor-opt", f"address={api}", "--executor-opt", "poll_s=0.2"]  # fmt: skip
    log = open(data.parent / "hub.log", "ab")  # noqa: SIM115 (open for the hub's lifetime)
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise SystemExit(f"the hub did not answer: see {data.parent / 'hub.log'}")
    root = HubClient(url, (data / "admin-token").read_text().strip())
    root.create_org("bench", "KZ")
    root.create_project("bench", "p")
    root.add_member("bench", "bench-user", "member")
    return proc, HubClient(url, root.create_token("bench-user").token), "bench/p"


def wait_ran(api: str, ids: set[str], timeout_s: float) -> dict[str, float]:
    """When each job was first seen RUNNING or ended in Ray."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    while len(seen) < len(ids) and time.monotonic() < deadline:
        now = time.monotonic()
        for job, status in ray_states(api).items():
            if job in ids and job not in seen and status != "PENDING":
                seen[job] = now
        time.sleep(0.05)
    return seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--jobs", type=int, default=40, help="jobs in the burst (default 40)")
    ap.add_argument("--latency-samples", type=int, default=5, help="jobs run one at a time for latency (default 5)")
    ap.add_argument("--gpus", type=int, default=8, help="GPUs the head and the hub declare (default 8)")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="steppe-bench-ray-"))
    base.chmod(0o711)  # a hub running as root wants its spool reachable by job accounts
    t0 = time.monotonic()
    with throwaway_ray(args.gpus, "H200") as head:
        print(f"Ray head ready in {time.monotonic() - t0:.1f} s ({head.job_api})", flush=True)
        hub, client, project = start_hub(head.job_api, args.gpus, base / "data")
        try:
            latencies = []
            for _ in range(args.latency_samples):
                began = time.monotonic()
                job = client.submit(m.JobSubmit(project=project, gpus=1, argv=["/bin/sh", "-c", "exit 0"]))
                seen = wait_ran(head.job_api, {str(job.id)}, 60)
                latencies.append(seen[str(job.id)] - began)
                client.wait(job.id, timeout_s=60)
            cpu0, began = cpu_s(hub.pid), time.monotonic()
            ids = {str(client.submit(m.JobSubmit(project=project, gpus=1, argv=["/bin/true"])).id)
                   for _ in range(args.jobs)}  # fmt: skip
            seen = wait_ran(head.job_api, ids, 600)
            elapsed = max(seen.values()) - began
            cpu = cpu_s(hub.pid) - cpu0
        finally:
            hub.terminate()
            hub.wait(30)
            shutil.rmtree(base, ignore_errors=True)
    print(f"submit-to-start latency (idle hub, {len(latencies)} jobs): median {statistics.median(latencies):.2f} s, "
          f"max {max(latencies):.2f} s (target < 3 s)")  # fmt: skip
    print(f"burst of {args.jobs} one-GPU jobs on {args.gpus} GPUs: {len(seen)} ran in {elapsed:.1f} s = "
          f"{len(seen) / elapsed:.2f} jobs/s")  # fmt: skip
    print(f"hub CPU: {cpu:.2f} s over the burst = {1000 * cpu / max(len(seen), 1):.0f} ms per dispatched job")


if __name__ == "__main__":
    main()
