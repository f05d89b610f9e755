"""FastAPI dependencies: the hub and the authenticated caller.

They are ``async`` so FastAPI calls them on the event loop: a sync dependency costs a trip
through the thread pool per request, which dominated the cost of a submission. The token was
checked before routing, by ``steppe.api.edge``, which leaves the caller in the request's scope;
``BEARER`` only declares the scheme in the OpenAPI document (every route with ``Who`` needs it).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from steppe.api.auth import Principal
from steppe.api.edge import PRINCIPAL
from steppe.api.hub import Hub

BEARER = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="stp_<prefix>_<secret>",
    description="an API token: `Authorization: Bearer stp_...`",
    auto_error=False,
)


async def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def principal(request: Request) -> Principal:
    """The caller the edge authenticated (or, for a request that did not pass it, checked now)."""
    who = request.scope.get(PRINCIPAL)
    if isinstance(who, Principal):
        return who
    hub: Hub = request.app.state.hub
    return hub.auth(request)


async def _who(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]) -> Principal:
    return principal(request)


HubDep = Annotated[Hub, Depends(_hub)]
Who = Annotated[Principal, Depends(_who)]
