"""Governance that explains itself, through the ``steppe`` CLI against an in-process hub (FastAPI's TestClient;
the CLI's SDK client rides on its transport): the proposal template, ``proposal check`` (a screening dry run:
nothing stored, every rule with its citation), one-line errors for malformed files and wrong fields, a proposal
the screening hands back amended at once, ``proposal show`` with the proposal's text for the reviewer and the
submitter, headers on the governance listings, and ``balance``/``usage`` for members with tenant isolation."""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from apphub import AppHub, app_hub

from steppe.api.app import create_app
from steppe.api.hub import Hub, HubSettings
from steppe.app import allocations, jobs, members, tenancy, tokens
from steppe.app.errors import NotFound
from steppe.cli.main import main
from steppe.client import HubClient
from steppe.client import models as m
from steppe.governance import load_rules
from steppe.governance.proposal import EXAMPLE_PROPOSAL
from steppe.governance.proposal_file import proposal_template
from steppe.store import audit as audit_repo
from steppe.store import tenancy as tenancy_repo

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what this project has
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
RULES = load_rules()
RULE_IDS = [r.id for r in RULES.every_rule()]


@dataclass
class Api:
    client: TestClient
    hub: Hub
    tokens: dict[str, str]  # user -> token: root (hub-admin), alice (kaznu), bob (enu), dana (reviewer, auditors)

    def sdk(self, user: str) -> HubClient:
        return HubClient("http://testserver", self.tokens[user], transport=self.client._transport)

    def count(self, path: str) -> int:
        return len(self.sdk("root").request("GET", path, params={"limit": 10000}).json())


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A hub with the review gate (jobs wait for an approval, so nothing runs): organisations kaznu (projects
    p1-p6, member alice), enu (project nlp, member bob) and auditors (reviewer dana)."""
    data = tmp_path_factory.mktemp("govux") / "data"
    hub = Hub.open(HubSettings(data_dir=data, gpus=4, gpu_type="H100", executor="mock", single_user=True))
    with TestClient(create_app(hub), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {(data / 'admin-token').read_text().strip()}"
        posts = [("/api/v1/orgs", {"name": o, "country": "KZ"}) for o in ("kaznu", "enu", "auditors")]
        posts += [("/api/v1/orgs/kaznu/projects", {"name": f"p{i}"}) for i in range(1, 7)]
        posts += [("/api/v1/orgs/enu/projects", {"name": "nlp"}), ("/api/v1/orgs/kaznu/members", {"name": "alice"}),
                  ("/api/v1/orgs/enu/members", {"name": "bob"}),
                  ("/api/v1/orgs/auditors/members", {"name": "dana", "role": "reviewer"})]  # fmt: skip
        for url, body in posts:
            assert client.post(url, json=body).status_code == 201, url
        names = ("alice", "bob", "dana")
        toks = {n: client.post(f"/api/v1/users/{n}/tokens", json={}).json()["token"] for n in names}
        toks["root"] = (data / "admin-token").read_text().strip()
        yield Api(client, hub, toks)


@pytest.fixture
def steppe(api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """``steppe(user, *args)``: run the CLI in process as ``user``; returns its exit code, stdout and stderr."""

    def run(user: str, *args: str) -> Run:
        monkeypatch.setattr(HubClient, "from_config", classmethod(lambda cls, config=None: api.sdk(user)))
        monkeypatch.setattr(sys, "argv", ["steppe", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


def write(tmp_path: Path, name: str, data: dict[str, Any] | str) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def spec(project: str, **changes: Any) -> dict[str, Any]:
    return {**EXAMPLE_PROPOSAL, "org": "kaznu", "project": project, **changes}


def test_template_is_the_docs_example_and_the_hub_accepts_it(steppe: Any, tmp_path: Path) -> None:
    shown = steppe("alice", "proposal", "template")
    assert shown.code == 0 and shown.out == proposal_template()
    assert shown.out == (ROOT / "docs" / "examples" / "proposal.yaml").read_text()
    mine = shown.out.replace("project: kazllm", "project: p1").replace("org: kaznu", "org: kaznu")
    checked = steppe("alice", "proposal", "check", write(tmp_path, "p.yaml", mine))
    assert checked.code == 0 and "standard_review" in checked.out and "Next: submit it" in checked.out


def test_check_is_a_dry_run_rule_by_rule(api: Api, steppe: Any, tmp_path: Path) -> None:
    before = (api.count("/api/v1/proposals"), api.count("/api/v1/audit"))
    ok = steppe("alice", "proposal", "check", write(tmp_path, "ok.yaml", spec("p1")))
    assert ok.code == 0, ok.err
    assert ok.out.splitlines()[0].startswith("Screening of kaznu/p1 (rules v1, nothing stored): standard_review")
    lines = ok.out.splitlines()[1:-1]
    assert [line.split()[1].rstrip(":") for line in lines] == RULE_IDS  # every rule, in the rules file's order
    assert all(line.split()[0] == "pass" and line.endswith(")") for line in lines)
    assert "(EU AI Act Art. 5(1)(c)" in ok.out or "Art. 5(1)(c)" in ok.out  # each rule with its citation

    high = steppe("alice", "proposal", "check", write(tmp_path, "high.yaml", spec("p1", risk_class="high")))
    assert high.code == 1  # screening would block it
    fired = {line.split()[1].rstrip(":"): line.split()[0] for line in high.out.splitlines()[1:-1]}
    assert fired["REQ-HIGH-RISK"] == "changes_required" and fired["ESC-HIGH-RISK"] == "enhanced_review"
    assert "missing or false: human_oversight_plan, incident_contact" in high.out
    assert "Next: screening would require changes to it" in high.out
    assert (api.count("/api/v1/proposals"), api.count("/api/v1/audit")) == before  # nothing stored or audited

    as_json = api.sdk("alice").check_proposal(spec("p1"))
    assert [r.rule_id for r in as_json.rules] == RULE_IDS and as_json.open_proposal is None
    other = steppe("bob", "proposal", "check", write(tmp_path, "other.yaml", spec("p1")))
    assert other.code == 1 and "project: no project 'kaznu/p1'" in other.err  # another organisation's project


def test_malformed_files_and_wrong_fields_are_one_line(steppe: Any, tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "org: kaznu\nproject: p1\ntitle: a: b\n")
    for verb in ("check", "submit"):
        r = steppe("alice", "proposal", verb, bad)
        assert r.code == 1 and r.out == ""
        assert r.err.strip() == f"error: {bad}: line 3, column 9: not valid YAML: mapping values are not allowed here"
    missing = spec("p1")
    del missing["purpose"]
    r = steppe("alice", "proposal", "check", write(tmp_path, "missing.yaml", missing))
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert f"purpose: Field required (e.g. {EXAMPLE_PROPOSAL['purpose']!r})" in r.err
    r = steppe("alice", "proposal", "submit", write(tmp_path, "typo.yaml", {**spec("p1"), "risk_clas": "high"}))
    assert (
        r.code == 1
        and "risk_clas: Extra inputs are not permitted (an unknown field; did you mean 'risk_class'?)" in r.err
    )
    r = steppe("alice", "proposal", "check", write(tmp_path, "enum.yaml", spec("p1", sector="space")))
    assert r.code == 1 and "sector: Input should be 'research'" in r.err and "(e.g. 'research')" in r.err


def test_changes_required_is_amended_at_once_and_shown_with_its_text(api: Api, steppe: Any, tmp_path: Path) -> None:
    sub = steppe("alice", "proposal", "submit", write(tmp_path, "high.yaml", spec("p2", risk_class="high")))
    assert sub.code == 0, sub.err
    pid = sub.out.split()[1]
    assert sub.out.startswith(f"Proposal {pid} for kaznu/p2: changes_requested (revision 1)")
    assert "screen_changes   submitted -> changes_requested by steppe (system): screening requires changes" in sub.out
    fixed = spec("p2", risk_class="high", human_oversight_plan="an operator can stop it", incident_contact="a@b.kz")
    amended = steppe("alice", "proposal", "amend", pid, write(tmp_path, "fixed.yaml", fixed))
    assert amended.code == 0, amended.err
    assert amended.out.startswith(f"Proposal {pid} for kaznu/p2: submitted (revision 2)")
    [entry] = [e for e in api.sdk("root").audit_entries() if e.action == "review.screen_changes"]
    assert (entry.actor, entry.subject) == ("steppe", "kaznu/p2") and "REQ-HIGH-RISK" in entry.reason

    for user in ("dana", "alice"):  # the reviewer and the submitter see what is decided on
        shown = steppe(user, "proposal", "show", pid)
        assert shown.code == 0, shown.err
        assert "Proposal text:" in shown.out and f"purpose: {EXAMPLE_PROPOSAL['purpose']}" in shown.out
        assert "human_oversight_plan: an operator can stop it" in shown.out and "risk_class: high" in shown.out
    assert steppe("bob", "proposal", "show", pid).code == 1  # another organisation's: not found


def test_governance_listings_have_headers(api: Api, steppe: Any, tmp_path: Path) -> None:
    steppe("alice", "proposal", "submit", write(tmp_path, "p3.yaml", spec("p3")))
    body = m.DatasetCreate(name="corpus", jurisdiction="KZ", sensitivity="public", location="astana", size_bytes=10)
    api.sdk("root").register_dataset(body)
    for user, args, header in (
        ("alice", ("proposal", "list"), ["ID", "PROJECT", "STATE", "REVISION", "SCREENING", "APPROVAL"]),
        (
            "alice",
            ("dataset", "list"),
            ["DATASET", "SENSITIVITY", "JURISDICTION", "LOCATION", "HERE", "STAGING", "WHY"],
        ),
        ("dana", ("audit", "list"), ["SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "REASON"]),
    ):
        r = steppe(user, *args)
        assert r.code == 0, r.err
        first, *rows = r.out.splitlines()
        assert first.split() == header and rows, args
    assert any(line.split()[1] == "kaznu/p3" for line in steppe("alice", "proposal", "list").out.splitlines()[1:])


def test_members_see_balance_and_usage_of_their_project_only(api: Api, steppe: Any) -> None:
    root = api.sdk("root")
    year = datetime.now(UTC).year
    root.create_allocation("kaznu/p4", str(year), 100.0, reason=f"grant {year}")
    root.add_member("kaznu", "carl")
    carl = root.create_token("carl").token
    api.tokens["carl"] = carl
    ids = {u: api.sdk(u).submit(m.JobSubmit(project="kaznu/p4", argv=["/bin/true"])).id for u in ("alice", "carl")}
    with api.hub.store.write() as conn:
        project_id = tenancy_repo.get_project(conn, "kaznu", "p4").id  # type: ignore[union-attr]
        api.hub.store.add_usage(conn, [usage_row(ids["alice"], project_id, f"{year}-05", 3 * 3600.0),
                                       usage_row(ids["carl"], project_id, f"{year}-06", 3600.0)])  # fmt: skip
    b = api.sdk("alice").balance("kaznu/p4")
    assert (b.period, b.granted_gpu_hours, b.used_gpu_hours, b.left_gpu_hours) == (str(year), 100.0, 4.0, 96.0)
    r = steppe("alice", "usage", "-A", "kaznu/p4")
    assert r.code == 0, r.err
    assert [line.split() for line in r.out.splitlines()] == [
        ["USER", "JOBS", "GPU_HOURS"], ["alice", "1", "3.000"], ["carl", "1", "1.000"], ["total", "2", "4.000"],
    ]  # fmt: skip
    may = steppe("alice", "usage", "-A", "kaznu/p4", "--period", f"{year}-06").out.splitlines()
    assert [line.split()[0] for line in may] == ["USER", "carl", "total"]
    bal = steppe("carl", "balance", "-A", "kaznu/p4")  # a member, not an admin
    assert bal.code == 0 and [line.split() for line in bal.out.splitlines()] == [
        ["PROJECT", "PERIOD", "GRANTED", "USED", "LEFT"], ["kaznu/p4", str(year), "100.00", "4.00", "96.00"],
    ]  # fmt: skip

    for user in ("bob",):  # a member of another organisation: not found, as a missing project
        for args in (("balance", "-A", "kaznu/p4"), ("usage", "-A", "kaznu/p4")):
            denied = steppe(user, *args)
            assert denied.code == 1 and "project kaznu/p4 not found" in denied.err
    for path in ("/api/v1/orgs/kaznu/projects/p4/balance", "/api/v1/orgs/kaznu/projects/p4/usage/users"):
        answer = api.client.get(path, headers={"Authorization": f"Bearer {api.tokens['bob']}"})
        assert answer.status_code == 404
        assert api.client.get(path, headers={"Authorization": f"Bearer {api.tokens['alice']}"}).status_code == 200


def usage_row(job_id: int, project_id: int, period: str, gpu_s: float) -> dict[str, Any]:
    return {"job_id": job_id, "project_id": project_id, "period": period, "gpu_type": "H100", "gpu_seconds": gpu_s,
            "it_kwh": 0.0, "facility_kwh": 0.0, "carbon_kg": 0.0, "cost_kzt": 0.0, "energy_source": "none",
            "first_s": 0.0, "last_s": gpu_s}  # fmt: skip


# -- in process, without HTTP: the workflows ----------------------------------------------------------------------
@pytest.fixture
def a(tmp_path: Path) -> Iterator[AppHub]:
    """The hub's loop does not run: submitted jobs stay pending, so the only usage is what a test adds."""
    with app_hub(tmp_path) as hub:
        yield hub


