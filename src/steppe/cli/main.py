"""The ``steppe`` entry point. Errors in user input print one clear line and exit 1; usage errors exit 2.

Every error is one line on stderr, ``error: ...``: a usage error (an unknown option, a value of the
wrong form) names the option and the accepted form, e.g. ``error: --starttime: 'soon' is not a
time; use now, now-1hour, ... (e.g. now-1hour or 2026-11-30T15:00) (see steppe history --help)``.
"""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError

from steppe import __version__
from steppe.cli import account_commands, hub_commands, operator_commands, twin_commands
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
operator_commands.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"steppe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", help="print the version and exit", is_eager=True, callback=_version
    ),
) -> None:
    """Steppe: control plane and digital twin for a regional AI compute hub.

    Example: steppe queue -u alice ; steppe submit -A kaznu/nlp -G 2 -t 1:00:00 train.sh
    """


def usage_line(exc: typer.TyperException) -> str:
    """A usage error as one line: the option or argument, what is wrong, and where the help is.

    A value typer could not convert (``show abc``) is explained as the API explains a field
    (``JOB_ID: must be an integer, not a string (got 'abc')``), never as pydantic's own text.
    """
    message = getattr(exc, "message", None) or exc.format_message()
    cause = exc.__cause__
    if isinstance(cause, ValidationError) and cause.errors():
        err = cause.errors(include_url=False)[0]
        message = f"{m.explain(err)['message']} (got {err.get('input')!r})"
    hint: object = None
    if isinstance(exc, typer.BadParameter):
        hint = exc.param_hint
        param = exc.param
        if hint is None and param is not None:
            opts = getattr(param, "opts", [])
            hint = "/".join(opts) if getattr(param, "param_type_name", "") == "option" else str(param.name).upper()
    ctx = getattr(exc, "ctx", None)
    where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    prefix = f"{hint}: " if isinstance(hint, str) and hint else ""
    return prefix + " ".join(str(message).split()) + where


def main() -> None:
    """Run the CLI: exit 0 on success, 1 on an error in the user's input or files, 2 on bad usage.

    Usage errors (click's) print one line (``usage_line``) and exit 2; errors found in files and values the user
    gave surface as ``SteppeError`` (or ``ValueError``/``OSError``) and print one line. A request
    the API models refuse (the same checks the hub makes) prints ``field: what is wrong (e.g. ...)``.
    """
    try:
        code = app(prog_name="steppe", standalone_mode=False)
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help, already printed (rich) or in the message
            text = exc.format_message()
            if text.strip():
                typer.echo(text, err=True)
        else:
            print_error(usage_line(exc))
        sys.exit(exc.exit_code)
    except typer.Abort:
        print_error("aborted")
        sys.exit(1)
    except ValidationError as exc:
        model = getattr(m, exc.title, None)
        print_error(f"invalid request: {m.one_line(exc, model if isinstance(model, type) else None)}")
        sys.exit(1)
    except (SteppeError, ValueError, OSError) as exc:
        print_error(str(exc))
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
