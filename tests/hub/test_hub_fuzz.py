"""Schemathesis fuzzes the hub's API in process, as a member and as a hub-admin.

Every operation of the OpenAPI document gets generated requests, valid ones (positive) and
invalid ones (negative), each sent with a member's token and with the hub-admin's. A request
fails the test if the answer is a 5xx, or does not conform to the document: a status code the
operation does not declare, a content type it does not declare, or a body that does not match
the declared schema; or if the app raises, or takes over ``REQUEST_TIMEOUT_S`` to answer. Every
finding is collected (one example of each kind, with a curl line to reproduce it) and reported
at once.

Half of the generated requests have their path parameters and a submission's project replaced
by ones that exist (organisation ``fuzz``, project ``lab``, a member, a job), so requests
reach the handlers past their 404s. It runs in about two minutes on two cores; generation is
derandomized, so a run is reproducible (``EXAMPLES`` examples per operation, token and mode).

Jobs the fuzzer submits may start: their walltime is capped at ``MAX_WALLTIME_S``, and whatever
happens the hub is closed and every job's process group killed (``handle.json``'s pgid).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hubtest import JOB_PY, searchable_root
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from starlette.exceptions import StarletteDeprecationWarning

from steppe.api.app import create_app
from steppe.api.hub import Hub, HubSettings
from steppe.executors.accounts import running_as_root

with warnings.catch_warnings():  # starlette warns once, at import, that it prefers httpx2 to httpx
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

API = "/api/v1"
EXAMPLES = 25
MAX_WALLTIME_S = 30.0
REQUEST_TIMEOUT_S = 30.0
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance")
KNOWN: dict[str, Any] = {"org": "fuzz", "project": "lab", "name": "fuzz-spare"}  # and job_id, from the fixture


class NoLifespan:
    """The app for schemathesis's own client: the ``TestClient`` runs the lifespan (starts and closes the hub)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self.app(scope, receive, send)


def kill_jobs(data_dir: Path) -> None:
    for handle in data_dir.glob("jobs/*/handle.json"):
        with contextlib.suppress(ProcessLookupError, PermissionError, ValueError, KeyError, OSError):
            os.killpg(int(json.loads(handle.read_text())["pgid"]), signal.SIGKILL)


@pytest.fixture(scope="module")
def fuzz_hub() -> Iterator[tuple[TestClient, dict[str, str]]]:
    """An in-process hub with organisation ``fuzz`` (project ``lab``, member ``fuzz-user``, member
    ``fuzz-spare`` that the fuzzer may remove) and one job; the tokens by role."""
    data_dir = Path(tempfile.mkdtemp(prefix="fuzz-", dir=searchable_root()))
    settings = HubSettings(data_dir=data_dir, gpus=4, gpu_type="H100", review_gate=False, grace_s=1.0,
                           max_walltime_s=MAX_WALLTIME_S, single_user=not running_as_root())  # fmt: skip
    hub = Hub.open(settings)
    try:
        with TestClient(create_app(hub), raise_server_exceptions=False) as client:
            admin = (data_dir / "admin-token").read_text().strip()
            client.headers["Authorization"] = f"Bearer {admin}"
            assert client.post(f"{API}/orgs", json={"name": "fuzz", "country": "KZ"}).status_code == 201
            assert client.post(f"{API}/orgs/fuzz/projects", json={"name": "lab"}).status_code == 201
            for name in ("fuzz-user", "fuzz-spare"):
                assert client.post(f"{API}/orgs/fuzz/members", json={"name": name, "role": "member"}).status_code == 201
            member = client.post(f"{API}/users/fuzz-user/tokens", json={}).json()["token"]
            body = {"project": "fuzz/lab", "argv": [JOB_PY, "-c", "pass"], "walltime_s": 5}
            job = client.post(f"{API}/jobs", json=body, headers={"Authorization": f"Bearer {member}"})
            assert job.status_code == 201, job.text
            KNOWN["job_id"] = job.json()["id"]
            yield client, {"member": member, "hub-admin": admin}
            for j in client.get(f"{API}/jobs", params={"state": "PENDING,RUNNING", "limit": 1000}).json()["items"]:
                client.post(f"{API}/jobs/{j['id']}/cancel")
    finally:
        kill_jobs(data_dir)


def known(case: Any) -> None:
    """Point the case at things that exist (see the module docstring)."""
    for name in case.path_parameters or {}:
        if name in KNOWN:
            case.path_parameters[name] = KNOWN[name]
    if case.method == "POST" and case.path == f"{API}/jobs" and isinstance(case.body, dict):
        case.body["project"] = "fuzz/lab"
        walltime = case.body.get("walltime_s", 3600.0)
        if not isinstance(walltime, int | float) or walltime > MAX_WALLTIME_S:
            case.body["walltime_s"] = MAX_WALLTIME_S
        if case.body.get("argv") is None and case.body.get("script") is None:
            case.body["argv"] = [JOB_PY, "-c", "pass"]  # the one rule the document cannot say: argv or script
        elif case.body.get("argv") is not None:
            case.body.pop("script", None)


def fuzz(operation: Any, role: str, token: str, mode: GenerationMode, findings: dict[tuple[str, ...], str]) -> int:
    """Send ``EXAMPLES`` generated requests to one operation; record the first failure of each kind. The seed
    depends on the operation, role and mode only, so a run is reproducible."""
    auth = {"Authorization": f"Bearer {token}"}
    checks = [getattr(schemathesis.checks, name) for name in CHECKS]
    sent = 0

    @hypothesis.seed(zlib.crc32(f"{operation.label} {role} {mode.value}".encode()))
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode), point=st.booleans())
    @hypothesis.settings(max_examples=EXAMPLES, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))  # fmt: skip
    def run(case: Any, point: bool) -> None:
        nonlocal sent
        sent += 1
        if point:
            known(case)
        try:
            case.call_and_validate(headers=auth, checks=checks, timeout=REQUEST_TIMEOUT_S)
        except FailureGroup as exc:
            for failure in exc.exceptions:
                key = (operation.label, type(failure).__name__, str(getattr(failure, "title", "")))
                findings.setdefault(key, f"as {role} ({mode.value}): {exc}")
        except Exception as exc:  # the app raised (it answered 500) or did not answer in time
            notes = "\n".join(getattr(exc, "__notes__", []))
            key = (operation.label, "raised", type(exc).__name__)
            findings.setdefault(key, f"as {role} ({mode.value}): {operation.label} raised {exc!r}{notes}")

    with contextlib.suppress(hypothesis.errors.Unsatisfiable):  # nothing in the operation can be made invalid
        run()
    return sent


def test_fuzz_the_api(fuzz_hub: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = fuzz_hub
    schema = schemathesis.openapi.from_asgi(f"{API}/openapi.json", NoLifespan(client.app))
    schema.config.generation.update(with_security_parameters=False)  # the tokens are ours
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 30
    findings: dict[tuple[str, ...], str] = {}
    started = time.monotonic()
    sent = sum(
        fuzz(operation, role, token, mode, findings)
        for operation in operations
        for role, token in tokens.items()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    )
    print(f"\nfuzzed {len(operations)} operations with {sent} requests in {time.monotonic() - started:.0f} s")
    assert not findings, f"{len(findings)} findings:\n\n" + "\n\n".join(findings.values())
    assert sent > 40 * len(operations)  # it did fuzz
