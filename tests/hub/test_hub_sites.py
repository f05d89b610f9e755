"""The live hub at two sites, in process: each site's engine runs the jobs placed there, and the
nodes, the job and /metrics say which site."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from prometheus_client import generate_latest

from steppe.api.metrics import hub_registry
from steppe.api.routes_jobs import job_view
from steppe.app import jobs
from steppe.app.auth import Principal
from steppe.app.bootstrap import HubSettings, open_hub
from steppe.app.hub import Hub
from steppe.cli import listings
from steppe.client import models as m
from steppe.executors.mock import MockExecutor
from steppe.executors.sites import SiteExecutors
from steppe.store import tenancy as tenancy_repo

HUB = """
[sites.astana]
executor = "mock"

[sites.almaty]
executor = "mock"

[[nodes]]
site = "astana"
prefix = "ast-"
count = 1
gpus = 4
gpu_type = "H100"

[[nodes]]
site = "almaty"
prefix = "alm-"
count = 1
gpus = 8
gpu_type = "H100"
"""


def _wait(ok: object, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _member(hub: Hub) -> Principal:
    """Organisation kaznu with project nlp, and its member alice."""
    with hub.store.write() as conn:
        org_id = tenancy_repo.create_org(conn, "kaznu", "KZ", 0.0)
        tenancy_repo.create_project(conn, org_id, "nlp", 0.0)
        return Principal(tenancy_repo.create_user(conn, "alice", org_id, "member", 0.0), "alice", "member",
                         org_id, "kaznu")  # fmt: skip


def test_a_hub_at_two_sites_runs_each_job_on_its_sites_engine_and_shows_the_site(tmp_path: Path) -> None:
    cluster = tmp_path / "hub.toml"
    cluster.write_text(HUB)
    hub = open_hub(HubSettings(data_dir=tmp_path / "data", cluster=str(cluster), review_gate=False,
                               single_user=True), root=False)  # fmt: skip
    try:
        executor = hub.loop.executor
        assert isinstance(executor, SiteExecutors) and set(executor.executors) == {"astana", "almaty"}
        astana, almaty = executor.executors["astana"], executor.executors["almaty"]
        assert isinstance(astana, MockExecutor) and isinstance(almaty, MockExecutor)
        alice = _member(hub)
        hub.start()
        big = asyncio.run(jobs.submit(hub, alice, m.JobSubmit(project="kaznu/nlp", argv=["/bin/true"], gpus=8), None))
        _wait(lambda: ("start", big.job_id) in almaty.calls, "the 8-GPU job to start at almaty (astana has 4)")
        assert ("start", big.job_id) not in astana.calls
        _wait(lambda: hub.reads.model.running, "the read model to show the running job")
        model = hub.reads.model
        assert [(n.name, n.site, n.free) for n in model.nodes] == [("ast-001", "astana", 4), ("alm-001", "almaty", 0)]
        assert model.running[0].site == "almaty" and model.running[0].pool == "almaty/H100"
        _wait(lambda: (jobs.visible_job(hub, alice, big.job_id).handle or {}).get("site") == "almaty",
              "the job's stored handle to name its site")  # fmt: skip
        view = job_view(jobs.visible_job(hub, alice, big.job_id), hub.fleet.node_names)
        assert view.site == "almaty" and "   Site=almaty" in listings.show_lines(view)
        table = listings.render(listings.parse_squeue(listings.with_site(listings.QUEUE_DEFAULT)), [view])
        assert table[0].split()[:2] == ["JOBID", "SITE"] and table[1].split()[:2] == [str(big.job_id), "almaty"]
        metrics = generate_latest(hub_registry(hub.loop, hub.reads)).decode()
        assert 'hub_gpus{gpu_type="H100",site="almaty",state="allocated"} 8.0' in metrics
        assert 'hub_gpus{gpu_type="H100",site="astana",state="free"} 4.0' in metrics
        almaty.down = True  # almaty's engine stops answering: a job that fits only there waits, astana goes on
        small = asyncio.run(jobs.submit(hub, alice, m.JobSubmit(project="kaznu/nlp", argv=["/bin/true"], gpus=2), None))
        _wait(lambda: ("start", small.job_id) in astana.calls, "a 2-GPU job to start at astana")
    finally:
        hub.close()


def test_a_hub_at_two_sites_budgets_power_per_site_and_reports_each_sites_draw(tmp_path: Path) -> None:
    """Astana's cap leaves room for about one 4-GPU job, Almaty's for many: the second 4-GPU job goes
    to Almaty though Astana has GPUs free, and /metrics reports each site's facility power and cap."""
    cluster = tmp_path / "hub.toml"
    cluster.write_text(
        HUB.replace('[sites.almaty]\nexecutor = "mock"', '[sites.almaty]\nexecutor = "mock"\npower_cap_kw = 500')
        .replace('[sites.astana]\nexecutor = "mock"', '[sites.astana]\nexecutor = "mock"\npower_cap_kw = 6')
        .replace('prefix = "ast-"\ncount = 1\ngpus = 4', 'prefix = "ast-"\ncount = 1\ngpus = 8')
    )
    hub = open_hub(HubSettings(data_dir=tmp_path / "data", cluster=str(cluster), review_gate=False,
                               single_user=True), root=False)  # fmt: skip
    try:
        assert hub.loop.power is not None and set(hub.loop.power.sites) == {"astana", "almaty"}
        executor = hub.loop.executor
        assert isinstance(executor, SiteExecutors)
        astana, almaty = executor.executors["astana"], executor.executors["almaty"]
        assert isinstance(astana, MockExecutor) and isinstance(almaty, MockExecutor)
        alice = _member(hub)
        hub.start()
        budget = hub.loop.power.site_budgets_w(time.time())
        ids = []
        for _ in range(2):
            body = m.JobSubmit(project="kaznu/nlp", argv=["/bin/true"], gpus=4)
            ids.append(asyncio.run(jobs.submit(hub, alice, body, None)).job_id)
        _wait(lambda: ("start", ids[0]) in astana.calls and ("start", ids[1]) in almaty.calls,
              f"one job at each site: {astana.calls} {almaty.calls} "
              f"{[(r.job_id, r.state, r.reason, r.site) for r in list(hub.loop.state.jobs.values())]}")  # fmt: skip
        draw = hub.loop.state.site_draw_w
        assert 0 < draw["astana"] <= budget["astana"] and draw["almaty"] > 0
        _wait(lambda: len(hub.reads.model.running) == 2, "the read model to show both jobs")
        metrics = generate_latest(hub_registry(hub.loop, hub.reads)).decode()
        assert 'hub_facility_power_cap_watts{site="astana"} 6000.0' in metrics
        assert 'hub_facility_power_cap_watts{site="almaty"} 500000.0' in metrics
        assert 'hub_facility_power_watts{site="almaty"}' in metrics
    finally:
        hub.close()
