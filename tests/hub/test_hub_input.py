"""Validation at the edge: every bad input is a 4xx problem naming the field, and nothing is stored.

The hub runs in-process (FastAPI's TestClient runs its lifespan, which starts the hub and writes
the admin token). Each case checks the status, the field in the problem, that no 5xx happens and
that the counts of jobs, allocations, tokens, proposals and audit entries did not change. Bodies
are sent as raw JSON text where Python's ``json`` would not write them (``Infinity``, lone
surrogates).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from steppe.api.app import create_app
from steppe.api.hub import Hub, HubSettings
from steppe.cli.render import print_error
from steppe.client import models as m
from steppe.governance.proposal import EXAMPLE_PROPOSAL

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what this project has
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

BIG = 2**63  # one more than the store's largest integer
PROJECT = "kaznu/nlp"
ALLOC = "/api/v1/orgs/kaznu/projects/nlp/allocations"


@dataclass
class Api:
    admin: TestClient
    member: dict[str, str]
    reviewer: dict[str, str]
    hub: Hub

    def send(self, method: str, url: str, body: Any = None, raw: str | None = None, as_: str = "admin") -> Any:
        headers = {"Content-Type": "application/json"}
        if as_ == "member":
            headers.update(self.member)
        elif as_ == "reviewer":
            headers.update(self.reviewer)
        content = raw if raw is not None else (json.dumps(body) if body is not None else None)
        return self.admin.request(method, url, content=content, headers=headers)

    def counts(self) -> dict[str, int]:
        """What a bad request must not change."""
        c = self.admin
        return {
            "jobs": c.get("/api/v1/jobs", params={"limit": 1}).json()["total"],
            "allocations": len(c.get("/api/v1/allocations").json()),
            "tokens": len(c.get("/api/v1/users/alice/tokens").json()),
            "proposals": len(c.get("/api/v1/proposals").json()),
            "datasets": len(c.get("/api/v1/datasets").json()),
            "audit": len(c.get("/api/v1/audit", params={"limit": 10000}).json()),
        }


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data = tmp_path_factory.mktemp("input") / "data"
    hub = Hub.open(HubSettings(data_dir=data, gpus=4, gpu_type="H100", review_gate=False))
    with TestClient(create_app(hub), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {(data / 'admin-token').read_text().strip()}"
        for url, body in (("/api/v1/orgs", {"name": "kaznu", "country": "KZ"}),
                          ("/api/v1/orgs", {"name": "auditors", "country": "KZ"}),
                          ("/api/v1/orgs/kaznu/projects", {"name": "nlp"}),
                          ("/api/v1/orgs/kaznu/members", {"name": "alice"}),
                          ("/api/v1/orgs/auditors/members", {"name": "dana", "role": "reviewer"})):  # fmt: skip
            assert client.post(url, json=body).status_code == 201, url
        tokens = {n: client.post(f"/api/v1/users/{n}/tokens", json={}).json()["token"] for n in ("alice", "dana")}
        yield Api(client, {"Authorization": f"Bearer {tokens['alice']}"},
                  {"Authorization": f"Bearer {tokens['dana']}"}, hub)  # fmt: skip


def refused(api: Api, r: Any, field: str, before: dict[str, int], status: int = 422) -> str:
    """Assert a problem naming ``field`` in one line, and that nothing was stored; return the message."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == status
    fields = [e["field"] for e in problem["errors"]]
    assert field in fields, (field, problem)
    assert "\n" not in problem["detail"] and "pydantic" not in problem["detail"]
    assert api.counts() == before
    return str(next(e["message"] for e in problem["errors"] if e["field"] == field))


def job(**changes: Any) -> dict[str, Any]:
    return {"project": PROJECT, "argv": ["/bin/sh", "-c", "exit 0"], **changes}


