"""The ``steppe`` entry point. Errors in user input print one clear line and exit 1; usage errors exit 2."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from steppe.cli import hub_commands, twin_commands
from steppe.core.errors import SteppeError

app = typer.Typer(
    name="steppe",
    help="Steppe: control plane and digital twin for a regional AI compute hub.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("simulate")(twin_commands.simulate)
app.command("compare")(twin_commands.compare)
hub_commands.register(app)


def main() -> None:
    """Run the CLI: exit 0 on success, 1 on an error in the user's input or files, 2 on bad usage.

    Typer reports usage errors itself (exit 2); errors found in files and values the user
    gave surface as ``SteppeError`` (or ``ValueError``/``OSError``) and print one line.
    """
    try:
        app()
    except (SteppeError, ValueError, OSError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
