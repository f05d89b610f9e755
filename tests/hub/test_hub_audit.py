"""The audit log on a real hub: what is recorded, tampering with the database detected, CLI verify/export."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from govtest import hub_today, spec
from hubtest import HubProcess, current_quarter, make_tenant
from test_hub_cli import steppe

from steppe.client import HubError


def test_changes_are_audited_and_tampering_detected(fresh_hub: Callable[..., HubProcess], tmp_path: Path) -> None:
    hub = fresh_hub("--gpus", "1", "--gpu-type", "H200")
    t = make_tenant(hub, "kaznu")
    root = hub.client()
    with pytest.raises(HubError) as err:  # a reason is required for allocation changes
        root.request("POST", "/api/v1/orgs/kaznu/projects/nlp/allocations",
                     json={"period": current_quarter(), "gpu_hours": 10})  # fmt: skip
    assert err.value.status == 422 and err.value.problem.errors[0].field == "reason"
    root.create_allocation(t.project, current_quarter(), 10, reason="Q grant from the ministry")
    tok = root.create_token("kaznu-user", "laptop")
    root.revoke_token(tok.prefix)
    entries = root.audit_entries()
    got = {(e.action, e.subject) for e in entries}
    assert {("allocation.create", t.project), ("token.issue", "kaznu-user"), ("token.revoke", tok.prefix)} <= got
    assert next(e for e in entries if e.action == "allocation.create").reason == "Q grant from the ministry"
    assert all(e.actor for e in entries) and [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert root.audit_verify().ok
    with pytest.raises(HubError) as err:  # members may not read it
        t.member.audit_entries()
    assert err.value.status == 403

    db = sqlite3.connect(hub.data_dir / "steppe.db", isolation_level=None)

    def check(problem: str) -> None:
        v = root.audit_verify()
        assert not v.ok and problem in v.problem, v.problem

    old = db.execute("SELECT reason FROM audit_log WHERE seq = 3").fetchone()[0]
    db.execute("UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 3")
    check("seq 3: hash does not match its content (edited)")
    db.execute("UPDATE audit_log SET reason = ? WHERE seq = 3", (old,))
    assert root.audit_verify().ok

    row = db.execute("SELECT * FROM audit_log WHERE seq = 4").fetchone()
    db.execute("DELETE FROM audit_log WHERE seq = 4")
    check("has seq 5, expected 4 (entries deleted, inserted or reordered)")
    db.execute(f"INSERT INTO audit_log VALUES ({','.join('?' * len(row))})", row)
    assert root.audit_verify().ok

    db.execute("UPDATE audit_log SET seq = -2 WHERE seq = 2")
    db.execute("UPDATE audit_log SET seq = 2 WHERE seq = 5")
    db.execute("UPDATE audit_log SET seq = 5 WHERE seq = -2")
    check("reordered")
    db.execute("UPDATE audit_log SET seq = -2 WHERE seq = 2")
    db.execute("UPDATE audit_log SET seq = 2 WHERE seq = 5")
    db.execute("UPDATE audit_log SET seq = 5 WHERE seq = -2")
    assert root.audit_verify().ok

    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPPE_")}
    env.update(STEPPE_URL=hub.url, STEPPE_TOKEN=hub.admin_token)
    out = tmp_path / "audit.jsonl"
    exported = steppe("audit", "export", "--out", str(out), env=env)
    assert exported.returncode == 0 and f"Wrote {len(entries)} entries" in exported.stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(entries) + 1)) and all(len(e["hash"]) == 64 for e in lines)
    head = exported.stdout.split("head ")[1].strip()
    assert steppe("audit", "verify", "--head", head, env=env).returncode == 0
    assert steppe("audit", "verify", "--file", str(out), env=env).returncode == 0
    db.execute("UPDATE audit_log SET actor = 'someone' WHERE seq = 2")
    bad = steppe("audit", "verify", env=env)
    assert bad.returncode == 1 and "seq 2: hash does not match" in bad.stderr
    db.close()


def test_proposal_cli(fresh_hub: Callable[..., HubProcess], tmp_path: Path) -> None:
    hub = fresh_hub("--gpus", "1", "--gpu-type", "H200")
    t = make_tenant(hub, "kaznu")
    root = hub.client()
    root.create_org("auditors", "KZ")
    root.add_member("auditors", "dana", "reviewer")
    base = {k: v for k, v in os.environ.items() if not k.startswith("STEPPE_")}
    member = {**base, "STEPPE_URL": hub.url, "STEPPE_TOKEN": t.member_token}
    rev = {**base, "STEPPE_URL": hub.url, "STEPPE_TOKEN": root.create_token("dana").token}
    admin = {**base, "STEPPE_URL": hub.url, "STEPPE_TOKEN": hub.admin_token}
    (tmp_path / "p.json").write_text(json.dumps(spec(t, estimated_training_flop=1e24)))
    sub = steppe("proposal", "submit", str(tmp_path / "p.json"), env=member)
    assert sub.returncode == 0 and "submitted" in sub.stdout and "enhanced_review" in sub.stdout
    assert "CMP-ENHANCED" in sub.stdout
    pid = sub.stdout.split()[1]
    assert steppe("proposal", "review", pid, "--action", "start_review", env=rev).returncode == 0
    expires = (hub_today() + timedelta(days=30)).isoformat()
    ok = steppe("proposal", "review", pid, "--action", "approve", "--reason", "enhanced review done",
                "--expires-on", expires, "--gpu-hour-cap", "1000", "--gpu-type", "H200", env=rev)  # fmt: skip
    assert ok.returncode == 0 and "approved" in ok.stdout and "cap 1000.0 GPU-hours" in ok.stdout
    shown = steppe("proposal", "show", pid, env=member)
    assert shown.returncode == 0 and "approve" in shown.stdout and "by dana (reviewer)" in shown.stdout
    denied = steppe("proposal", "review", pid, "--action", "revoke", "--reason", "x", env=member)
    assert denied.returncode == 1 and "Forbidden (403)" in denied.stderr
    no_reason = steppe("admin", "alloc", "create", t.project, "--gpu-hours", "5", "--period", current_quarter(),
                       env=admin)  # fmt: skip
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    ds = steppe("dataset", "register", "kz-census", "--jurisdiction", "KZ", "--sensitivity", "personal",
                "--location", "astana", "--size-bytes", "1000", env=admin)  # fmt: skip
    assert ds.returncode == 0 and "allowed" in ds.stdout
    assert "kz-census" in steppe("dataset", "list", env=member).stdout
