"""Errors raised on bad user input. Each names where the problem is and what is wrong."""

from __future__ import annotations


class SteppeError(Exception):
    """Base class for every error Steppe reports to a user (never a traceback)."""


class ConfigError(SteppeError):
    """A configuration file or value is invalid.

    >>> str(ConfigError("hub.toml", "nodes[0].gpus", "must be a positive integer, got -1"))
    'hub.toml: nodes[0].gpus: must be a positive integer, got -1'
    """

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


class TraceError(SteppeError):
    """A trace file has a bad row.

    >>> str(TraceError("philly.csv", 12, "num_gpus: not an integer: 'x'"))
    "philly.csv:12: num_gpus: not an integer: 'x'"
    """

    def __init__(self, path: str, line: int, problem: str) -> None:
        self.path, self.line, self.problem = path, line, problem
        super().__init__(f"{path}:{line}: {problem}")


class UnknownNameError(SteppeError):
    """A name looked up in a registry does not exist; the message lists the valid names."""

    def __init__(self, kind: str, name: str, valid: list[str]) -> None:
        self.kind, self.name, self.valid = kind, name, valid
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}")
