"""Bearer-token authentication and the roles: ``steppe.app.auth``, re-exported for the API's modules."""

from __future__ import annotations

from steppe.app.auth import Authenticator, Principal

__all__ = ["Authenticator", "Principal"]
