"""Operators' commands, as Slurm names them: ``steppe node drain|resume`` (``scontrol update
nodename=... state=drain|resume``), ``steppe sprio`` and ``steppe sshare``.

Each calls the SDK once and prints a table (``--json`` for scripts). ``sprio`` prints each
factor weighted, as Slurm's ``sprio`` does; a policy without multifactor priority shows the
queue position and ``-`` for the factors. ``sshare`` prints Slurm's columns for a flat tree of
organisations.
"""

from __future__ import annotations

from typing import Annotated

import typer

from steppe.cli import hub_commands
from steppe.cli.hub_commands import JsonOpt, _emit

node_app = typer.Typer(help="Drain and resume nodes (hub-admin).", no_args_is_help=True)


@node_app.command("drain")
def drain(
    node: Annotated[str, typer.Argument(help="node name, as steppe nodes shows it")],
    reason: Annotated[str, typer.Option("--reason", help="why (required; shown by steppe nodes and audited)")],
) -> None:
    """Drain a node: jobs running there finish, nothing new starts there.

    The node shows DRAINING while its jobs run, then DRAIN; kept across restarts.

    Example: steppe node drain node001 --reason 'replace fan'
    """
    n = hub_commands._client().drain_node(node, reason)
    typer.echo(f"Node {n.name} is {n.state.upper()}: {n.reason}")


@node_app.command("resume")
def resume(
    node: Annotated[str, typer.Argument(help="node name")],
    reason: Annotated[str, typer.Option("--reason", help="why (optional; audited)")] = "",
) -> None:
    """Give a drained node back to the scheduler.

    Example: steppe node resume node001 --reason 'fan replaced'
    """
    n = hub_commands._client().resume_node(node, reason)
    typer.echo(f"Node {n.name} is {n.state.upper()}")


def _num(x: float | None, fmt: str = ".0f") -> str:
    return "-" if x is None else format(x, fmt)


def sprio(
    jobs: Annotated[list[int] | None, typer.Option("--jobs", "-j", help="only this job id (repeatable)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Pending jobs' priority and its factors (like sprio).

    AGE, FAIRSHARE, JOBSIZE and QOS are weighted, as the multifactor policy adds them.

    Example: steppe sprio ; steppe sprio -j 42
    """
    items = hub_commands._client().priorities(jobs)
    rows = [[str(p.job_id), p.org, p.project, str(p.position), _num(p.priority), _num(p.age), _num(p.fairshare),
             _num(p.job_size), _num(p.qos)] for p in items]  # fmt: skip
    header = ["JOBID", "ACCOUNT", "PROJECT", "POS", "PRIORITY", "AGE", "FAIRSHARE", "JOBSIZE", "QOS"]
    _emit(list(items), as_json, header, rows)


def sshare(as_json: JsonOpt = False) -> None:
    """Organisations' shares, decayed usage and fair-share factor (like sshare).

    RawUsage is decayed GPU-seconds; FairShare is 2^(-EffectvUsage/NormShares).

    Example: steppe sshare
    """
    items = hub_commands._client().shares()
    rows = [[s.org, f"{s.raw_shares:g}", f"{s.norm_shares:.6f}", f"{s.raw_usage:.0f}", f"{s.norm_usage:.6f}",
             f"{s.effective_usage:.6f}", _num(s.fairshare, ".6f")] for s in items]  # fmt: skip
    _emit(list(items), as_json, ["Account", "RawShares", "NormShares", "RawUsage", "NormUsage", "EffectvUsage",
                                 "FairShare"], rows)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the operators' commands to the ``steppe`` app."""
    app.add_typer(node_app, name="node")
    app.command("sprio")(sprio)
    app.command("sshare")(sshare)