# -- integers above 63 bits and non-finite numbers: 4xx, never 5xx -------------------------------------------------
@pytest.mark.parametrize(
    ("method", "url", "field"),
    [
        ("GET", f"/api/v1/jobs/{BIG}", "job_id"),
        ("GET", "/api/v1/jobs/99999999999999999999999999", "job_id"),
        ("GET", "/api/v1/jobs/0", "job_id"),
        ("POST", f"/api/v1/jobs/{BIG}/cancel", "job_id"),
        ("GET", f"/api/v1/proposals/{BIG}", "proposal_id"),
        ("POST", f"/api/v1/proposals/{BIG}/review", "proposal_id"),
        ("GET", "/api/v1/audit?limit=99999999999999999999", "limit"),
        ("GET", f"/api/v1/audit?since_seq={BIG}", "since_seq"),
        ("GET", f"/api/v1/audit/verify?head_seq={BIG}&head_hash=ab", "head_seq"),
        ("GET", f"/api/v1/jobs?offset={BIG}", "offset"),
        ("GET", "/api/v1/jobs?limit=1001", "limit"),
        ("GET", f"/api/v1/queue?offset={BIG}", "offset"),
        ("GET", "/api/v1/jobs?since_s=nan", "since_s"),
        ("GET", "/api/v1/jobs?until_s=inf", "until_s"),
        ("GET", "/api/v1/jobs?since_s=1e999", "since_s"),
    ],
)
def test_oversize_and_non_finite_parameters_are_422(api: Api, method: str, url: str, field: str) -> None:
    before = api.counts()
    refused(api, api.send(method, url, {"action": "start_review"} if method == "POST" else None), field, before)


def test_oversize_job_id_in_logs_is_404_not_500(api: Api) -> None:
    r = api.send("GET", f"/api/v1/jobs/{BIG}/logs")
    assert r.status_code in (404, 422), r.text


@pytest.mark.parametrize(
    ("url", "raw", "field"),
    [
        ("/api/v1/jobs", json.dumps(job(gpus=BIG)), "gpus"),
        ("/api/v1/jobs", json.dumps(job(gpus=2**200)), "gpus"),
        ("/api/v1/jobs", json.dumps(job(walltime_s=1e308)), "walltime_s"),
        ("/api/v1/jobs", json.dumps(job())[:-1] + ', "walltime_s": Infinity}', "walltime_s"),
        ("/api/v1/jobs", json.dumps(job())[:-1] + ', "walltime_s": NaN}', "walltime_s"),
        ("/api/v1/orgs/kaznu/projects/nlp/allocations",
         '{"period": "2026", "gpu_hours": Infinity, "reason": "grant"}', "gpu_hours"),
        ("/api/v1/orgs/kaznu/projects/nlp/allocations",
         '{"period": "2026", "gpu_hours": 1e308, "reason": "grant"}', "gpu_hours"),
        ("/api/v1/orgs/kaznu/projects/nlp/allocations",
         json.dumps({"period": "2026", "gpu_hours": 10, "max_gpus": BIG, "reason": "grant"}), "max_gpus"),
        ("/api/v1/users/alice/tokens", '{"expires_in_s": Infinity}', "expires_in_s"),
        ("/api/v1/users/alice/tokens", '{"expires_in_s": 1e308}', "expires_in_s"),
        ("/api/v1/datasets", json.dumps({"name": "corpus", "jurisdiction": "KZ", "sensitivity": "public",
                                         "location": "astana", "size_bytes": BIG}), "size_bytes"),
        ("/api/v1/proposals/1/review",
         '{"action": "approve", "expires_on": "2030-01-01", "gpu_hour_cap": 1e308}', "gpu_hour_cap"),
    ],
)  # fmt: skip
def test_numbers_too_large_or_not_finite_are_422(api: Api, url: str, raw: str, field: str) -> None:
    before = api.counts()
    refused(api, api.send("POST", url, raw=raw), field, before)


