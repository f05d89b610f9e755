"""Helpers for the live hub's tests: a ``steppe serve`` process, tenants, waiting."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from steppe.client import HubClient

ROOT = Path(__file__).resolve().parents[2]
ENTRY = "from steppe.cli.main import main; main()"
JOB_PY = "/usr/bin/python3"
"""The interpreter jobs run: the system's, which every job account may execute (the hub's own
interpreter may live under a directory only root can enter)."""
_ROOT: list[Path] = []


def searchable_root() -> Path:
    """A directory under /tmp that job accounts can pass through (0711), removed at exit.

    A hub running as root refuses a data directory whose parents others cannot search (its
    jobs could not reach their own directories), and pytest's temporary directories are 0700.
    """
    if not _ROOT:
        root = Path(tempfile.mkdtemp(prefix="steppe-hubs-", dir="/tmp"))
        root.chmod(0o711)
        atexit.register(shutil.rmtree, root, True)
        _ROOT.append(root)
    return _ROOT[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def current_quarter() -> str:
    now = datetime.now(UTC)
    return f"{now.year}-Q{(now.month - 1) // 3 + 1}"


class HubProcess:
    """A ``steppe serve`` subprocess; ``kill()`` is ``kill -9``, ``start()`` starts it again on the same data."""

    _made = itertools.count(1)

    def __init__(self, data_dir: Path, *options: str) -> None:
        self.data_dir = searchable_root() / f"{next(self._made)}-{data_dir.parent.name}-{data_dir.name}"
        self.options = options
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.clients: list[HubClient] = []
        self.log = self.data_dir.parent / f"{self.data_dir.name}-server.log"

    def start(self) -> HubProcess:
        cmd = [sys.executable, "-c", ENTRY, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEPPE_")}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([*cmd, *self.options], stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"hub did not answer: {self.log.read_text()[-2000:]}")

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def client(self, token: str | None = None) -> HubClient:
        """An SDK client (closed when the hub stops); the admin's unless ``token`` is given."""
        client = HubClient(self.url, token if token is not None else self.admin_token)
        self.clients.append(client)
        return client

    def kill(self) -> None:
        """``kill -9`` the server (its jobs, in their own sessions, live on)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill_jobs(self) -> None:
        """End every job process group this hub started (by the pids in their handle files)."""
        for handle in self.data_dir.glob("jobs/*/handle.json"):
            with contextlib.suppress(ProcessLookupError, PermissionError, ValueError, KeyError):
                os.killpg(int(json.loads(handle.read_text())["pgid"]), signal.SIGKILL)


@dataclass
class Tenant:
    """An organisation with a project, an org-admin and a member (each with an SDK client)."""

    org: str
    project: str
    admin: HubClient
    member: HubClient
    member_name: str
    member_token: str


def make_tenant(hub: HubProcess, org: str, project: str = "nlp") -> Tenant:
    root = hub.client()
    root.create_org(org, "KZ")
    root.create_project(org, project)
    root.add_member(org, f"{org}-admin", "org-admin")
    root.add_member(org, f"{org}-user", "member")
    admin = hub.client(root.create_token(f"{org}-admin").token)
    token = root.create_token(f"{org}-user").token
    return Tenant(org, f"{org}/{project}", admin, hub.client(token), f"{org}-user", token)


def wait_for(predicate: Callable[[], object], timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
