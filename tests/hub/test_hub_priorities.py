"""``steppe sprio`` and ``steppe sshare`` (``steppe.control.shares``, read from the read model):
the numbers against Slurm's formulas on a small hand-made example in the live loop (multifactor,
fake clock), and who sees which rows through the application layer."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from apphub import app_hub
from pytest import approx

from steppe.app import jobs, priorities
from steppe.client import models as m
from steppe.control.harness import LoopHarness
from steppe.control.views import ReadModelPublisher
from steppe.store import tenancy

WEEK_S = 7 * 86400.0  # the decay half-life and PriorityMaxAge (defaults)


def _decayed(gpus: int, seconds: float) -> float:
    """GPU-seconds spent at ``gpus`` for ``seconds``, each decaying since (half-life a week)."""
    return gpus * WEEK_S / math.log(2) * (1 - 2 ** (-seconds / WEEK_S))


def test_sprio_and_sshare_match_the_multifactor_formulas(tmp_path: Path) -> None:
    h = LoopHarness(tmp_path, nodes=1, gpus=8, policy="multifactor")
    try:
        now = h.clock()
        with h.store.write() as conn:
            enu = tenancy.create_org(conn, "enu", "KZ", now)
            enu_project = tenancy.create_project(conn, enu, "nlp", now)
            bob = tenancy.create_user(conn, "bob", enu, "member", now)
            tenancy.set_org_share(conn, enu, 3.0, None)  # kaznu keeps weight 1
        h.loop.reload_tenants()
        k1 = h.submit(gpus=4, walltime_s=86400.0)
        e1 = h.submit(gpus=2, walltime_s=86400.0, project_id=enu_project, user_id=bob)
        assert h.step()
        assert h.job(k1)["state"] == h.job(e1)["state"] == "RUNNING"
        h.clock.advance(3600.0)
        k2 = h.submit(gpus=8)  # both wait for the 6 busy GPUs
        h.clock.advance(1800.0)
        e2 = h.submit(gpus=4, project_id=enu_project, user_id=bob)
        assert h.step()
        model = ReadModelPublisher(h.loop).publish()
        # sshare: usage over the 5,400 s both ran; S = 1/4 and 3/4
        raw = {"kaznu": _decayed(4, 5400.0), "enu": _decayed(2, 5400.0)}
        norm = {t: u / sum(raw.values()) for t, u in raw.items()}  # 2/3 and 1/3
        shares = {"kaznu": 0.25, "enu": 0.75}
        rows = {s.org: s for s in model.shares}
        assert sorted(rows) == ["enu", "kaznu"]
        for org in ("kaznu", "enu"):
            row = rows[org]
            assert (row.raw_shares, row.norm_shares) == ({"kaznu": 1.0, "enu": 3.0}[org], shares[org])
            assert row.raw_usage == approx(raw[org]) and row.norm_usage == approx(norm[org])
            assert row.effective_usage == row.norm_usage
            assert row.fairshare == approx(2 ** (-norm[org] / shares[org]))
        assert rows["kaznu"].fairshare == approx(2 ** (-8 / 3)) and rows["enu"].fairshare == approx(2 ** (-4 / 9))
        # sprio: AGE 1000 * waited / week, FAIRSHARE 10000 F, JOBSIZE 1000 * gpus / 8, QOS 0
        by_job = {p.job_id: p for p in model.priorities}
        expected = {
            k2: (1000 * 1800.0 / WEEK_S, 10000 * 2 ** (-8 / 3), 1000 * 8 / 8),
            e2: (0.0, 10000 * 2 ** (-4 / 9), 1000 * 4 / 8),
        }
        queue = h.loop.state.queue
        for job_id, (age, fairshare, size) in expected.items():
            p = by_job[job_id]
            assert p.age == approx(age) and p.fairshare == approx(fairshare) and p.job_size == approx(size)
            assert p.qos == 0.0
            assert p.priority == approx(age + fairshare + size)
            assert p.priority == approx(queue.priority(h.loop.state.jobs[job_id], h.clock()))  # type: ignore[attr-defined]
        assert [p.job_id for p in model.priorities] == [e2, k2]  # enu's fair share puts its job first
        assert [p.position for p in model.priorities] == [1, 2]
    finally:
        h.close()


def test_members_see_their_organisations_rows_and_a_fifo_policy_shows_its_order(tmp_path: Path) -> None:
    with app_hub(tmp_path, start=True) as a:  # easy-backfill: the submission order, no factors
        for who, project in ((a.alice, "kaznu/nlp"), (a.bob, "enu/nlp"), (a.alice, "kaznu/nlp")):
            body = m.JobSubmit(project=project, argv=["/bin/true"], gpus=4, walltime_s=3600.0)
            asyncio.run(jobs.submit(a.hub, who, body, None))
        a.hub.loop.wake_and_wait()
        a.hub.loop.call(a.hub.reads.publish)
        everyone = priorities.priorities(a.hub, a.admin)
        assert [(p.org, p.position) for p in everyone] == [("enu", 1), ("kaznu", 2)]  # the first kaznu job runs
        assert all(p.priority is None and p.fairshare is None for p in everyone)
        assert [p.org for p in priorities.priorities(a.hub, a.alice)] == ["kaznu"]
        assert [p.org for p in priorities.priorities(a.hub, a.bob)] == ["enu"]
        assert [s.org for s in priorities.fair_shares(a.hub, a.admin)] == ["enu", "kaznu"]
        assert [s.org for s in priorities.fair_shares(a.hub, a.bob)] == ["enu"]
        assert all(s.fairshare is None for s in priorities.fair_shares(a.hub, a.admin))