# -- NUL characters and lone surrogates ----------------------------------------------------------------------------
JOB_STRING_FIELDS = [
    ("argv.1", lambda s: job(argv=["/bin/sh", s])),
    ("argv.0", lambda s: job(argv=[s])),
    ("script", lambda s: {"project": PROJECT, "script": f"#!/bin/sh\necho {s}\n"}),
    ("name", lambda s: job(name=s)),
    ("env.GREETING", lambda s: job(env={"GREETING": s})),
    ("env.A", lambda s: job(env={f"A{s}": "x"})),
    ("output", lambda s: job(output=f"/tmp/{s}.out")),
    ("error", lambda s: job(error=f"/tmp/{s}.err")),
    ("workdir", lambda s: job(workdir=f"/tmp/{s}")),
    ("gpu_type", lambda s: job(gpu_type=f"H{s}")),
    ("qos", lambda s: job(qos=s)),
]


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800"], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize(("field", "make"), JOB_STRING_FIELDS, ids=[f for f, _ in JOB_STRING_FIELDS])
def test_nul_and_lone_surrogates_never_reach_a_job(api: Api, field: str, make: Any, bad: str) -> None:
    before = api.counts()
    raw = json.dumps(make(bad))  # ensure_ascii: a lone surrogate travels as the escape \ud800
    r = api.send("POST", "/api/v1/jobs", raw=raw)
    if field == "env.A":  # an error in a key names the mapping's entry
        assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("env."), r.text
        assert api.counts() == before
        return
    message = refused(api, r, field, before)
    assert ("NUL" in message) if bad.startswith("a") else ("surrogate" in message), message


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        (ALLOC, {"period": "2026", "gpu_hours": 1, "reason": "a\x00"}, "reason"),
        (ALLOC, {"period": "20\x0026", "gpu_hours": 1, "reason": "r"}, "period"),
        (ALLOC, {"period": "2026", "gpu_hours": 1, "reason": "r", "gpu_types": ["H1\ud80000"]}, "gpu_types.0"),
        ("/api/v1/users/alice/tokens", {"name": "lap\x00top"}, "name"),
        ("/api/v1/users/alice/tokens", {"name": "\udfff"}, "name"),
        ("/api/v1/terms", {"version": "1", "effective_on": "2026-01-01", "text": "be good\x00"}, "text"),
        ("/api/v1/terms", {"version": "1\ud800", "effective_on": "2026-01-01", "text": "be good"}, "version"),
        ("/api/v1/datasets", {"name": "corpus", "jurisdiction": "KZ", "sensitivity": "public",
                              "location": "ast\x00ana", "size_bytes": 1}, "location"),
        ("/api/v1/datasets", {"name": "corpus", "jurisdiction": "KZ", "sensitivity": "public",
                              "location": "astana", "size_bytes": 1, "allowed_jurisdictions": ["K\ud800"]},
         "allowed_jurisdictions.0"),
        ("/api/v1/proposals/1/review", {"action": "reject", "reason": "no\x00"}, "reason"),
        ("/api/v1/proposals/1/review", {"action": "approve", "expires_on": "2030-01-01",
                                        "allowed_sites": ["ast\x00ana"]}, "allowed_sites.0"),
        ("/api/v1/terms/accept", {"version": "\x00"}, "version"),
    ],
)  # fmt: skip
def test_nul_and_lone_surrogates_refused_in_every_body(api: Api, url: str, body: dict[str, Any], field: str) -> None:
    before = api.counts()
    refused(api, api.send("POST", url, raw=json.dumps(body)), field, before)


# -- sizes ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (job(argv=["/bin/true"] * (m.MAX_ARGV + 1)), "argv", "at most 4,096 items"),
        (job(argv=["/bin/echo", "x" * (m.MAX_ARG_CHARS + 1)]), "argv.1", "at most 65,536 characters"),
        (job(env={f"V{i}": "1" for i in range(m.MAX_ENV + 1)}), "env", "at most 256 items"),
        (job(env={"BIG": "x" * (m.MAX_ENV_VALUE_CHARS + 1)}), "env.BIG", "at most 32,768 characters"),
        ({"project": PROJECT, "script": "#!/bin/sh\n" + "#" * m.MAX_SCRIPT_CHARS}, "script", "at most 1,048,576"),
        (job(argv=["/bin/echo"] + ["y" * m.MAX_ARG_CHARS] * 33), "body", "2,097,152 bytes"),
        (job(name="n" * (m.MAX_JOB_NAME + 1)), "name", "at most 128 characters"),
        (job(output="/tmp/" + "o" * m.MAX_PATH), "output", "at most 4,096 characters"),
        (job(workdir="/" + "w" * m.MAX_PATH), "workdir", "at most 4,096 characters"),
        (job(datasets=[f"d{i}" for i in range(m.MAX_ITEMS + 1)]), "datasets", "at most 64 items"),
    ],
    ids=["argv-count", "argv-element", "env-count", "env-value", "script", "total", "name", "output", "workdir",
         "datasets"],
)  # fmt: skip
def test_size_limits(api: Api, body: dict[str, Any], field: str, words: str) -> None:
    before = api.counts()
    message = refused(api, api.send("POST", "/api/v1/jobs", body), field, before)
    assert words in message, message


def test_a_million_argv_elements_are_refused_quickly(api: Api) -> None:
    body = json.dumps(job(argv=["x"] * 1_000_000))  # ~5 MB: the edge may refuse it as too large first
    before = api.counts()
    r = api.send("POST", "/api/v1/jobs", raw=body)
    assert r.status_code in (413, 422), r.text
    assert api.counts() == before


