"""Live hub benchmarks; prints figures.

1. Submissions per second through the HTTP API (a real ``steppe serve`` on loopback, SQLite and,
   with ``--postgres URL`` or ``--postgres auto``, PostgreSQL), ``--clients`` concurrent clients.
   It also reports the server's CPU time per submission (user + system time of the ``steppe
   serve`` process over the timed run, from ``/proc``), the figure that depends least on how
   busy the machine is, and how much of it the HTTP thread (the event loop) spent; the rest is
   the group-commit writer's and the scheduler loop's.
2. Scheduler step time with 10,000 pending jobs on 1,024 GPUs (128 x 8 H100), in process with a
   no-op executor: the first step (queues 10,000 jobs and starts as many as fit), then steps
   after one running job ends (a full cycle each), and cycles after a new submission.
3. Submit-to-start latency on an idle hub: from sending ``POST /jobs`` to the job's first
   instruction (the job prints ``date +%s.%N``).

Usage: ``python bench/hub_bench.py [--jobs 3000] [--clients 16] [--postgres auto|URL] [--skip-http]
[--only-submissions]``
Targets: >= 1,000 submissions/s on SQLite (16 clients, a quiet machine), <= 0.6 ms of server CPU per
submission, a cycle < 100 ms at 10,000 pending, submit-to-start < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A ``steppe serve`` subprocess on a free port and a temporary data directory."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-c",
            "from steppe.cli.main import main; main()",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
        ]
        self.proc = subprocess.Popen([*cmd, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"server did not start: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
        self.admin = (data_dir / "admin-token").read_text().strip()

    def cpu_s(self, task: str = "") -> float:
        """User + system CPU seconds the server process has used so far (Linux ``/proc``); with ``task``
        (``main``), those of its main thread only (the HTTP event loop)."""
        where = f"/proc/{self.proc.pid}" + (f"/task/{self.proc.pid}" if task == "main" else "")
        fields = Path(f"{where}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)


def kill_jobs(data_dir: Path) -> None:
    """End the process groups of jobs the bench's hub started (found by their handle files)."""
    for handle in data_dir.glob("jobs/*/handle.json"):
        pgid = int(json.loads(handle.read_text())["pgid"])
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def setup_tenant(url: str, admin: str) -> str:
    """An organisation, a project and a member; returns the member's token."""
    h = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=url, headers=h) as c:
        c.post("/api/v1/orgs", json={"name": "bench", "country": "KZ"}).raise_for_status()
        c.post("/api/v1/orgs/bench/projects", json={"name": "p"}).raise_for_status()
        c.post("/api/v1/orgs/bench/members", json={"name": "u"}).raise_for_status()
        return str(c.post("/api/v1/users/u/tokens", json={}).json()["token"])


async def _submit_many(url: str, token: str, n: int, clients: int, body: dict[str, Any]) -> float:
    """``n`` submissions over ``clients`` keep-alive connections; returns the seconds taken.

    A minimal HTTP/1.1 client on asyncio streams: httpx's async client itself tops out near
    300 requests/s on a 2-core machine (measured against ``/healthz``), which would measure the
    client, not the hub.
    """
    host, port = url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    request = (
        f"POST /api/v1/jobs HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    counter = iter(range(n))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        for _ in counter:
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            answer = await reader.readexactly(length)
            if b" 201 " not in status:
                raise RuntimeError(f"submit failed: {status!r} {answer[:300]!r}")
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - t0


def bench_submissions(label: str, n: int, clients: int, extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), "--gpus", "1", "--gpu-type", "H100", "--grace", "1", *extra)
        try:
            token = setup_tenant(server.url, server.admin)
            body = {"project": "bench/p", "argv": ["sleep", "600"], "walltime_s": 600}
            asyncio.run(_submit_many(server.url, token, 50, clients, body))  # warm-up
            cpu0, http0 = server.cpu_s(), server.cpu_s("main")
            elapsed = asyncio.run(_submit_many(server.url, token, n, clients, body))
            cpu_ms = (server.cpu_s() - cpu0) * 1000.0 / n
            http_ms = (server.cpu_s("main") - http0) * 1000.0 / n
            rate = n / elapsed
            print(
                f"submissions/s via HTTP ({label}, {clients} clients): {rate:,.0f}  ({n} jobs in {elapsed:.2f} s); "
                f"server CPU {cpu_ms:.2f} ms per submission ({http_ms:.2f} in the HTTP thread, "
                f"{cpu_ms - http_ms:.2f} in the writer and the scheduler loop)"
            )
        finally:
            server.stop()
            kill_jobs(Path(tmp))


def bench_latency(samples: int = 15) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # an ungated hub: this measures scheduling and process start, not the AI-use review
        server = Server(Path(tmp), "--gpus", "1", "--gpu-type", "H100", "--no-review-gate")
        try:
            token = setup_tenant(server.url, server.admin)
            lat = []
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
                for _ in range(samples):
                    t0 = time.time()
                    job = c.post("/api/v1/jobs", json={"project": "bench/p", "argv": ["date", "+%s.%N"]}).json()
                    while c.get(f"/api/v1/jobs/{job['id']}").json()["state"] in ("PENDING", "RUNNING"):
                        time.sleep(0.02)
                    started = float(c.get(f"/api/v1/jobs/{job['id']}/logs").json()["data"].strip())
                    lat.append(started - t0)
            lat.sort()
            print(
                f"submit-to-start on an idle hub: median {statistics.median(lat) * 1000:.0f} ms, "
                f"max {lat[-1] * 1000:.0f} ms ({samples} jobs)"
            )
        finally:
            server.stop()


