"""Operator verbs end to end in process (the real CLI entry point, the API through FastAPI's test
transport, the mock executor: ``clihub``): ``steppe node drain|resume`` and the STATE and REASON
of ``steppe nodes`` and ``GET /api/v1/nodes``, ``steppe sprio`` and ``steppe sshare``, and the
server's structured log: one JSON line per job transition and admin action, with the request id
the edge gave the request (echoed in ``X-Request-ID``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from clihub import CliHub, cli_hub

from steppe.api.logs import JsonFormatter, RequestIdFilter, configure_logging


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliHub]:
    with cli_hub(tmp_path, monkeypatch) as hub:
        yield hub


class Lines(logging.Handler):
    """Collects the JSON lines the server would write."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def events(self, name: str) -> list[dict[str, object]]:
        return [line for line in self.lines if line.get("event") == name]


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("steppe")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_drain_and_resume_from_the_cli_with_state_and_reason_in_nodes(h: CliHub) -> None:
    node = h.hub.fleet.node_names[0]
    job = h.submit("alice", gpus=2)
    h.wait(job, "RUNNING")
    refused = h.steppe("alice", "node", "drain", node, "--reason", "mine")
    assert refused.code == 1 and "hub-admin" in refused.err
    done = h.steppe("root", "node", "drain", node, "--reason", "replace fan")
    assert done.code == 0 and f"Node {node} is DRAINING: replace fan" in done.out
    listed = h.steppe("alice", "nodes")
    assert listed.code == 0
    header, row = listed.out.splitlines()[:2]
    assert header.split() == ["NODE", "STATE", "GPU_TYPE", "GPUS", "FREE", "OTHERS", "JOBS", "REASON"]
    assert row.split() == [node, "draining", "H100", "4", "0", "0", str(job), "replace", "fan"]
    (shown,) = h.http.get("/api/v1/nodes", headers={"Authorization": f"Bearer {h.tokens['alice']}"}).json()
    assert (shown["state"], shown["reason"]) == ("draining", "replace fan")
    waiting = h.submit("alice", gpus=1)
    h.queued(waiting)
    h.hub.loop.executor.end(job, 0)  # type: ignore[attr-defined]
    h.wait(job, "COMPLETED")
    assert h.client("root").get_job(waiting).state == "PENDING"  # nothing new starts on a drained node
    assert h.client("root").nodes()[0].state == "drain"
    resumed = h.steppe("root", "node", "resume", node)
    assert resumed.code == 0 and f"Node {node} is" in resumed.out
    h.wait(waiting, "RUNNING")
    assert h.steppe("root", "node", "resume", node).code == 1  # not drained
    root = {"Authorization": f"Bearer {h.tokens['root']}"}
    assert h.http.post(f"/api/v1/nodes/{node}/drain", json={"reason": "again"}, headers=root).status_code == 200
    assert h.http.post(f"/api/v1/nodes/{node}/resume", headers=root).json()["state"] == "mixed"  # no body needed


def test_sprio_and_sshare_print_slurm_columns(h: CliHub) -> None:
    first = h.submit("alice", gpus=4)
    h.wait(first, "RUNNING")
    waiting = h.submit("bob", gpus=4)
    h.queued(waiting)
    mine = h.steppe("bob", "sprio")
    assert mine.code == 0
    assert mine.out.split()[:9] == ["JOBID", "ACCOUNT", "PROJECT", "POS", "PRIORITY", "AGE", "FAIRSHARE", "JOBSIZE",
                                    "QOS"]  # fmt: skip
    assert mine.out.splitlines()[1].split() == [str(waiting), "enu", "enu/nlp", "1", "-", "-", "-", "-", "-"]
    assert h.steppe("alice", "sprio").out.splitlines()[1:] == []  # another organisation's job is not shown
    shares = h.steppe("root", "sshare", "--json")
    assert shares.code == 0 and {s["org"] for s in json.loads(shares.out)} == {"kaznu", "enu"}
    header = h.steppe("bob", "sshare").out.splitlines()[0].split()
    assert header == ["Account", "RawShares", "NormShares", "RawUsage", "NormUsage", "EffectvUsage", "FairShare"]