# -- strict types --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"gpus": "2"}, "gpus", "must be an integer, not a string (e.g. 2)"),
        ({"gpus": True}, "gpus", "must be an integer, not a boolean (e.g. 2)"),
        ({"gpus": 2.5}, "gpus", "must be an integer, not a decimal number (e.g. 2)"),
        ({"gpus": 0}, "gpus", "must be at least 1 (e.g. 2)"),
        ({"walltime_s": "3600"}, "walltime_s", "must be a number, not a string (e.g. 3600)"),
        ({"walltime_s": False}, "walltime_s", "must be a number, not a boolean (e.g. 3600)"),
        ({"walltime_s": 0}, "walltime_s", "must be more than 0 (e.g. 3600)"),
        ({"name": 5}, "name", "must be a string, not an integer (e.g. \"train\")"),
        ({"argv": "python train.py"}, "argv", "must be a list, not a string"),
        ({"env": {"A": 1}}, "env.A", "must be a string, not an integer"),
        ({"project": "Kaznu/NLP"}, "project", "must be ORG/PROJECT"),
        ({"gpu": 2}, "gpu", "unknown field; valid fields: project, argv"),
    ],
)
def test_strict_types_with_clear_messages(api: Api, changes: dict[str, Any], field: str, message: str) -> None:
    before = api.counts()
    got = refused(api, api.send("POST", "/api/v1/jobs", job(**changes)), field, before)
    assert got.startswith(message), got


def test_an_integer_for_a_float_field_is_fine(api: Api) -> None:
    r = api.send("POST", "/api/v1/jobs", job(walltime_s=60, argv=["/bin/sh", "-c", "exit 0"]))
    assert r.status_code == 201, r.text
    assert r.json()["walltime_s"] == 60.0


def test_dates_must_be_iso_strings(api: Api) -> None:
    before = api.counts()
    body = {"version": "9", "effective_on": 20260101, "text": "terms"}
    message = refused(api, api.send("POST", "/api/v1/terms", body), "effective_on", before)
    assert "YYYY-MM-DD" in message


def test_malformed_body_is_400_or_422_never_500(api: Api) -> None:
    before = api.counts()
    huge_int = '{"project": "kaznu/nlp", "gpus": 1' + "0" * 5000 + "}"
    for raw in ("[" * 100_000 + "]" * 100_000, huge_int, "not json", "[]"):
        r = api.send("POST", "/api/v1/jobs", raw=raw)
        assert 400 <= r.status_code < 500, (raw[:40], r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert api.counts() == before


# -- approvals: GPU types the hub has ------------------------------------------------------------------------------
def test_approval_with_unknown_gpu_type_names_the_field_and_the_hubs_types(api: Api) -> None:
    spec = {**EXAMPLE_PROPOSAL, "org": "kaznu", "project": "nlp"}
    r = api.send("POST", "/api/v1/proposals", spec, as_="member")
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert api.send("POST", f"/api/v1/proposals/{pid}/review", {"action": "start_review"}, as_="reviewer").is_success
    state = api.send("GET", f"/api/v1/proposals/{pid}").json()
    before = api.counts()
    body = {"action": "approve", "reason": "fine", "expires_on": "2030-01-01", "allowed_gpu_types": ["ZZZ"]}
    message = refused(api, api.send("POST", f"/api/v1/proposals/{pid}/review", body, as_="reviewer"),
                      "allowed_gpu_types", before)  # fmt: skip
    assert "ZZZ" in message and "H100" in message, message
    assert api.send("GET", f"/api/v1/proposals/{pid}").json() == state
    body["allowed_gpu_types"] = ["h100"]
    r = api.send("POST", f"/api/v1/proposals/{pid}/review", body, as_="reviewer")
    assert r.status_code == 200 and r.json()["approval"]["conditions"]["allowed_gpu_types"] == ["H100"], r.text


# -- free-form proposals -------------------------------------------------------------------------------------------
def _spec(**changes: Any) -> dict[str, Any]:
    return {**EXAMPLE_PROPOSAL, "org": "kaznu", "project": "other", **changes}


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (json.dumps(_spec())[:-1] + ', "requested_gpu_hours": Infinity}', "requested_gpu_hours", "finite"),
        (json.dumps(_spec())[:-1] + ', "estimated_training_flop": NaN}', "estimated_training_flop", "finite"),
        (json.dumps(_spec(requested_gpu_hours=1e308)), "requested_gpu_hours", "less than or equal"),
        (json.dumps(_spec(estimated_training_flop=1e308)), "estimated_training_flop", "less than or equal"),
        (json.dumps(_spec(requested_gpu_hours=2**70)), "requested_gpu_hours", "63 bits"),
        (json.dumps(_spec(purpose="A long enough purpose with a NUL \x00 inside it")), "purpose", "NUL"),
        (json.dumps(_spec(end_use={**EXAMPLE_PROPOSAL["end_use"], "end_user": "Uni\ud800"})), "end_use.end_user",
         "surrogate"),
        (json.dumps(_spec(extra={"deep": _nested(12)})), "extra.deep.0.0.0.0.0.0.0", "nested too deeply"),
        (json.dumps(_spec(practices=["social_scoring"] * 5000)), "", "too large"),
        (json.dumps(_spec(title="x" * 20_000)), "title", "at most 10,000 characters"),
    ],
    ids=["inf", "nan", "1e308", "flop-1e308", "int-70-bits", "nul", "surrogate", "deep", "many", "long"],
)  # fmt: skip
def test_free_form_proposals_are_checked_everywhere(api: Api, raw: str, field: str, words: str) -> None:
    before = api.counts()
    r = api.send("POST", "/api/v1/proposals", raw=raw, as_="member")
    message = refused(api, r, field or "body", before)
    assert words in message, message
    pr = api.send("PUT", "/api/v1/proposals/1", raw=raw, as_="member")
    refused(api, pr, field or "body", before)


