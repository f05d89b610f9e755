"""The ``steppe`` entry point. Errors in user input print one clear line and exit 1; usage errors exit 2."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError

from steppe.cli import account_commands, hub_commands, twin_commands
from steppe.cli.render import print_error
from steppe.client import models as m
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
app.command("sweep")(twin_commands.sweep)
hub_commands.register(app)
account_commands.register(app)


def main() -> None:
    """Run the CLI: exit 0 on success, 1 on an error in the user's input or files, 2 on bad usage.

    Typer reports usage errors itself (exit 2); errors found in files and values the user
    gave surface as ``SteppeError`` (or ``ValueError``/``OSError``) and print one line. A request
    the API models refuse (the same checks the hub makes) prints ``field: what is wrong (e.g. ...)``.
    """
    try:
        app()
    except ValidationError as exc:
        model = getattr(m, exc.title, None)
        print_error(f"invalid request: {m.one_line(exc, model if isinstance(model, type) else None)}")
        sys.exit(1)
    except (SteppeError, ValueError, OSError) as exc:
        print_error(str(exc))
        sys.exit(1)
