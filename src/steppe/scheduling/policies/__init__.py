"""Policies registered by name. An unknown name fails with the list of valid names.

>>> sorted(POLICIES)
['easy-backfill', 'fifo', 'las', 'multifactor', 'srtf']
>>> make_policy("easy-backfill").name
'easy-backfill'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from steppe.core.errors import UnknownNameError
from steppe.scheduling.policies.base import Policy
from steppe.scheduling.policies.easy_backfill import EasyBackfillPolicy
from steppe.scheduling.policies.fifo import FifoPolicy
from steppe.scheduling.policies.las import LasPolicy
from steppe.scheduling.policies.multifactor import MultifactorPolicy
from steppe.scheduling.policies.srtf import SrtfPolicy

POLICIES: dict[str, Callable[..., Policy]] = {
    "fifo": FifoPolicy,
    "easy-backfill": EasyBackfillPolicy,
    "multifactor": MultifactorPolicy,
    "las": LasPolicy,
    "srtf": SrtfPolicy,
}


def make_policy(name: str, **options: Any) -> Policy:
    """A fresh policy instance (policies keep per-replay indexes, so never share one)."""
    factory = POLICIES.get(name)
    if factory is None:
        raise UnknownNameError("policy", name, list(POLICIES))
    return factory(**options)


__all__ = ["POLICIES", "Policy", "make_policy"]