# -- listings are summaries ----------------------------------------------------------------------------------------
def test_listings_leave_out_argv_and_show_a_short_command(api: Api) -> None:
    argv = ["/bin/sh", "-c", "exit 0"] + [f"arg{i}-" + "z" * 1000 for i in range(100)]  # ~100 KB
    r = api.send("POST", "/api/v1/jobs", job(argv=argv))
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    listing = api.send("GET", "/api/v1/jobs", None).json()
    item = next(j for j in listing["items"] if j["id"] == job_id)
    assert item["argv"] is None and item["command"].startswith("/bin/sh -c")
    assert len(item["command"]) <= m.COMMAND_PREVIEW_CHARS
    full = api.send("GET", f"/api/v1/jobs/{job_id}").json()
    assert full["argv"] == argv
    queue = api.send("GET", "/api/v1/queue").json()
    assert all(j["argv"] is None for j in queue["items"])
    assert len(api.send("GET", "/api/v1/jobs?limit=1000").content) < 200_000


# -- the CLI: one clear line ---------------------------------------------------------------------------------------
def steppe(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from steppe.cli.main import main; sys.argv[0] = 'steppe'; main()"
    env = {**os.environ, "STEPPE_URL": "http://127.0.0.1:9", "STEPPE_TOKEN": "stp_x_y"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--time", "25:61:61"], "minutes must be below 60"),
        (["--time", "0"], "must be more than zero"),
        (["--time", "1-24:00:00"], "hours must be below 24"),
        (["-J", "n" * 200], "name: must be at most 128 characters"),
        (["--gpus", "0"], "gpus: must be at least 1"),
    ],
)
def test_cli_prints_bad_values_as_one_line(args: list[str], words: str) -> None:
    r = steppe("submit", "-A", PROJECT, *args, "--", "/bin/true")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], r.stderr
    assert "pydantic" not in r.stderr and "validation error" not in r.stderr


def test_print_error_does_not_interpret_markup(capsys: pytest.CaptureFixture[str]) -> None:
    print_error("name: must match '^[a-z0-9][a-z0-9_.-]{0,62}$' [bold]x[/bold]")
    err = capsys.readouterr().err
    assert "'^[a-z0-9][a-z0-9_.-]{0,62}$' [bold]x[/bold]" in err and err.count("\n") == 1


def test_the_sdk_refuses_what_the_hub_refuses() -> None:
    with pytest.raises(ValueError) as err:
        m.JobSubmit(project=PROJECT, argv=["a\x00"], gpus=1)
    assert "NUL" in str(err.value)
    with pytest.raises(ValueError):
        m.JobSubmit.model_validate({"project": PROJECT, "argv": ["x"], "gpus": "2"})


def test_limits_are_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "live-hub.md").read_text()
    assert "## Input limits" in doc
    for value in ("4,096", "64 KiB", "256", "32 KiB", "1 MiB", "2 MiB", "128"):
        assert value in doc, value
