"""FastAPI dependencies: the hub and the authenticated caller.

They are ``async`` so FastAPI calls them on the event loop: a sync dependency costs a trip
through the thread pool per request, which dominated the cost of a submission. Token checks
hit the store only on a cache miss.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from steppe.api.auth import Principal
from steppe.api.hub import Hub


async def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


async def _who(request: Request) -> Principal:
    hub: Hub = request.app.state.hub
    return hub.auth(request)


HubDep = Annotated[Hub, Depends(_hub)]
Who = Annotated[Principal, Depends(_who)]
