"""Errors as RFC 9457 ``application/problem+json``: ``type``, ``title``, ``status``, ``detail`` and,
for invalid input, ``errors``: a list of ``{field, message}``.

Validation errors from FastAPI are rewritten into the same shape (422, or 400 for a body that
is not JSON at all); unknown routes, wrong methods and unexpected errors too, so a client only
ever parses one error format.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def field_problem(field: str, message: str, status: int = 422) -> ApiProblem:
    """A problem with one named field."""
    return ApiProblem(status, "Invalid request", f"{field}: {message}", [{"field": field, "message": message}])


def not_found(what: str) -> ApiProblem:
    return ApiProblem(404, "Not found", f"{what} not found")


def forbidden(detail: str) -> ApiProblem:
    return ApiProblem(403, "Forbidden", detail)


def conflict(detail: str) -> ApiProblem:
    return ApiProblem(409, "Conflict", detail)


def _response(status: int, title: str, detail: str, errors: list[dict[str, str]], kind: str) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_BASE + kind, "title": title, "status": status, "detail": detail}
    body["errors"] = errors
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(ApiProblem)
    async def _problem(_: Request, exc: ApiProblem) -> JSONResponse:
        return _response(exc.status, exc.title, exc.detail, exc.errors, exc.kind)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                detail = f"the body is not valid JSON: {err.get('ctx', {}).get('error', err.get('msg'))}"
                return _response(400, "Malformed request", detail, [], "malformed-request")
            message = str(err.get("msg", "invalid"))
            errors.append({"field": _field_name(tuple(err.get("loc", ()))), "message": message})
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