@pytest.fixture
def started(tmp_path: Path) -> Iterator[AppHub]:
    """The loop runs: a share change waits for its next cycle."""
    with app_hub(tmp_path, start=True) as hub:
        yield hub


def test_every_tenancy_change_is_audited_with_who_did_it(started: AppHub) -> None:
    a = started
    tenancy.create_org(a.hub, a.admin, "kbtu", "KZ")
    tenancy.create_project(a.hub, a.olga, "kaznu", "cv")
    members.add_member(a.hub, a.olga, "kaznu", m.MemberCreate(name="carl"))
    token = tokens.create_token(a.hub, a.olga, "carl", m.TokenCreate(name="laptop"))
    tokens.revoke_token(a.hub, a.olga, token.prefix)
    members.remove_member(a.hub, a.olga, "kaznu", "carl")
    tenancy.set_share(a.hub, a.admin, "kaznu", 2.0, 4, "2031 call")
    allocations.create_allocation(a.hub, a.admin, "kaznu", "cv", m.AllocationCreate(period="2031", gpu_hours=5,
                                                                                      reason="call 1"))  # fmt: skip
    with a.hub.store.read() as conn:
        seen = [(e.action, e.actor, e.subject) for e in audit_repo.entries(conn)]
    assert seen == [
        ("org.create", "root", "kbtu"),
        ("project.create", "olga", "kaznu/cv"),
        ("user.create", "olga", "carl"),
        ("token.issue", "olga", "carl"),
        ("token.revoke", "olga", token.prefix),
        ("user.disable", "olga", "carl"),
        ("quota.change", "root", "kaznu"),
        ("allocation.create", "root", "kaznu/cv"),
    ]


