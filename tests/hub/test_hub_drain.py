"""Draining and resuming nodes in the live loop (in process: ``LoopHarness``, fake clock, mock
executor) and through the application layer (``app_hub``): jobs on a draining node finish, nothing
new starts there (pending jobs start elsewhere), the node goes ``draining`` -> ``drain``, a resume
lets them start there; only a hub-admin drains, each drain and resume is audited with its reason,
and a drain survives a restart of the hub."""

from __future__ import annotations

from pathlib import Path

import pytest
from apphub import app_hub

from steppe.app import audit, nodes
from steppe.app.errors import Conflict, Forbidden, NotFound
from steppe.control.harness import LoopHarness
from steppe.control.views import ReadModelPublisher, engine_down_nodes, nodes_view
from steppe.executors.mock import MockExecutor
from steppe.store import nodes as node_repo


def _drain(h: LoopHarness, node: str, reason: str = "bad fan") -> None:
    with h.store.write() as conn:
        node_repo.drain(conn, node, reason, "root", h.clock())
    h.loop.reload_drains()


def _resume(h: LoopHarness, node: str) -> None:
    with h.store.write() as conn:
        node_repo.resume(conn, node)
    h.loop.reload_drains()


def _states(h: LoopHarness) -> dict[str, tuple[str, str]]:
    return {v.name: (v.state, v.reason) for v in nodes_view(h.loop.state, h.loop.drains)}


def _node_of(h: LoopHarness, job_id: int) -> str:
    rec = h.loop.state.jobs[job_id]
    return h.fleet.node_names[rec.allocation[0][0]]


def test_a_draining_node_runs_its_jobs_to_the_end_and_starts_nothing_new(tmp_path: Path) -> None:
    h = LoopHarness(tmp_path, nodes=2, gpus=4)
    try:
        a = h.submit(gpus=4)
        assert h.step()
        busy = _node_of(h, a)
        other = next(n for n in h.fleet.node_names if n != busy)
        _drain(h, busy)
        b, c = h.submit(gpus=2), h.submit(gpus=4)
        assert h.step(1.0)
        assert h.job(a)["state"] == "RUNNING" and ("stop", a) not in h.executor.calls  # its job goes on
        assert h.job(b)["state"] == "RUNNING" and _node_of(h, b) == other  # a pending job starts elsewhere
        assert h.job(c)["state"] == "PENDING" and h.job(c)["reason"] == "Resources"
        assert _states(h) == {busy: ("draining", "bad fan"), other: ("mixed", "")}
        h.executor.end(a, 0)
        assert h.step(1.0)
        assert h.job(a)["state"] == "COMPLETED"
        assert h.job(c)["state"] == "PENDING"  # the 4 GPUs a gave back stay out of the scheduler's reach
        assert _states(h)[busy] == ("drain", "bad fan")
        assert h.loop.state.inventory.free[h.fleet.node_names.index(busy)] == 0
        for _ in range(3):  # nor does a memoised cycle start it there
            assert h.step(1.0)
        assert h.job(c)["state"] == "PENDING"
        _resume(h, busy)
        assert h.step(1.0)  # the resume is an event of its own: the next cycle starts c there
        assert h.job(c)["state"] == "RUNNING" and _node_of(h, c) == busy
        assert _states(h)[busy] == ("allocated", "")
    finally:
        h.close()


def test_a_job_on_a_drained_node_frees_nothing_in_the_estimated_starts(tmp_path: Path) -> None:
    h = LoopHarness(tmp_path, nodes=2, gpus=4)
    try:
        a, b = h.submit(gpus=4, walltime_s=600.0), h.submit(gpus=4, walltime_s=1200.0)
        assert h.step()
        assert {_node_of(h, a), _node_of(h, b)} == set(h.fleet.node_names)
        _drain(h, _node_of(h, a))
        c = h.submit(gpus=4)
        assert h.step()
        model = ReadModelPublisher(h.loop).publish()
        assert model.on_drained == {a}
        (entry,) = model.queue
        assert entry.job_id == c and entry.est_start_s == h.clock() + 1200.0  # when b ends, not a
    finally:
        h.close()


def test_a_drain_is_kept_across_a_restart(tmp_path: Path) -> None:
    h = LoopHarness(tmp_path, nodes=2, gpus=4)
    try:
        _drain(h, "node001", "firmware")
        assert h.step()
        h.restart()
        assert h.loop.drains == {0: "firmware"}
        a = h.submit(gpus=4)
        assert h.step()
        assert _node_of(h, a) == "node002"
        assert _states(h)["node001"] == ("drain", "firmware")
    finally:
        h.close()


def test_a_node_the_engine_no_longer_offers_is_down() -> None:
    ex = MockExecutor({"node001": (0, 1)})
    assert engine_down_nodes(ex, ["node001", "node002"]) == {"node002"}
    ex.down = True  # an engine that does not answer says nothing about its nodes
    assert engine_down_nodes(ex, ["node001", "node002"]) == frozenset()
    assert engine_down_nodes(MockExecutor(), ["node001"]) == frozenset()  # one that lists no nodes at all


def test_only_a_hub_admin_drains_and_each_drain_and_resume_is_audited(tmp_path: Path) -> None:
    with app_hub(tmp_path, start=True) as a:
        node = a.hub.fleet.node_names[0]
        with pytest.raises(Forbidden):
            nodes.drain(a.hub, a.alice, node, "mine now")
        with pytest.raises(Forbidden):
            nodes.resume(a.hub, a.olga, node)
        with pytest.raises(NotFound):
            nodes.drain(a.hub, a.admin, "no-such-node", "x")
        with pytest.raises(Conflict):
            nodes.resume(a.hub, a.admin, node)  # not drained
        drained = nodes.drain(a.hub, a.admin, node, "bad fan")
        assert (drained.state, drained.reason) == ("drain", "bad fan")
        assert a.hub.loop.state.drained == {0: 4}
        shown = {n.name: n for n in nodes.node_views(a.hub, a.alice)}
        assert (shown[node].state, shown[node].reason) == ("drain", "bad fan")
        resumed = nodes.resume(a.hub, a.admin, node, "fan replaced")
        assert (resumed.state, resumed.reason) == ("idle", None)
        assert a.hub.loop.state.drained == {} and a.hub.loop.state.inventory.free[0] == 4
        entries = [e for e in audit.audit_entries(a.hub, a.admin, 0, 100) if e.action.startswith("node.")]
        assert [(e.action, e.subject, e.actor, e.reason) for e in entries] == [
            ("node.drain", node, "root", "bad fan"),
            ("node.resume", node, "root", "fan replaced"),
        ]
        assert entries[1].details["drained_for"] == "bad fan"
