"""The FastAPI application: ``/api/v1`` routes, problem+json errors, OpenAPI, health and metrics.

OpenAPI is at ``/api/v1/openapi.json`` (interactive docs at ``/api/v1/docs``). Everything under
``/api/v1`` except ``/api/v1/version`` needs a bearer token; ``/metrics`` needs a hub-admin
token unless the hub runs with ``--public-metrics``; ``/healthz`` is open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from steppe import __version__
from steppe.api import problems, routes_governance, routes_jobs, routes_tenancy
from steppe.api.deps import HubDep
from steppe.api.hub import Hub
from steppe.api.metrics import hub_registry
from steppe.client import models as m

_PROBLEM = {"model": m.Problem, "content": {problems.PROBLEM_JSON: {}}}
RESPONSES: dict[int | str, dict[str, object]] = {
    code: {**_PROBLEM, "description": text}
    for code, text in ((400, "Malformed"), (401, "Unauthenticated"), (403, "Forbidden"), (404, "Not found"),
                       (409, "Conflict"), (422, "Invalid field"))
}  # fmt: skip


def create_app(hub: Hub, manage: bool = True) -> FastAPI:
    """The app for ``hub``; with ``manage`` its lifespan starts and closes the hub."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage:
            hub.start()
        try:
            yield
        finally:
            if manage:
                hub.close()

    app = FastAPI(
        title="Steppe hub API",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.hub = hub
    problems.install(app)
    app.include_router(routes_tenancy.router, responses=RESPONSES)
    app.include_router(routes_jobs.router, responses=RESPONSES)
    app.include_router(routes_governance.router, responses=RESPONSES)
    registry = hub_registry(hub.loop)

    @app.get("/api/v1/version", response_model=m.Version, tags=["meta"])
    def version(hub: HubDep) -> m.Version:
        return m.Version(version=__version__, policy=hub.settings.policy, fleet=hub.fleet.source)

    @app.get("/healthz", tags=["meta"], include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["meta"], response_class=Response)
    def metrics(request: Request, hub: HubDep) -> Response:
        if not hub.settings.public_metrics:
            hub.auth(request).require_hub_admin()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
