"""``steppe simulate`` and ``steppe compare``: replay a trace through the twin."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from steppe.cli.render import print_notes, summary_table, tenant_table
from steppe.core.cluster_config import load_cluster
from steppe.scheduling.policies import make_policy
from steppe.twin.readers import load_trace
from steppe.twin.replay import ReplayResult, replay
from steppe.twin.report import SCRIPT_KEYS, full_summary, trace_provenance, write_results
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
SeedOpt = Annotated[int, typer.Option("--seed", help="seed for synthetic traces")]
InvOpt = Annotated[bool, typer.Option("--check-invariants/--no-check-invariants", help="check invariants")]


def _load(trace: str, factor: float, round_s: float, seed: int, limit: int | None) -> Trace:
    return load_trace(trace, walltime_factor=factor, walltime_round_s=round_s, seed=seed, limit=limit)


def _run(tr: Trace, cluster_spec: str, policy: str, quiet: bool, check: bool) -> ReplayResult:
    cluster = load_cluster(cluster_spec)
    pol = make_policy(policy)
    if quiet:
        return replay(tr, cluster, pol, check_invariants=check)
    with Progress(
        TextColumn(f"[bold]{policy}[/bold]"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} jobs"),
        TimeElapsedColumn(), console=err_console, transient=True,
    ) as bar:
        task = bar.add_task(policy, total=len(tr.jobs))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done)

        return replay(tr, cluster, pol, check_invariants=check, progress=progress)


def _script_view(summary: dict[str, Any]) -> dict[str, Any]:
    keys = (*SCRIPT_KEYS, "median_jct_s", "p95_jct_s", "mean_bounded_slowdown", "preemptions", "rejected",
            "unfinished", "policy", "oracle", "cluster", "gpus", "trace", "event_digest")
    return {k: summary[k] for k in keys if k in summary}


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
) -> None:
    """Replay a trace under one policy and print its summary."""
    tr = _load(trace, walltime_factor, walltime_round, seed, limit)
    result = _run(tr, cluster, policy, as_json, check_invariants)
    summary = full_summary(result, tr)
    if out is not None:
        write_results(result, tr, out)
    if as_json:
        view = _script_view(summary)
        view["trace_provenance"] = trace_provenance(tr)
        typer.echo(json.dumps(view, indent=2, sort_keys=True))
        return
    console.print(summary_table([summary], f"{tr.source} on {result.summary['cluster']}"))
    console.print(tenant_table(summary["tenants"]))
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
) -> None:
    """Replay one trace under several policies; side-by-side table and a PNG of JCT CDFs and utilization."""
    names = [p.strip() for p in policies.split(",") if p.strip()]
    if not names:
        raise typer.BadParameter("give at least one policy", param_hint="--policies")
    for name in names:
        make_policy(name)  # fail fast on an unknown name, before any replay
    tr = _load(trace, walltime_factor, walltime_round, seed, limit)
    results = [_run(tr, cluster, name, as_json, check_invariants) for name in names]
    if out is not None:
        from steppe.twin.plots import plot_comparison

        for res in results:
            write_results(res, tr, out)
        plot_path = plot_comparison(results, out / "compare.png")
    if as_json:
        typer.echo(json.dumps({r.policy: _script_view(r.summary) for r in results}, indent=2, sort_keys=True))
        return
    console.print(summary_table([r.summary for r in results], f"{tr.source} on {results[0].summary['cluster']}"))
    print_notes(console, trace_provenance(tr))
    if out is not None:
        console.print(f"results and plot written to {plot_path}")