def test_the_server_logs_job_transitions_and_admin_actions_as_json_with_request_ids(h: CliHub, lines: Lines) -> None:
    alice = {"Authorization": f"Bearer {h.tokens['alice']}"}
    answer = h.http.post("/api/v1/jobs", json={"project": "kaznu/nlp", "argv": ["true"], "gpus": 1},
                         headers={**alice, "X-Request-ID": "req-submit-1"})  # fmt: skip
    assert answer.status_code == 201 and answer.headers["x-request-id"] == "req-submit-1"
    job = answer.json()["id"]
    h.wait(job, "RUNNING")
    h.hub.loop.executor.end(job, 3)  # type: ignore[attr-defined]
    h.wait(job, "FAILED")
    other = h.submit("alice", gpus=1)
    h.wait(other, "RUNNING")
    cancel = h.http.post(f"/api/v1/jobs/{other}/cancel", headers=alice)
    generated = cancel.headers["x-request-id"]
    assert len(generated) == 32  # none given: the edge made one
    node = h.hub.fleet.node_names[0]
    root = {"Authorization": f"Bearer {h.tokens['root']}", "X-Request-ID": "ops-7"}
    assert h.http.post(f"/api/v1/nodes/{node}/drain", json={"reason": "bad fan"}, headers=root).status_code == 200
    assert h.http.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"] != (
        "bad id with spaces"
    )

    (submitted,) = [e for e in lines.events("job.submit") if e["job_id"] == job]
    assert submitted["request_id"] == "req-submit-1" and submitted["user"] == "alice" and submitted["gpus"] == 1
    assert submitted["project"] == "kaznu/nlp" and submitted["logger"] == "steppe.jobs"
    started = [e for e in lines.events("job.start") if e["job_id"] == job]
    assert len(started) == 1 and started[0]["state"] == "RUNNING" and "request_id" not in started[0]
    (ended,) = [e for e in lines.events("job.end") if e["job_id"] == job]
    assert (ended["state"], ended["exit_code"], ended["signal"]) == ("FAILED", 3, 0)
    (cancelled,) = lines.events("job.cancel")
    assert cancelled["job_id"] == other and cancelled["request_id"] == generated and cancelled["user"] == "alice"
    h.wait(other, "CANCELLED")
    (stopped,) = [e for e in lines.events("job.end") if e["job_id"] == other]
    assert stopped["state"] == "CANCELLED" and stopped["detail"] == "cancelled by alice"
    (drained,) = lines.events("node.drain")
    assert (drained["request_id"], drained["subject"], drained["actor"], drained["reason"]) == (
        "ops-7", node, "admin", "bad fan")  # fmt: skip
    assert drained["logger"] == "steppe.audit" and str(drained["time"]).endswith("Z")


def test_preemption_and_requeue_are_logged(lines: Lines) -> None:
    from steppe.control.journal import log_transition

    log_transition({"job_id": 5, "t_s": 1.0, "state": "PREEMPTED", "reason": "preempted"}, {})
    log_transition({"job_id": 5, "t_s": 1.0, "state": "PENDING", "reason": "requeued after preemption"}, {})
    assert [(e["event"], e["job_id"]) for e in lines.lines] == [("job.preempt", 5), ("job.requeue", 5)]


def test_log_format_text_or_json() -> None:
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        handler = configure_logging("json")
        assert isinstance(handler.formatter, JsonFormatter)
        assert configure_logging("text") is not handler and handler not in root.handlers  # replaced, not added
        with pytest.raises(ValueError, match="text, json"):
            configure_logging("xml")
    finally:
        for extra in [x for x in root.handlers if x not in before[0]]:
            root.removeHandler(extra)
        root.setLevel(before[1])


def test_serve_takes_the_log_format(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from steppe.cli.main import app as cli_app

    got: list[tuple[object, ...]] = []
    monkeypatch.setattr("steppe.api.server.serve", lambda settings, *rest: got.append(rest))
    ok = CliRunner().invoke(cli_app, ["serve", "--data-dir", str(tmp_path), "--log-format", "json"])
    assert ok.exit_code == 0, ok.output
    assert got[0][-1] == "json"
    assert CliRunner().invoke(cli_app, ["serve", "--data-dir", str(tmp_path)]).exit_code == 0 and got[1][-1] == "text"
    bad = CliRunner().invoke(cli_app, ["serve", "--data-dir", str(tmp_path), "--log-format", "xml"])
    assert bad.exit_code == 2 and len(got) == 2
