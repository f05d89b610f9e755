"""The hub the API serves: ``steppe.app.hub.Hub``, wired by ``steppe.app.bootstrap``.

``Hub.open(settings)`` asks here whether the hub runs as root (``running_as_root``), so a test
can pretend it does not; everything else is the application layer's.
"""

from __future__ import annotations

from typing import Self

from steppe.app import hub as app_hub
from steppe.app.bootstrap import HubSettings, single_user_refusal
from steppe.executors.accounts import running_as_root

__all__ = ["Hub", "HubSettings", "single_user_refusal"]


class Hub(app_hub.Hub):
    """The application's hub (see ``steppe.app.hub``)."""

    @classmethod
    def open(cls, settings: HubSettings, root: bool | None = None) -> Self:
        return super().open(settings, running_as_root() if root is None else root)
