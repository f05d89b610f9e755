"""A hub at several sites: configuration, pools (site x GPU type), one site per job, residency,
approvals and engines choosing sites, and the executor per site."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from builders import Hub, job

from steppe.core.cluster import Cluster
from steppe.core.cluster_config import load_cluster
from steppe.core.errors import ConfigError
from steppe.core.job import JobSpec, PendingReason
from steppe.core.records import JobRecord
from steppe.energy.fleet import FleetPower
from steppe.executors.base import ExitInfo
from steppe.executors.mock import MockExecutor
from steppe.executors.sites import SiteExecutors
from steppe.governance.admission import ResidencyCheck, ReviewCheck
from steppe.governance.approval import Approval, ApprovalConditions
from steppe.governance.residency import Dataset, Sensitivity, load_topology
from steppe.metering import MemorySink, Meter
from steppe.power import build_power
from steppe.scheduling.admission import DEFAULT_CHECKS, EngineAvailable
from steppe.scheduling.gate import SubmissionGate
from steppe.scheduling.policies import make_policy
from steppe.scheduling.power import ConstantLimits, PowerBudget, SiteLimits
from steppe.twin.readers import load_trace
from steppe.twin.replay import replay
from steppe.twin.trace import Trace

TWO_SITES = """
name = "kz-hub"

[sites.astana]
executor = "mock"
power_cap_kw = 40000

[sites.almaty]
site_file = "almaty"
executor = "mock"
[sites.almaty.executor_options]
partition = "gpu"

[[nodes]]
site = "astana"
prefix = "ast-h100-"
count = 2
gpus = 8
gpu_type = "H100"

[[nodes]]
site = "almaty"
prefix = "alm-h100-"
count = 2
gpus = 8
gpu_type = "H100"

