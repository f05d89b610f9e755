"""``steppe simulate``, ``steppe compare`` and ``steppe sweep``: replay a trace through the twin."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from steppe.cli.render import (
    energy_table,
    print_notes,
    summary_table,
    sweep_table,
    tenant_energy_table,
    tenant_table,
)
from steppe.core.cluster_config import load_cluster
from steppe.core.units import parse_duration, parse_power
from steppe.energy.signals import TimelineSignal
from steppe.scheduling.admission import DEFAULT_CHECKS, AdmissionCheck
from steppe.scheduling.deferral import DeferralCheck
from steppe.scheduling.policies import make_policy
from steppe.twin.deferral import deferral_savings, mark_deferrable
from steppe.twin.power import DEFAULT_START, PowerSetup, build_power
from steppe.twin.readers import load_trace
from steppe.twin.replay import ReplayResult, replay
from steppe.twin.report import full_summary, script_view, trace_provenance, write_results
from steppe.twin.sweep_config import SweepInputError, load_checked_trace, sweep_from_inputs
from steppe.twin.sweep_output import sweep_json, write_sweep_outputs
from steppe.twin.sweep_run import choose_backend, run_sweep
from steppe.twin.trace import Trace

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

TraceOpt = Annotated[
    str, typer.Option("--trace", help="FORMAT:PATH (philly, swf, alibaba, csv, synthetic) or philly-sample")
]
ClusterOpt = Annotated[str, typer.Option("--cluster", help="cluster TOML file, bundled name, or NODESxGPUS:TYPE")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="directory for per-job CSV, summary JSON and plots")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the summary as JSON (for scripts)")]
FactorOpt = Annotated[float, typer.Option("--walltime-factor", help="derived walltime = runtime x factor")]
RoundOpt = Annotated[float, typer.Option("--walltime-round", help="derived walltime rounded up to (seconds)")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="replay only the first N jobs")]
SeedOpt = Annotated[int, typer.Option("--seed", help="seed for synthetic traces, weather noise and deferral")]
SiteOpt = Annotated[
    str | None, typer.Option("--site", help="site (astana, almaty or a TOML file): meters energy, carbon, cost")
]
CapOpt = Annotated[
    str | None, typer.Option("--power-cap", help="facility base cap, e.g. 20MW (site windows keep their ratio)")
]
PowerPolicyOpt = Annotated[
    str, typer.Option("--power-policy", help="under a cap: 'cap' (lower per-job GPU caps first) or 'hold'")
]
FloorOpt = Annotated[float, typer.Option("--cap-floor", help="lowest per-job GPU cap, fraction of TDP")]
StartOpt = Annotated[str, typer.Option("--start", help="calendar time of t=0 at the site (local), whole hour")]
DeferOpt = Annotated[
    str | None, typer.Option("--defer", help="compare 'lowest-window' deferral with 'run-now' for deferrable jobs")
]
DeferrableOpt = Annotated[float, typer.Option("--deferrable", help="share of jobs marked deferrable (0-1)")]
DeadlineOpt = Annotated[str, typer.Option("--deadline", help="deferrable jobs' deadline after submit (Slurm time)")]
SignalOpt = Annotated[str, typer.Option("--defer-signal", help="what deferral minimises: carbon or cost")]
InvOpt = Annotated[bool, typer.Option("--check-invariants/--no-check-invariants", help="check invariants")]


def _load(trace: str, factor: float, round_s: float, seed: int, limit: int | None) -> Trace:
    return load_trace(trace, walltime_factor=factor, walltime_round_s=round_s, seed=seed, limit=limit)


def _power(
    cluster_spec: str, site: str | None, power_cap: str | None, power_policy: str, floor: float, start: str, seed: int
) -> PowerSetup | None:
    cluster = load_cluster(cluster_spec)
    site_caps = any(s.power_cap_w is not None for s in cluster.sites.values())  # a fleet at several sites
    if site is None and power_cap is None and not site_caps:
        return None
    if power_policy not in ("cap", "hold"):
        raise typer.BadParameter("must be 'cap' or 'hold'", param_hint="--power-policy")
    cap_w = parse_power(power_cap) if power_cap is not None else None
    return build_power(
        cluster,
        site or "astana",
        power_cap_w=cap_w,
        capping=power_policy == "cap",
        enforce=cap_w is not None or site_caps,
        floor=floor,
        start=start,
        seed=seed,
    )


def _run(
    tr: Trace,
    cluster_spec: str,
    policy: str,
    quiet: bool,
    check: bool,
    power: PowerSetup | None = None,
    checks: tuple[AdmissionCheck, ...] | None = None,
) -> ReplayResult:
    cluster = load_cluster(cluster_spec)
    make_policy(policy)  # an unknown name fails before any work
    if quiet:
        return replay(tr, cluster, policy, check_invariants=check, power=power, checks=checks)
    with Progress(
        TextColumn(f"[bold]{policy}[/bold]"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} jobs"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(policy, total=len(tr.jobs))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done)

        return replay(tr, cluster, policy, check_invariants=check, progress=progress, power=power, checks=checks)


def simulate(
    trace: TraceOpt,
    cluster: ClusterOpt = "hub-sample",
    policy: Annotated[str, typer.Option("--policy", help="fifo, easy-backfill, multifactor, las, srtf")] = "fifo",
    out: OutOpt = None,
    as_json: JsonOpt = False,
    walltime_factor: FactorOpt = 2.0,
    walltime_round: RoundOpt = 3600.0,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    check_invariants: InvOpt = True,
    site: SiteOpt = None,
    power_cap: CapOpt = None,
    power_policy: PowerPolicyOpt = "cap",
    cap_floor: FloorOpt = 0.6,
    start: StartOpt = DEFAULT_START,
    defer: DeferOpt = None,
    deferrable: DeferrableOpt = 0.3,
    deadline: DeadlineOpt = "1-00:00:00",
    defer_signal: SignalOpt = "carbon",
) -> None:
    """Replay a trace under one policy and print its summary.

    With --site: energy, carbon and cost; with --power-cap: scheduled under
    the facility cap; with --defer: deferral savings.

    Example: steppe simulate --trace philly-sample --cluster 4x8:H100 --policy las
    """
    tr = _load(trace, walltime_factor, walltime_round, seed, limit)
    power = _power(cluster, site, power_cap, power_policy, cap_floor, start, seed)
    deferral: dict[str, Any] | None = None
    if defer is not None:
        if power is None:
            raise typer.BadParameter("deferral needs a --site", param_hint="--defer")
        if defer != "lowest-window":
            raise typer.BadParameter("the policy to compare with run-now: lowest-window", param_hint="--defer")
        tr = mark_deferrable(tr, deferrable, parse_duration(deadline), seed)
        signal = TimelineSignal(power.timeline, defer_signal)
        baseline = _run(
            tr, cluster, policy, as_json, check_invariants, power, (*DEFAULT_CHECKS, DeferralCheck(signal, "run-now"))
        )
        power = _power(cluster, site, power_cap, power_policy, cap_floor, start, seed)
        result = _run(
            tr,
            cluster,
            policy,
            as_json,
            check_invariants,
            power,
            (*DEFAULT_CHECKS, DeferralCheck(signal, "lowest-window")),
        )
        span = (0.0, float(result.summary["makespan_s"]))
        deferral = deferral_savings(baseline, result, signal.spread(*span), defer_signal)
        result.summary["deferral"] = deferral
    else:
        result = _run(tr, cluster, policy, as_json, check_invariants, power)
    summary = full_summary(result, tr)
    if out is not None:
        write_results(result, tr, out)
        if result.energy is not None:
            from steppe.twin.plots import plot_power

            result.energy.write_csvs(out, result.policy)
            plot_power(result, out / f"{result.policy}-power.png")
    if as_json:
        view = script_view(summary)
        view["trace_provenance"] = trace_provenance(tr)
        typer.echo(json.dumps(view, indent=2, sort_keys=True))
        return
    console.print(summary_table([summary], f"{tr.source} on {result.summary['cluster']}"))
    console.print(tenant_table(summary["tenants"]))
    if result.energy is not None:
        console.print(energy_table([summary]))
        console.print(tenant_energy_table(result.energy.tenants(), result.summary))
    if deferral is not None:
        console.print(f"[bold]deferral[/bold] ({deferral['deferrable_jobs']:,} deferrable jobs): {deferral['verdict']}")
    print_notes(console, trace_provenance(tr))
    if out is not None:
        console.print(f"results written to {out}/")


def compare(
    trace: TraceOpt,
    cluster: ClusterOpt = "hub-sample",
    policies: Annotated[str, typer.Option("--policies", help="comma-separated policy names")] = (
        "fifo,easy-backfill,multifactor,las"
    ),
    out: OutOpt = None,
    as_json: JsonOpt = False,
    walltime_factor: FactorOpt = 2.0,
    walltime_round: RoundOpt = 3600.0,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    check_invariants: InvOpt = True,
    site: SiteOpt = None,
    power_cap: CapOpt = None,
    power_policy: PowerPolicyOpt = "cap",
    cap_floor: FloorOpt = 0.6,
    start: StartOpt = DEFAULT_START,
) -> None:
    """Replay one trace under several policies, side by side.

    A table, and a PNG of JCT CDFs and utilization.

    Example: steppe compare --trace philly-sample --cluster 4x8:H100 --policies fifo,las
    """
    names = [p.strip() for p in policies.split(",") if p.strip()]
    if not names:
        raise typer.BadParameter("give at least one policy", param_hint="--policies")
    for name in names:
        make_policy(name)  # fail fast on an unknown name, before any replay
    tr = _load(trace, walltime_factor, walltime_round, seed, limit)
    results = [
        _run(
            tr,
            cluster,
            name,
            as_json,
            check_invariants,
            _power(cluster, site, power_cap, power_policy, cap_floor, start, seed),
        )
        for name in names
    ]
    if out is not None:
        from steppe.twin.plots import plot_comparison

        for res in results:
            write_results(res, tr, out)
        plot_path = plot_comparison(results, out / "compare.png")
    if as_json:
        typer.echo(json.dumps({r.policy: script_view(r.summary) for r in results}, indent=2, sort_keys=True))
        return
    console.print(summary_table([r.summary for r in results], f"{tr.source} on {results[0].summary['cluster']}"))
    if results[0].energy is not None:
        console.print(energy_table([r.summary for r in results]))
    print_notes(console, trace_provenance(tr))
    if out is not None:
        console.print(f"results and plot written to {plot_path}")


def sweep(
    trace: Annotated[
        str | None, typer.Option("--trace", help="FORMAT:PATH (philly, swf, alibaba, csv, synthetic) or philly-sample")
    ] = None,
    clusters: Annotated[
        str | None,
        typer.Option("--clusters", help="comma-separated clusters: TOML files, bundled names, NODESxGPUS:TYPE"),
    ] = None,
    policies: Annotated[
        str | None,
        typer.Option("--policies", help="comma-separated policies (default fifo,easy-backfill,multifactor,las)"),
    ] = None,
    power_caps: Annotated[
        str | None, typer.Option("--power-caps", help="comma-separated facility caps, 'none' for no cap: none,500kW")
    ] = None,
    sites: Annotated[
        str | None, typer.Option("--sites", help="comma-separated sites, 'none' for no site (a capped point: astana)")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML file with any of these options (the command line wins)")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="worker processes (default: the CPU count)")] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray", help="run on Ray: auto, local, HOST:PORT or ray://HOST:PORT (default: $RAY_ADDRESS if set)"
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="directory for sweep.csv, sweep.json and sweep.png")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a list, one object per replay (for scripts)")] = False,
    limit: LimitOpt = None,
    seed: Annotated[int | None, typer.Option("--seed", help="seed for synthetic traces and weather noise")] = None,
    walltime_factor: Annotated[
        float | None, typer.Option("--walltime-factor", help="walltime = runtime x factor")
    ] = None,
    walltime_round: Annotated[
        float | None, typer.Option("--walltime-round", help="derived walltime rounded up to (seconds)")
    ] = None,
    power_policy: Annotated[
        str | None, typer.Option("--power-policy", help="under a cap: 'cap' (lower GPU caps first) or 'hold'")
    ] = None,
    cap_floor: Annotated[
        float | None, typer.Option("--cap-floor", help="lowest per-job GPU cap, fraction of TDP")
    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="calendar time of t=0 at the site, whole hour")] = None,
    check_invariants: Annotated[
        bool | None, typer.Option("--check-invariants/--no-check-invariants", help="check invariants (default on)")
    ] = None,
) -> None:
    """Replay one trace at every point of clusters x policies x power caps x sites.

    Replays run in parallel worker processes or on Ray; a table, and with --out
    a CSV, a JSON list and a PNG of JCT and wait against GPUs.

    Example: steppe sweep --trace philly-sample --clusters 2x8:H100,4x8:H100
    """
    if workers is not None and workers < 1:
        raise SweepInputError(f"--workers: expected at least 1, got {workers} (e.g. --workers 4)")
    if ray_address is not None and not ray_address.strip():
        raise SweepInputError("--ray: an empty address (e.g. --ray auto, --ray local or --ray 10.0.0.5:6379)")
    plan = sweep_from_inputs(
        {
            "trace": trace,
            "clusters": clusters,
            "policies": policies,
            "power_caps": power_caps,
            "sites": sites,
            "limit": limit,
            "seed": seed,
            "walltime_factor": walltime_factor,
            "walltime_round": walltime_round,
            "power_policy": power_policy,
            "cap_floor": cap_floor,
            "start": start,
            "check_invariants": check_invariants,
        },
        config,
    )
    backend = choose_backend(workers, ray_address)
    tr = load_checked_trace(plan)
    total = len(plan.points())
    if as_json:
        rows = run_sweep(plan, tr, backend)
    else:
        with Progress(
            TextColumn("[bold]sweep[/bold]"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} replays"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task("sweep", total=total)

            def progress(done: int, _total: int) -> None:
                bar.update(task, completed=done)

            rows = run_sweep(plan, tr, backend, progress)
    if out is not None:
        write_sweep_outputs(rows, out)
    if as_json:
        typer.echo(sweep_json(rows))
        return
    console.print(sweep_table(rows, f"{tr.source}: {total} replays"))
    print_notes(console, trace_provenance(tr))
    if out is not None:
        console.print(f"sweep.csv, sweep.json and sweep.png written to {out}/")
