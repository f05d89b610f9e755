"""The ``steppe`` CLI in process against an in-process hub: the real entry point (``main``), the real API
(FastAPI through its test transport), the mock executor (nothing runs; a test ends jobs itself).

``cli_hub(tmp_path)`` yields a ``CliHub``: a hub with 4 H100 GPUs, no review gate, organisations
kaznu (members alice and carol, org-admin olga) and enu (member bob), each with a project ``nlp``,
and a token for each of them and for the hub-admin (``root``). ``h.steppe("alice", "queue", "-t",
"PD")`` runs ``steppe queue -t PD`` as alice and returns its exit status, stdout and stderr;
``h.submit("alice", gpus=4)`` submits a job through the SDK and returns its id.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from steppe.api.app import create_app
from steppe.api.hub import Hub, HubSettings
from steppe.cli import hub_commands
from steppe.cli.main import main
from steppe.client import HubClient
from steppe.client import models as m

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what this project has
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class CliHub:
    hub: Hub
    http: TestClient
    monkeypatch: pytest.MonkeyPatch
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, who: str) -> HubClient:
        return HubClient("http://testserver", self.tokens[who], transport=self.http._transport)

    def steppe(self, who: str, *args: str) -> Run:
        """``steppe ARGS`` as ``who``, in process (exit status, stdout, stderr)."""
        self.monkeypatch.setattr(hub_commands, "_client", lambda: self.client(who))
        self.monkeypatch.setattr(sys, "argv", ["steppe", *args])
        out, err = StringIO(), StringIO()
        code = 0
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = int(exc.code or 0)
        return Run(code, out.getvalue(), err.getvalue())

    def submit(self, who: str, **fields: Any) -> int:
        body = {"project": "kaznu/nlp" if who != "bob" else "enu/nlp", "argv": ["true"], **fields}
        return self.client(who).submit(m.JobSubmit(**body)).id

    def wait(self, job_id: int, state: str) -> m.Job:
        deadline = time.monotonic() + 10
        while (job := self.client("root").get_job(job_id)).state != state:
            assert time.monotonic() < deadline, f"job {job_id} never reached {state}: {job.state}"
            time.sleep(0.02)
        return job

    def queued(self, job_id: int) -> None:
        """Wait until the loop's read model lists the job (the queue is the loop's view)."""
        deadline = time.monotonic() + 10
        while job_id not in self.hub.reads.model.by_id:
            assert time.monotonic() < deadline, f"job {job_id} never reached the queue"
            time.sleep(0.02)


@contextmanager
def cli_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliHub]:
    """The hub, its tenants and their tokens (module docstring)."""
    hub = Hub.open(HubSettings(data_dir=tmp_path / "data", gpus=4, gpu_type="H100", review_gate=False,
                               executor="mock"))  # fmt: skip
    with TestClient(create_app(hub), raise_server_exceptions=False) as http:
        h = CliHub(hub, http, monkeypatch)
        h.tokens["root"] = (tmp_path / "data" / "admin-token").read_text().strip()
        root = h.client("root")
        for org, users in (("kaznu", (("alice", "member"), ("carol", "member"), ("olga", "org-admin"))),
                           ("enu", (("bob", "member"),))):  # fmt: skip
            root.create_org(org, "KZ")
            root.create_project(org, "nlp")
            for name, role in users:
                root.add_member(org, name, role)
                h.tokens[name] = root.create_token(name).token
        yield h