[[nodes]]
site = "almaty"
prefix = "alm-a100-"
count = 1
gpus = 4
gpu_type = "A100"
"""


@pytest.fixture
def two_sites(tmp_path: Path) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(TWO_SITES)
    return path


def test_a_cluster_file_declares_sites_and_the_fleet_is_pools_of_site_and_gpu_type(two_sites: Path) -> None:
    c = load_cluster(two_sites)
    assert c.site_names == ("astana", "almaty")
    assert c.pools == {"astana/H100": 16, "almaty/H100": 16, "almaty/A100": 4}
    assert c.gpus_by_type == {"H100": 32, "A100": 4}
    assert c.sites["astana"].site_file == "astana" and c.sites["astana"].power_cap_w == 40_000_000.0
    assert c.sites["almaty"].options == (("partition", "gpu"),)
    assert [n.site for n in c.nodes] == ["astana", "astana", "almaty", "almaty", "almaty"]


@pytest.mark.parametrize(
    ("edit", "key", "problem"),
    [
        (lambda t: t.replace('site = "astana"\n', "", 1), "nodes[0].site", "required once sites are declared"),
        (lambda t: t.replace('site = "astana"\nprefix', 'site = "aktau"\nprefix', 1), "nodes[0].site", "aktau"),
        (lambda t: t + '\n[sites.aktau]\nexecutor = "mock"\n', "sites.aktau", "has no nodes"),
        (lambda t: t.replace("power_cap_kw = 40000", "power_cap_kw = -1"), "sites.astana.power_cap_kw", "positive"),
        (lambda t: t.replace("[sites.almaty]\n", "[sites.almaty]\nengine = 1\n"), "sites.almaty.engine", "unknown key"),
    ],
)
def test_a_bad_site_declaration_names_the_key_and_the_problem(
    tmp_path: Path, edit: object, key: str, problem: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(edit(TWO_SITES))  # type: ignore[operator]
    with pytest.raises(ConfigError, match=problem) as info:
        load_cluster(path)
    assert f": {key}:" in str(info.value)


def test_a_gang_never_spans_two_sites(two_sites: Path) -> None:
    """24 H100 exist (16 + 16) but no site has more than 16: the gate refuses 24 at submission; in a
    replay every job's nodes are at one site, and the largest jobs fill one site's pool."""
    cluster = load_cluster(two_sites)
    refusals = SubmissionGate(cluster).refusals(24, "H100", "t")
    assert [(r.field, r.message) for r in refusals] == [
        ("gpus", "24 asked, but the hub has at most 16 H100 GPUs at one site")
    ]
    jobs = [
        JobSpec(i, submit_s=float(i), gpus=g, runtime_s=600.0 + 37 * i, walltime_s=3600.0, tenant=f"t{i % 3}",
                gpu_type="H100" if i % 5 else None)
        for i, g in enumerate([16, 12, 6, 3, 10, 1, 8, 2, 16, 4] * 6, start=1)
    ]  # fmt: skip
    result = replay(Trace("two-sites", jobs), cluster, "easy-backfill", keep_jobs=True)
    site_of = [n.site for n in cluster.nodes]
    records = list(result.state.jobs.values())
    assert len(records) == len(jobs) and all(r.end_s is not None for r in records)
    for r in records:
        assert len({site_of[n] for n, _ in r.allocation}) == 1, (r.job_id, r.allocation)
        assert r.pool == f"{site_of[r.allocation[0][0]]}/{r.gpu_type}"


def _site_budget(cluster: Cluster, astana_w: float, almaty_w: float, capping: bool = False) -> PowerBudget:
    """IT budgets for jobs of ``astana_w`` and ``almaty_w`` (PUE 1, no idle draw counted)."""
    sites = {"astana": SiteLimits(ConstantLimits(astana_w), 0.0), "almaty": SiteLimits(ConstantLimits(almaty_w), 0.0)}
    return PowerBudget(FleetPower(cluster), ConstantLimits(astana_w + almaty_w), 0.0, capping=capping, sites=sites)


def _full_w(cluster: Cluster, gpus: int = 8) -> float:
    return FleetPower(cluster).added_w(JobRecord(job(0, gpus, gpu_type="H100"), 0), "H100", 1.0)


def test_each_site_schedules_under_its_own_power_budget(two_sites: Path) -> None:
    """Astana has power for one 8-GPU job, Almaty for many: the second job, placed at Astana by its
    GPUs, starts at Almaty instead; once Almaty's GPUs are taken, a job waits PowerCap though
    Astana has free GPUs (Almaty's spare power is no use there)."""
    cluster = load_cluster(two_sites)
    full = _full_w(cluster)
    hub = Hub(cluster, make_policy("fifo", power=_site_budget(cluster, 1.5 * full, 10 * full)))
    hub.submit(*(job(i, 8, gpu_type="H100", submit=float(i)) for i in range(1, 5)))
    hub.state.apply(hub.cycle(5.0), 5.0)
    site = {j: hub.state.jobs[j].site for j in range(1, 5)}
    assert site == {1: "astana", 2: "almaty", 3: "almaty", 4: ""}
    assert hub.state.jobs[4].reason is PendingReason.POWER_CAP
    assert hub.state.site_draw_w == pytest.approx({"astana": full, "almaty": 2 * full})
    assert hub.state.inventory.free_by_pool["astana/H100"] == 8


def test_capping_to_make_room_at_a_site_caps_only_that_sites_jobs(two_sites: Path) -> None:
    cluster = load_cluster(two_sites)
    full = _full_w(cluster)
    budget = _site_budget(cluster, 0.0, 0.0, capping=True)
    floor = budget.floor_w(JobRecord(job(0, 8, gpu_type="H100"), 0), "H100")
    budget = _site_budget(cluster, 2 * floor + 1.0, 3 * full, capping=True)  # Astana: two jobs only if capped
    hub = Hub(cluster, make_policy("fifo", power=budget))
    hub.submit(job(1, 8, gpu_type="H100"), job(2, 16, gpu_type="H100", submit=1.0))  # 1 at Astana, 2 fills Almaty
    hub.state.apply(hub.cycle(1.0), 1.0)
    assert (hub.state.jobs[1].site, hub.state.jobs[2].site) == ("astana", "almaty")
    assert hub.state.jobs[1].cap_fraction == 1.0 and hub.state.jobs[2].cap_fraction == 1.0
    hub.submit(job(3, 8, gpu_type="H100", submit=2.0), at=2.0)
    plan = hub.cycle(2.0)
    assert [r.job_id for r in plan.recaps] == [1]  # Astana's job gives power to Astana's next; Almaty's is untouched
    hub.state.apply(plan, 2.0)
    assert hub.state.jobs[3].site == "astana" and hub.state.site_draw_w["astana"] <= 2 * floor + 1.0


def test_a_two_site_replay_keeps_every_site_under_its_own_cap_and_meters_each_at_its_own_pue(tmp_path: Path) -> None:
    """The demo fleet at Astana and Almaty with a tight cap at Astana: the replay checks each site's cap
    after every step (it raises on a breach), every job finishes, and each job's facility energy is its
    IT energy times its own site's PUE (the two sites' climates differ)."""
    text = (Path(load_cluster.__code__.co_filename).parent.parent / "data" / "hub-two-sites.toml").read_text()
    path = tmp_path / "capped.toml"
    path.write_text(text.replace('site_file = "astana"\n', 'site_file = "astana"\npower_cap_kw = 40\n'))
    cluster = load_cluster(path)
    trace = load_trace("philly-sample", limit=400)
    power = build_power(cluster, "astana", start="2026-07-15T12:00")
    assert power.budget is not None and set(power.budget.sites) == {"astana", "almaty"}
    result = replay(trace, cluster, "easy-backfill", power=power, keep_jobs=True)
    records = list(result.state.jobs.values())
    assert len(records) == len(trace.jobs) and all(r.end_s is not None for r in records)
    assert result.summary["power_cap_violations"] == 0 and result.summary["capped_jobs"] > 0
    assert set(result.summary["sites"]) == {"astana", "almaty"}
    assert result.summary["sites"]["astana"]["peak_facility_power_w"] <= 40_000 * (1 + 1e-9)
    energy = result.energy
    assert energy is not None
    pue: dict[str, list[float]] = {"astana": [], "almaty": []}
    for job_id, figures in energy.per_job.items():
        if figures["it_energy_kwh"] > 0:
            pue[result.state.jobs[job_id].site].append(figures["facility_energy_kwh"] / figures["it_energy_kwh"])
    assert pue["astana"] and pue["almaty"]
    mean = {site: sum(v) / len(v) for site, v in pue.items()}
    assert abs(mean["almaty"] - mean["astana"]) > 0.01 * mean["astana"]  # two climates in July


def test_the_meter_integrates_each_job_against_its_own_sites_timeline(two_sites: Path) -> None:
    """Two identical jobs over the same three hours of a July day, one per site: each one's facility
    energy is its IT energy times its own site's hourly PUE (summed hour by hour), and they differ."""
    cluster = load_cluster(two_sites)
    power = build_power(cluster, "astana", enforce=False, start="2026-07-15T09:00")
    sink = MemorySink()
    meter = Meter(sink, fleet=power.fleet, timeline=power.timeline, epoch_offset_s=power.timeline.start_utc_s,
                  site_timelines=power.site_timelines)  # fmt: skip
    recs = {}
    for job_id, site in ((1, "astana"), (2, "almaty")):
        rec = recs[site] = JobRecord(job(job_id, 8, gpu_type="H100"), seq=job_id)
        rec.gpu_type, rec.pool, rec.site = "H100", f"{site}/H100", site
        meter.on_start(rec, 1800.0)
        meter.on_stop(rec, 1800.0 + 3 * 3600.0)
    meter.emit()
    got = {r.job_id: r for r in sink.records()}
    watts = power.fleet.gpu_power_w(recs["astana"], "H100", 1.0)
    for job_id, site in ((1, "astana"), (2, "almaty")):
        tl = power.site_timelines[site]
        expect = sum(  # 09:30 to 12:30: half of the first and last hours, all of the two between
            watts * (min(b, 12600.0) - max(a, 1800.0)) / 3.6e6 * tl.pue_at(a)
            for a, b in ((h * 3600.0, (h + 1) * 3600.0) for h in range(4))
        )
        assert got[job_id].facility_kwh == pytest.approx(expect, rel=1e-9)
    assert got[1].it_kwh == pytest.approx(got[2].it_kwh)
    assert got[1].facility_kwh != pytest.approx(got[2].facility_kwh, rel=1e-3)


class OnlyAt:
    """A check that lets jobs run only at ``sites`` (as residency or an approval would)."""

    def __init__(self, sites: frozenset[str]) -> None:
        self.sites = sites

    def check(self, rec: JobRecord, snap: object, extra: Counter[str]) -> PendingReason | None:
        return None

    def sites_for(self, rec: JobRecord) -> frozenset[str] | None:
        return self.sites if rec.spec.tenant == "kz-only" else None


@pytest.mark.parametrize("policy", ["fifo", "easy-backfill", "multifactor", "las"])
def test_placement_keeps_a_job_to_the_sites_its_checks_allow(two_sites: Path, policy: str) -> None:
    """Astana's H100 are full and Almaty's free; a job allowed anywhere starts at Almaty, one allowed
    only at Astana waits (Resources)."""
    cluster = load_cluster(two_sites)
    hub = Hub(cluster, make_policy(policy, checks=(*DEFAULT_CHECKS, OnlyAt(frozenset({"astana"})))))
    hub.run(job(1, 16, tenant="other", gpu_type="H100", runtime=1000.0, preemptible=False))
    assert {cluster.nodes[n].site for n, _ in hub.state.jobs[1].allocation} == frozenset({"astana"})
    hub.submit(job(3, 4, tenant="free", submit=1.0), at=1.0)
    hub.submit(job(2, 4, tenant="kz-only", gpu_type="H100", submit=1.5), at=1.5)
    hub.state.apply(hub.cycle(2.0), 2.0)
    assert hub.state.jobs[2].allocation == () and hub.state.jobs[2].reason is PendingReason.RESOURCES
    assert {cluster.nodes[n].site for n, _ in hub.state.jobs[3].allocation} == frozenset({"almaty"})


TOPOLOGY = load_topology()


def _personal(name: str, allowed: str) -> Dataset:
    return Dataset(name, "KZ", Sensitivity.PERSONAL, "astana", 10**9, frozenset(allowed.split()), frozenset())


def test_residency_chooses_the_sites_a_job_may_use_and_holds_it_only_when_none_may() -> None:
    registry = {"kz": _personal("kz", "KZ"), "eu": _personal("eu", "EU"), "both": _personal("both", "KZ EU")}
    check = ResidencyCheck({1: ["kz"], 2: ["eu"], 3: ["kz", "eu"], 4: ["both"]}, registry, TOPOLOGY, "astana",
                           sites=("astana", "frankfurt"))  # fmt: skip
    check.begin_cycle(0.0)

    def rec(i: int) -> JobRecord:
        return JobRecord(JobSpec(i, 0.0, 1, 1.0, 1.0, tenant="t"), seq=i)

    assert check.sites_for(rec(1)) == frozenset({"astana"}) and check.check(rec(1), None, Counter()) is None  # type: ignore[arg-type]
    assert check.sites_for(rec(2)) == frozenset({"frankfurt"})
    assert check.sites_for(rec(4)) == frozenset({"astana", "frankfurt"})
    assert check.sites_for(rec(5)) is None  # reads no dataset: anywhere
    assert check.check(rec(3), None, Counter()) is PendingReason.DATA_RESIDENCY  # type: ignore[arg-type]
    why = check.why(rec(3))
    assert why is not None and why.startswith("no site of the hub may process its data: ")
    assert "astana" in why and "frankfurt" in why


def test_an_approval_limited_to_one_site_places_the_projects_jobs_there() -> None:
    today = date(2026, 3, 1)
    conditions = ApprovalConditions(today + timedelta(30), allowed_sites=frozenset({"almaty"}))
    approvals = {"kaznu/llm": Approval("kaznu/llm", "kaznu", conditions, "marat", today)}
    check = ReviewCheck(approvals.get, lambda now: today, site="astana", sites=("astana", "almaty"))
    check.begin_cycle(0.0)
    rec = JobRecord(JobSpec(1, 0.0, 1, 1.0, 1.0, tenant="kaznu", project="kaznu/llm"), seq=1)
    snap = Hub.of(1, 8).state
    assert check.check(rec, snap, Counter()) is None
    assert check.sites_for(rec) == frozenset({"almaty"})
    elsewhere = ReviewCheck(approvals.get, lambda now: today, site="astana", sites=("astana", "frankfurt"))
    elsewhere.begin_cycle(0.0)
    assert elsewhere.check(rec, snap, Counter()) is PendingReason.AWAITING_REVIEW
    assert "the hub's sites are astana, frankfurt" in (elsewhere.why(rec) or "")


def test_jobs_start_at_sites_whose_engine_answers_and_wait_engine_down_when_none_does(two_sites: Path) -> None:
    cluster = load_cluster(two_sites)
    up = {"astana": False, "almaty": True}
    engine = EngineAvailable(
        lambda: any(up.values()),
        up_sites=lambda: frozenset(s for s, ok in up.items() if ok),
        all_sites=cluster.site_names,
    )
    hub = Hub(cluster, make_policy("fifo", checks=(engine, *DEFAULT_CHECKS)))
    hub.submit(job(1, 8, gpu_type="H100"), job(2, 8, gpu_type="H100"), job(3, 8, gpu_type="H100"))
    plan = hub.cycle(0.0)
    hub.state.apply(plan, 0.0)
    assert sorted(j for j in (1, 2, 3) if hub.state.jobs[j].allocation) == [1, 2]
    assert all(cluster.nodes[n].site == "almaty" for j in (1, 2) for n, _ in hub.state.jobs[j].allocation)
    assert plan.wakeup_s == 1.0  # astana's engine is down: look again in a second
    up["almaty"] = False
    hub.state.apply(hub.cycle(1.0), 1.0)
    assert hub.state.jobs[3].reason is PendingReason.ENGINE_DOWN
    up["astana"] = True
    hub.state.apply(hub.cycle(2.0), 2.0)
    assert {cluster.nodes[n].site for n, _ in hub.state.jobs[3].allocation} == frozenset({"astana"})


def test_the_executor_of_each_site_runs_the_jobs_placed_there_and_its_handles_say_so(two_sites: Path) -> None:
    cluster = load_cluster(two_sites)
    astana, almaty = MockExecutor(), MockExecutor()
    sites = SiteExecutors({"astana": astana, "almaty": almaty}, [n.site for n in cluster.nodes])
    exits: list[tuple[int, ExitInfo]] = []
    sites.bind(lambda job_id, epoch, info: exits.append((job_id, info)), lambda job_id: None)  # type: ignore[arg-type,return-value]
    hub = Hub(cluster, "fifo")
    hub.run(job(1, 8, gpu_type="H100"))  # the first pool: astana
    hub.run(job(2, 16, gpu_type="H100"))  # astana has 8 left: almaty
    one, two = hub.state.jobs[1], hub.state.jobs[2]
    sites.start(one, 0.0)
    sites.start(two, 0.0)
    assert astana.calls == [("start", 1)] and almaty.calls == [("start", 2)]
    handles = sites.take_launched()
    assert handles[1]["site"] == "astana" and handles[2]["site"] == "almaty"
    assert sites.find_launch(2, two.last_start_s)["site"] == "almaty"  # type: ignore[index]
    sites.stop(two, 5.0)
    assert almaty.calls[-1] == ("stop", 2) and ("stop", 2) not in astana.calls
    assert sites.adopt(one, handles[1]) and not sites.adopt(one, {**handles[1], "site": "aktau"})
    almaty.down = True
    assert sites.reachable() and sites.reachable_sites() == frozenset({"astana"})


def test_the_bundled_two_site_hub_replays_the_philly_excerpt_with_every_job_at_one_site() -> None:
    """The demo fleet split 56 + 8 H100 between Astana and Almaty: every job finishes, each gang at
    one site, and the excerpt's 16-GPU jobs only in Astana (Almaty's one node is too small)."""
    from steppe.twin.readers import load_trace

    trace = load_trace("philly-sample")
    split, whole = load_cluster("hub-two-sites"), load_cluster("hub-sample")
    assert split.gpus_by_type == whole.gpus_by_type == {"H100": 64}
    result = replay(trace, split, "easy-backfill", keep_jobs=True)
    site_of = [n.site for n in split.nodes]
    ran = [r for r in result.state.jobs.values() if r.allocation]
    assert len(ran) > 2_900
    assert all(len({site_of[n] for n, _ in r.allocation}) == 1 for r in ran)
    assert {site_of[r.allocation[0][0]] for r in ran} == {"astana", "almaty"}
    big = [r for r in ran if r.gpus > 8]
    assert big and all(site_of[r.allocation[0][0]] == "astana" for r in big)
    assert result.summary["rejected"] == replay(trace, whole, "easy-backfill").summary["rejected"] == 0


def test_a_site_with_power_to_spare_is_preferred_to_capping_jobs_at_another(two_sites: Path) -> None:
    """Astana could take a second job only by capping the first; Almaty has power and GPUs to spare:
    the second job starts at Almaty at full power and nothing is capped, whether the two jobs start
    in one cycle or in two (capping is the last resort while another site has power to spare)."""
    cluster = load_cluster(two_sites)
    full = _full_w(cluster, 4)
    floor = _site_budget(cluster, 0.0, 0.0, capping=True).floor_w(JobRecord(job(0, 4, gpu_type="H100"), 0), "H100")
    for together in (True, False):
        budget = _site_budget(cluster, full + floor + 1.0, 10 * full, capping=True)
        hub = Hub(cluster, make_policy("fifo", power=budget))
        hub.submit(job(1, 4, gpu_type="H100"))
        if not together:
            hub.state.apply(hub.cycle(0.0), 0.0)
        hub.submit(job(2, 4, gpu_type="H100", submit=1.0), at=1.0)
        plan = hub.cycle(1.0)
        hub.state.apply(plan, 1.0)
        assert not plan.recaps, together
        assert (hub.state.jobs[1].site, hub.state.jobs[2].site) == ("astana", "almaty"), together
        assert hub.state.jobs[1].cap_fraction == hub.state.jobs[2].cap_fraction == 1.0


def test_a_node_is_down_only_when_its_own_sites_engine_answers_without_it(two_sites: Path) -> None:
    """Astana's engine lists one of its two nodes: the other is down. Almaty's lists none of its
    nodes by their names (a Ray cluster whose hosts are named otherwise): none of Almaty's is down."""
    cluster = load_cluster(two_sites)
    names = [n.name for n in cluster.nodes]
    astana = MockExecutor({"ast-h100-001": (0, 1, 2, 3, 4, 5, 6, 7)})
    almaty = MockExecutor({"ray-host": (0, 1)})
    sites = SiteExecutors({"astana": astana, "almaty": almaty}, [n.site for n in cluster.nodes], names)
    assert sites.down_nodes(names) == frozenset({"ast-h100-002"})
    astana.down = True  # an engine that does not answer says nothing of its nodes
    assert sites.down_nodes(names) == frozenset()