def test_balance_and_usage_by_user_for_members(a: AppHub) -> None:
    allocations.create_allocation(a.hub, a.admin, "kaznu", "nlp", m.AllocationCreate(period="2031-05", gpu_hours=10,
                                                                                      reason="call 1"))  # fmt: skip
    done = {
        who.name: asyncio.run(jobs.submit(a.hub, who, m.JobSubmit(project="kaznu/nlp", argv=["/bin/true"]), None))
        for who in (a.alice, a.olga)
    }
    project_id = done["alice"].row.project_id
    with a.hub.store.write() as conn:
        a.hub.store.add_usage(conn, [usage_row(done["alice"].job_id, project_id, "2031-05", 2 * 3600.0),
                                     usage_row(done["olga"].job_id, project_id, "2031-05", 3600.0),
                                     usage_row(done["olga"].job_id, project_id, "2031-06", 3600.0)])  # fmt: skip
    april = 1_934_928_000.0  # 2031-04-26T00:00Z: before the allocation's period; ten days later, in it
    assert allocations.balance(a.hub, a.alice, "kaznu", "nlp", now=april + 10 * 86400) == m.Balance(
        project="kaznu/nlp", period="2031-05", granted_gpu_hours=10.0, used_gpu_hours=3.0, left_gpu_hours=7.0
    )
    none = allocations.balance(a.hub, a.alice, "kaznu", "nlp", now=april)
    assert (none.period, none.granted_gpu_hours, none.used_gpu_hours, none.left_gpu_hours) == (None, None, 4.0, None)
    rows = allocations.usage_by_user(a.hub, a.alice, "kaznu", "nlp")
    assert [(u.user, u.jobs, u.gpu_hours) for u in rows] == [("alice", 1, 2.0), ("olga", 1, 2.0)]
    rows = allocations.usage_by_user(a.hub, a.alice, "kaznu", "nlp", "2031-05")
    assert [(u.user, u.gpu_hours) for u in rows] == [("alice", 2.0), ("olga", 1.0)]
    with pytest.raises(NotFound, match="project kaznu/nlp not found"):
        allocations.balance(a.hub, a.bob, "kaznu", "nlp")
    with pytest.raises(NotFound, match="project kaznu/nlp not found"):
        allocations.usage_by_user(a.hub, a.bob, "kaznu", "nlp")
