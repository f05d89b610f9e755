"""Errors as RFC 9457 ``application/problem+json``: ``type``, ``title``, ``status``, ``detail`` and,
for invalid input, ``errors``: a list of ``{field, message}``.

Validation errors from FastAPI are rewritten into the same shape (422, or 400 for a body that
is not JSON at all); unknown routes, wrong methods and unexpected errors too, so a client only
ever parses one error format. Pydantic's messages are rewritten in plain words with an accepted
example (``gpus: must be an integer, not a string (e.g. 2)``; ``steppe.client.models.explain``),
at most ``MAX_ERRORS`` of them, and never echo the offending input.

The application layer's typed errors (``steppe.app.errors``) are answered here too, each with
its status (``STATUS``): a workflow never speaks HTTP. ``not_found`` and ``forbidden`` build
those errors for the API's own checks.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from starlette.exceptions import HTTPException as StarletteHTTPException

from steppe.app.errors import AppError, Conflict, Forbidden, Invalid, NotFound, TermsNotAccepted, Unauthenticated
from steppe.client.models import explain

MAX_ERRORS = 10
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://steppe.dev/problems/"
log = logging.getLogger("steppe.api")


class ApiProblem(Exception):
    """Raise in a handler to answer with a problem document."""

    def __init__(
        self, status: int, title: str, detail: str = "", errors: list[dict[str, str]] | None = None, kind: str = ""
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.errors = errors or []
        self.kind = kind or title.lower().replace(" ", "-")


STATUS: dict[type[AppError], int] = {
    NotFound: 404, Forbidden: 403, Conflict: 409, Invalid: 422, TermsNotAccepted: 403, Unauthenticated: 401,
}  # fmt: skip


def status_of(exc: AppError) -> int:
    """The HTTP status of an application error (500 for one this table does not know)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def not_found(what: str) -> NotFound:
    return NotFound(what)


def forbidden(detail: str) -> Forbidden:
    return Forbidden(detail)


def _response(status: int, title: str, detail: str, errors: list[dict[str, str]], kind: str) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_BASE + kind, "title": title, "status": status, "detail": detail}
    body["errors"] = errors
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def app_error_response(exc: AppError) -> JSONResponse:
    """The problem document of an application error (what the installed handler answers)."""
    return _response(status_of(exc), exc.title, exc.detail, exc.errors, exc.kind)


def _where(request: Request, loc: tuple[Any, ...]) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """The request model (for a body error) or the parameter's field (path, query) that ``loc`` names."""
    route = request.scope.get("route")
    if route is None or not loc:
        return None, None
    if loc[0] == "body":
        field = getattr(route, "body_field", None)
        model = getattr(getattr(field, "field_info", None), "annotation", None)
        return (model if isinstance(model, type) and issubclass(model, BaseModel) else None), None
    dependant = getattr(route, "dependant", None)
    params = {"query": "query_params", "path": "path_params", "header": "header_params"}.get(str(loc[0]))
    for param in getattr(dependant, params, []) if params else []:
        if len(loc) > 1 and loc[1] in (param.name, param.alias):
            return None, param.field_info
    return None, None


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(ApiProblem)
    async def _problem(_: Request, exc: ApiProblem) -> JSONResponse:
        return _response(exc.status, exc.title, exc.detail, exc.errors, exc.kind)

    @app.exception_handler(AppError)
    async def _refused(_: Request, exc: AppError) -> JSONResponse:
        return app_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors: list[dict[str, str]] = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                detail = f"the body is not valid JSON: {err.get('ctx', {}).get('error', err.get('msg'))}"
                return _response(400, "Malformed request", detail, [], "malformed-request")
            if len(errors) < MAX_ERRORS:
                model, info = _where(request, tuple(err.get("loc", ())))
                errors.append(explain(err, model, info))
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return _response(422, "Invalid request", detail, errors, "invalid-request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {401: "Unauthorized", 404: "Not found", 405: "Method not allowed"}
        title = titles.get(exc.status_code, "Error")
        return _response(exc.status_code, title, str(exc.detail), [], title.lower().replace(" ", "-"))

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _response(500, "Internal error", "the hub failed to handle this request; see its log", [], "internal")
