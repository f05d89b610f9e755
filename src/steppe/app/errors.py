"""Typed domain errors of the application layer; the API maps each to a problem response.

| error | meaning | API status |
|---|---|---|
| ``NotFound`` | no such thing, or one the caller may not see | 404 |
| ``Forbidden`` | the caller may not do this | 403 |
| ``Conflict`` | the thing's state forbids it (already ended, exists, overlaps) | 409 |
| ``Invalid`` | one or more fields are wrong; ``errors`` names each | 422 |
| ``TermsNotAccepted`` | the caller must accept the acceptable-use terms first | 403 |
| ``Unauthenticated`` | no valid token | 401 |

Example: ``Invalid.field("walltime_s", "at most 3600 s on this hub")`` is answered
``422 {"detail": "walltime_s: at most 3600 s on this hub", "errors": [{"field": "walltime_s", ...}]}``.
"""

from __future__ import annotations


class AppError(Exception):
    """A workflow refused; ``title`` and ``kind`` name it in the problem document, ``detail`` explains."""

    title = "Error"
    kind = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors: list[dict[str, str]] = []


class NotFound(AppError):
    title, kind = "Not found", "not-found"

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")


class Forbidden(AppError):
    title, kind = "Forbidden", "forbidden"


class Conflict(AppError):
    title, kind = "Conflict", "conflict"


class TermsNotAccepted(AppError):
    title, kind = "Terms not accepted", "terms-not-accepted"


class Unauthenticated(AppError):
    title, kind = "Unauthorized", "unauthorized"


class Invalid(AppError):
    """Invalid input: every field at fault with its message."""

    title, kind = "Invalid request", "invalid-request"

    def __init__(self, errors: list[dict[str, str]], title: str = "Invalid request") -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors
        self.title = title

    @classmethod
    def field(cls, field: str, message: str) -> Invalid:
        """One named field at fault."""
        return cls([{"field": field, "message": message}])
