"""``steppe balance`` and ``steppe usage``: a project's GPU-hours, for every member (not only admins).

``balance -A ORG/PROJECT`` prints the allocation in force, the GPU-hours used in its period and
what is left (like Slurm's ``sshare``/``sbank balance``); ``usage -A ORG/PROJECT [--period P]``
prints GPU-hours and jobs per user of the project (like ``sreport ... user``). Both ask the hub
through the SDK; another organisation's project is "not found", as a missing one.

Example::

    $ steppe balance -A kaznu/nlp
    PROJECT    PERIOD   GRANTED  USED  LEFT
    kaznu/nlp  2026-Q2  100.00   1.50  98.50
"""

from __future__ import annotations

from typing import Annotated

import typer

from steppe.cli.governance_commands import print_table
from steppe.client import HubClient

ProjectArg = Annotated[str, typer.Option("--project", "-A", help="ORG/PROJECT, e.g. kaznu/nlp")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON (for scripts)")]


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def balance(project: ProjectArg, as_json: JsonOpt = False) -> None:
    """GPU-hours granted to a project for the current period, used and left.

    Example: steppe balance -A kaznu/nlp
    """
    b = HubClient.from_config().balance(project)
    if as_json:
        typer.echo(b.model_dump_json(indent=2))
        return
    print_table(["PROJECT", "PERIOD", "GRANTED", "USED", "LEFT"],
                [[b.project, b.period or "none", _hours(b.granted_gpu_hours), _hours(b.used_gpu_hours),
                  _hours(b.left_gpu_hours)]])  # fmt: skip
    if b.period is None:
        typer.echo(f"{b.project} has no allocation in force: USED counts all its usage")


def usage(
    project: ProjectArg,
    period: Annotated[str | None, typer.Option(help="YYYY, YYYY-H1, YYYY-Q1 or YYYY-MM (default: all)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """GPU-hours and jobs per user of a project.

    Example: steppe usage -A kaznu/nlp --period 2026-Q2
    """
    items = HubClient.from_config().usage_by_user(project, period)
    if as_json:
        typer.echo("[" + ",".join(u.model_dump_json() for u in items) + "]")
        return
    rows = [[u.user, str(u.jobs), f"{u.gpu_hours:.3f}"] for u in items]
    total = sum(u.gpu_hours for u in items)
    print_table(["USER", "JOBS", "GPU_HOURS"], [*rows, ["total", str(sum(u.jobs for u in items)), f"{total:.3f}"]])


def register(app: typer.Typer) -> None:
    """Add ``balance`` and ``usage`` to the ``steppe`` app."""
    app.command("balance")(balance)
    app.command("usage")(usage)
