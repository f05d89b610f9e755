"""``--executor-opt KEY=VALUE``: a malformed option, or one the chosen engine does not know, is refused
in one line naming the option, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from steppe.cli.main import app as cli_app
from steppe.core.errors import SteppeError
from steppe.executors import ExecutorSetup, make_executor


def test_serve_refuses_an_option_without_a_value() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--executor", "slurm", "--executor-opt", "conf"])
    assert result.exit_code == 2
    assert "--executor-opt" in result.output and "KEY=VALUE" in result.output


@pytest.mark.parametrize(
    ("name", "options", "words"),
    [
        ("slurm", {"confx": "/etc/slurm/slurm.conf"}, ["confx", "valid"]),
        ("slurm", {"poll_s": "soon"}, ["poll_s", "seconds"]),
        ("ray", {"adress": "http://127.0.0.1:8265"}, ["adress", "valid"]),
        ("ray", {}, ["address", "http://HEAD:8265"]),
        ("ray", {"address": "http://127.0.0.1:8265", "allow_public": "maybe"}, ["allow_public", "yes or no"]),
    ],
)
def test_an_engine_refuses_options_it_does_not_know_in_one_line(
    name: str, options: dict[str, str], words: list[str], tmp_path: Path
) -> None:
    with pytest.raises(SteppeError) as caught:
        executor = make_executor(name, ExecutorSetup(tmp_path, {0: [0]}, ["node001"], options=options))
        executor.close()
    message = str(caught.value)
    assert "\n" not in message and all(w in message for w in words), message
