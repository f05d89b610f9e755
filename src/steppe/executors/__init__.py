"""Executors run what the scheduler started: one protocol (``base``), a fake for the twin, real ones for the hub.

The live hub's executors are a registry keyed by name, as policies and trace readers are:

>>> sorted(EXECUTORS)
['local', 'mock', 'ray', 'slurm']
>>> make_executor("slurmish", ExecutorSetup(Path("."), {}, []))
Traceback (most recent call last):
...
steppe.core.errors.UnknownNameError: unknown executor 'slurmish'; valid: local, mock, ray, slurm
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from steppe.core.errors import UnknownNameError
from steppe.executors.accounts import AccountMap
from steppe.executors.base import Executor


@dataclass(frozen=True)
class ExecutorSetup:
    """What the hub knows when it builds its executor."""

    data_dir: Path
    devices: dict[int, list[int]]
    node_names: list[str]
    grace_s: float = 10.0
    accounts: AccountMap | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    """How to reach the engine (``steppe serve --executor-opt KEY=VALUE``), e.g. ``conf=/etc/slurm/slurm.conf``."""


def _local(setup: ExecutorSetup) -> Executor:
    from steppe.executors.local import LocalExecutor

    return LocalExecutor(setup.data_dir, setup.devices, setup.node_names, setup.grace_s, setup.accounts)


def _mock(setup: ExecutorSetup) -> Executor:
    from steppe.executors.mock import MockExecutor

    return MockExecutor()


def _slurm(setup: ExecutorSetup) -> Executor:
    from steppe.executors.slurm import SlurmExecutor

    return SlurmExecutor(setup.data_dir, setup.node_names, setup.grace_s, setup.accounts, setup.options)


def _ray(setup: ExecutorSetup) -> Executor:
    from steppe.executors.ray import RayExecutor

    return RayExecutor(setup.data_dir, setup.node_names, setup.options, setup.grace_s)


EXECUTORS: dict[str, Callable[[ExecutorSetup], Executor]] = {
    "local": _local, "mock": _mock, "ray": _ray, "slurm": _slurm,
}  # fmt: skip


def make_executor(name: str, setup: ExecutorSetup) -> Executor:
    """A new executor by registry name; an unknown name lists the valid ones."""
    factory = EXECUTORS.get(name)
    if factory is None:
        raise UnknownNameError("executor", name, list(EXECUTORS))
    return factory(setup)


__all__ = ["EXECUTORS", "Executor", "ExecutorSetup", "make_executor"]
