"""The FastAPI application: ``/api/v1`` routes, problem+json errors, OpenAPI, health and metrics.

OpenAPI is at ``/api/v1/openapi.json`` (interactive docs at ``/api/v1/docs``). Everything under
``/api/v1`` except ``/api/v1/version`` needs a bearer token; ``/metrics`` needs a hub-admin
token unless the hub runs with ``--public-metrics``; ``/healthz`` is open. Tokens, failed-login
limits, NUL bytes and body sizes are checked before routing (``steppe.api.edge``).

Every request enters through the edge, before FastAPI's own middleware (``HubApi``): what the
edge answers itself (a refusal, an ordinary submission) costs no more than it must; the rest goes
on to FastAPI as before.

The document declares the bearer scheme on every route that needs it and every status a route
can answer: the edge's 401, 413, 422 and 429 too, and the 200 of an idempotent replay of
``POST /jobs``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from steppe import __version__
from steppe.api import problems, routes_governance, routes_jobs, routes_operator, routes_tenancy
from steppe.api.deps import BEARER, HubDep, principal
from steppe.api.edge import MAX_BODY, Edge, FailureLimiter, Receive, Scope, Send
from steppe.api.hub import Hub
from steppe.api.metrics import hub_registry
from steppe.client import models as m

_PROBLEM = {"model": m.Problem, "content": {problems.PROBLEM_JSON: {}}}
RESPONSES: dict[int | str, dict[str, object]] = {
    code: {**_PROBLEM, "description": text}
    for code, text in ((400, "Malformed"), (401, "Unauthenticated"), (403, "Forbidden"), (404, "Not found"),
                       (409, "Conflict"), (413, f"Body over {MAX_BODY // 2**20} MiB"), (422, "Invalid field"),
                       (429, "Too many failed authentications from this client (see Retry-After)"))
}  # fmt: skip
RESPONSES[401]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}}
RESPONSES[429]["headers"] = {
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}, "required": True}
}
OPEN_RESPONSES: dict[int | str, dict[str, object]] = {code: RESPONSES[code] for code in (400, 413, 422)}
REPLAY = {
    "description": "An idempotent replay: the job first submitted with this Idempotency-Key and the same body",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}},
}


class HubApi(FastAPI):
    """The hub's FastAPI app with its edge outermost: ``edge`` sees every request first and hands
    on to FastAPI (its middleware, routing and exception handlers) what it does not answer."""

    edge: Edge | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        edge = self.edge
        if edge is None:
            await super().__call__(scope, receive, send)
        else:
            await edge(scope, receive, send)


def create_app(
    hub: Hub, manage: bool = True, limiter: FailureLimiter | None = None, fast_routes: bool = True
) -> HubApi:
    """The app for ``hub``; with ``manage`` its lifespan starts and closes the hub. ``limiter``
    counts failed authentications (default: 10 per client address in 60 s). With ``fast_routes``
    the edge answers ordinary submissions itself (``routes_jobs.submit_fast``)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage:
            hub.start()
        try:
            yield
        finally:
            if manage:
                hub.close()

    app = HubApi(
        title="Steppe hub API",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.hub = hub
    problems.install(app)
    app.include_router(routes_jobs.router, responses=RESPONSES)  # first: routes are matched in order, jobs most often
    app.include_router(routes_tenancy.router, responses=RESPONSES)
    app.include_router(routes_governance.router, responses=RESPONSES)
    app.include_router(routes_operator.router, responses=RESPONSES)
    fast = {("POST", "/api/v1/jobs"): routes_jobs.submit_fast} if fast_routes else None
    app.edge = Edge(partial(FastAPI.__call__, app), hub=hub, paths=lambda: app.openapi()["paths"], limiter=limiter,
                    fast=fast)  # fmt: skip
    registry = hub_registry(hub.loop, hub.reads)

    @app.get("/api/v1/version", response_model=m.Version, tags=["meta"], responses=OPEN_RESPONSES)
    def version(hub: HubDep) -> m.Version:
        return m.Version(version=__version__, policy=hub.settings.policy, fleet=hub.fleet.source)

    @app.get("/healthz", tags=["meta"], include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    metrics_responses: dict[int | str, dict[str, object]] = {
        200: {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}},
        **OPEN_RESPONSES,
    }
    metrics_extra: dict[str, object] = {}
    if not hub.settings.public_metrics:
        metrics_responses.update({code: RESPONSES[code] for code in (401, 403, 429)})
        metrics_extra["security"] = [{BEARER.scheme_name: []}]

    @app.get("/metrics", tags=["meta"], response_class=Response, responses=metrics_responses,
             openapi_extra=metrics_extra)  # fmt: skip
    def metrics(request: Request, hub: HubDep) -> Response:
        if not hub.settings.public_metrics:
            principal(request).require_hub_admin()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema["paths"]["/api/v1/jobs"]["post"]["responses"].setdefault("200", REPLAY)
            problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
            for operations in schema["paths"].values():
                for operation in operations.values():
                    for response in operation.get("responses", {}).values():
                        content = response.get("content", {})
                        if problems.PROBLEM_JSON in content:  # errors come only as problem+json
                            response["content"] = {problems.PROBLEM_JSON: problem}
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
    return app