def bench_cycle(pending: int = 10_000) -> None:
    from steppe.control.loop import HubLoop
    from steppe.control.machine import Fleet
    from steppe.core.cluster import Cluster
    from steppe.executors.local import ExitInfo
    from steppe.store import jobs as job_repo
    from steppe.store import open_store, tenancy
    from steppe.store.db import sqlite_url

    class NullExecutor:
        def bind(self, on_exit: Any, launch_of: Any) -> None:
            self.on_exit = on_exit

        def start(self, rec: Any, now: float) -> None: ...
        def stop(self, rec: Any, now: float) -> None: ...
        def adopt(self, rec: Any, handle: Any) -> bool:
            return True

        def handle_on_disk(self, job_id: int) -> None:
            return None

        def outcome(self, job_id: int) -> None:
            return None

        def take_launched(self) -> dict[int, Any]:
            return {}

        def close(self) -> None: ...

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(sqlite_url(Path(tmp) / "b.db"))
        now = time.time()
        with store.write() as conn:
            org = tenancy.create_org(conn, "bench", "KZ", now)
            pid = tenancy.create_project(conn, org, "p", now)
            uid = tenancy.create_user(conn, "u", org, "member", now)
            for i in range(pending):
                gpus = (1, 2, 4, 8, 16)[i % 5]
                values = {
                    "project_id": pid, "user_id": uid, "name": f"j{i}", "argv": ["true"], "script": None,
                    "workdir": tmp, "env": {}, "gpus": gpus, "gpu_type": None, "walltime_s": 600.0 + i % 7 * 300,
                    "qos": "normal", "submit_s": now + i * 1e-3, "stdout_path": "", "stderr_path": "",
                }  # fmt: skip
                job_repo.insert_job(conn, values, "u")
        cluster = Cluster.uniform(128, 8, "H100")
        fleet = Fleet(cluster, {n.index: list(range(8)) for n in cluster.nodes}, "bench")
        executor = NullExecutor()
        loop = HubLoop(store, fleet, executor)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        loop.restore()  # queues the 10,000 pending jobs from the store
        print(f"restore {pending:,} pending jobs from the store (as on a restart): {time.perf_counter() - t0:.2f} s")
        t0 = time.perf_counter()
        loop.step()
        first = time.perf_counter() - t0
        print(
            f"first step: {first * 1000:.0f} ms, started {len(loop.state.running)} jobs, "
            f"{len(loop.state.queue)} still pending on {cluster.total_gpus} GPUs"
        )
        full = []
        for _ in range(30):
            rec = next(iter(loop.state.running.values()))
            executor.on_exit(rec.job_id, rec.epoch, ExitInfo(0, 0, time.time()))
            t0 = time.perf_counter()
            loop.step()
            full.append(time.perf_counter() - t0)
        print(
            f"scheduler step after a job ends ({len(loop.state.queue)} pending, full cycle incl. store writes): "
            f"median {statistics.median(full) * 1000:.1f} ms, max {max(full) * 1000:.1f} ms"
        )
        sched = []
        for _ in range(30):
            t0 = time.perf_counter()
            loop.policy.schedule(loop.state, time.time())
            sched.append(time.perf_counter() - t0)
        print(f"policy cycle alone (memoised, nothing changed): median {statistics.median(sched) * 1000:.2f} ms")
        store.close()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main() -> None:
    ap = argparse.ArgumentParser(
        prog="hub_bench.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--jobs", type=_positive, default=3000, help="submissions per store (default 3000)")
    ap.add_argument("--clients", type=_positive, default=16, help="concurrent HTTP clients (default 16)")
    ap.add_argument(
        "--postgres",
        metavar="auto|URL",
        help="also PostgreSQL: auto (a throwaway server, scripts/pg_throwaway.py) or a URL",
    )
    ap.add_argument("--skip-http", action="store_true", help="run only part 2, the in-process scheduler step")
    ap.add_argument("--only-submissions", action="store_true", help="run only part 1, submissions through HTTP")
    args = ap.parse_args()
    os.environ.pop("STEPPE_TOKEN", None)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if not args.only_submissions:
        bench_cycle()
    if args.skip_http:
        return
    bench_submissions("SQLite", args.jobs, args.clients, [])
    if args.postgres:
        sys.path.insert(0, str(ROOT / "scripts"))
        from pg_throwaway import throwaway_postgres

        if args.postgres == "auto":
            with throwaway_postgres(fast=False) as url:
                bench_submissions("PostgreSQL", args.jobs, args.clients, ["--db", url])
        else:
            bench_submissions("PostgreSQL", args.jobs, args.clients, ["--db", args.postgres])
    if not args.only_submissions:
        bench_latency()


if __name__ == "__main__":
    main()
