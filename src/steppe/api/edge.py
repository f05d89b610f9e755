"""The hub's edge: what every HTTP request passes before routing (a pure ASGI middleware).

In this order, each answered as ``application/problem+json``:

1. **Authentication** of every path under ``/api/v1`` except ``/api/v1/version``,
   ``/api/v1/openapi.json`` and ``/api/v1/docs``, and of ``/metrics`` unless the hub runs with
   ``--public-metrics``: no token, or an unknown, expired or revoked one, is a 401 whatever the
   request's path (a route that does not exist included) or body, since the body is never read
   before. The principal goes into the request's scope (``PRINCIPAL``) for the ``Who`` dependency.
2. **Failed authentications are limited per client address**: after ``limit`` (10) requests with a
   wrong token within ``window_s`` (60 s), every request of that client needing a token is a 429
   with ``Retry-After`` until the oldest of those failures is ``window_s`` old; the token is not
   even checked meanwhile (else the answer would still tell a right guess from a wrong one).
   Requests without an ``Authorization`` header and successful ones are not counted. The record
   is in memory, shared by the hub's threads under a lock, and bounded: at most ``max_clients``
   addresses (the one whose last failure is oldest is dropped first). Behind a reverse proxy
   every client has the proxy's address.
3. **NUL bytes** in the decoded path or query string: a 422 naming the parameter (the path
   parameter of the route the path matches, or the query parameter).
4. **Body size**: a ``Content-Length`` over ``max_body`` (4 MiB), or a body streamed past it, is
   a 413 naming the limit. The body is read here, up to the limit, and handed on to the app.
5. **Fast routes**: a request whose method and path are in ``fast`` (``POST /api/v1/jobs``, the
   hub's hottest route) is first offered to that handler with the body and the principal; it
   answers the ordinary case without FastAPI's routing and dependency solving, or returns None
   and the request goes on to the app, whose route answers it (every error included) as before.
   Example: a valid submission is answered by ``routes_jobs.submit_fast`` (201); one with
   ``"gpus": "2"`` gets None there and the route's 422 naming ``gpus``.

Before all of these, each request gets its id (the caller's ``X-Request-ID`` if it is a plain
token, else a new one), echoed in the answer's ``X-Request-ID`` header and carried by every log
line written while it is served (``steppe.api.logs``), refusals included.

The edge is the outermost layer (``steppe.api.app.HubApi``), before FastAPI's error handling: a
failure in its own work (an unreadable token store, a fast route that raises) is logged and
answered with the same 500 problem the app gives its own failures.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse, Response

from steppe.api.logs import REQUEST_ID, request_id_of
from steppe.api.problems import PROBLEM_JSON, TYPE_BASE
from steppe.app.errors import Unauthenticated

if TYPE_CHECKING:
    from steppe.api.hub import Hub

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
FastRoute = Callable[["Hub", Scope, bytes], Awaitable[Response | None]]

log = logging.getLogger("steppe.api")

PRINCIPAL = "steppe.principal"  # the scope key of the authenticated caller
MAX_BODY = 4 * 1024 * 1024
OPEN_PATHS = frozenset({"/api/v1/version", "/api/v1/openapi.json", "/api/v1/docs"})


class FailureLimiter:
    """Failed authentications per client address within a sliding window; see the module docstring."""

    def __init__(
        self,
        limit: int = 10,
        window_s: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window_s, self.max_clients, self.clock = limit, window_s, max_clients, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._failures)

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again (0.0: it may now)."""
        now = self.clock()
        with self._lock:
            times = self._failures.get(client)
            if times is None:
                return 0.0
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if not times:
                del self._failures[client]
                return 0.0
            return times[0] + self.window_s - now if len(times) >= self.limit else 0.0

    def failed(self, client: str) -> None:
        """Record a failed authentication of ``client``."""
        now = self.clock()
        with self._lock:
            times = self._failures.pop(client, None)
            if times is None:
                times = deque(maxlen=self.limit)
            times.append(now)
            self._failures[client] = times  # the most recently failed last
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)


def needs_token(path: str, public_metrics: bool) -> bool:
    """Whether a request for ``path`` must carry a valid token (see the module docstring)."""
    if path == "/metrics":
        return not public_metrics
    return (path == "/api/v1" or path.startswith("/api/v1/")) and path not in OPEN_PATHS


def route_path(scope: Scope) -> str:
    """The path the app routes on: without the ``root_path`` a proxy may mount the hub under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def problem(status: int, title: str, detail: str, kind: str, errors: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    """A problem document, as ``steppe.api.problems`` writes them."""
    body = {"type": TYPE_BASE + kind, "title": title, "status": status, "detail": detail, "errors": errors or []}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def internal_error() -> JSONResponse:
    """The 500 problem, as ``steppe.api.problems`` answers the app's own failures."""
    return problem(500, "Internal error", "the hub failed to handle this request; see its log", "internal")


class Edge:
    """The middleware; see the module docstring. ``paths`` gives the route templates
    (``/api/v1/orgs/{org}``) whose parameters NUL errors name; it is called once, on first need.
    ``fast`` maps ``(method, path)`` to a fast route's handler (step 5)."""

    def __init__(
        self,
        app: ASGIApp,
        hub: Hub,
        paths: Callable[[], Iterable[str]] | None = None,
        limiter: FailureLimiter | None = None,
        max_body: int = MAX_BODY,
        fast: Mapping[tuple[str, str], FastRoute] | None = None,
    ) -> None:
        self.app, self.hub, self.paths = app, hub, paths
        self.fast = dict(fast or {})
        self.limiter = limiter if limiter is not None else FailureLimiter()
        self.max_body = max_body
        self._templates: list[re.Pattern[str]] | None = None

    def _path_parameter(self, path: str) -> str:
        """The name of the path parameter with a NUL byte, if ``path`` matches a route ("path" if not)."""
        if self._templates is None:
            self._templates = [
                re.compile("^" + re.sub(r"\\\{(\w+)(?::path)?\\\}", r"(?P<\1>[^/]+)", re.escape(t)) + "$")
                for t in (self.paths() if self.paths is not None else [])
            ]
        for template in self._templates:
            found = template.match(path)
            if found is not None:
                bad = [name for name, value in found.groupdict().items() if "\x00" in value]
                if bad:
                    return bad[0]
        return "path"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                given = value
                break
        request_id = request_id_of(given)
        echoed = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        token = REQUEST_ID.set(request_id)  # the request's log lines carry it (steppe.api.logs)
        try:
            await self._serve(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            refusal = self._authenticate(scope) or self._nul(scope) or self._declared_size(scope)
        except Exception:
            log.exception("%s %s: the edge failed", scope.get("method"), scope.get("path"))
            refusal = internal_error()
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await self._too_large()(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        fast = self.fast.get((scope["method"], route_path(scope))) if self.fast else None
        if fast is not None:
            try:
                answer = await fast(self.hub, scope, bytes(body))
            except Exception:
                log.exception("%s %s: the fast route failed", scope["method"], scope["path"])
                answer = internal_error()
            if answer is not None:
                await answer(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    # -- the checks: each returns the answer that refuses the request, or None ------------------------------
    def _authenticate(self, scope: Scope) -> JSONResponse | None:
        if not needs_token(route_path(scope), self.hub.settings.public_metrics):
            return None
        client = scope["client"][0] if scope.get("client") else "unknown"
        wait = self.limiter.retry_after(client)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            detail = f"too many failed authentications from {client}; try again in {seconds} s"
            return problem(429, "Too many requests", detail, "too-many-requests", headers={"Retry-After": str(seconds)})
        header = ""
        for key, value in scope["headers"]:
            if key == b"authorization":
                header = value.decode("latin-1")
                break
        try:
            scope[PRINCIPAL] = self.hub.auth.verify(header)
        except Unauthenticated as exc:
            if header:
                self.limiter.failed(client)
            return problem(401, exc.title, exc.detail, exc.kind, headers={"WWW-Authenticate": "Bearer"})
        return None

    def _nul(self, scope: Scope) -> JSONResponse | None:
        field = None
        if "\x00" in scope["path"]:
            field = self._path_parameter(route_path(scope))
        else:
            query = scope.get("query_string", b"").decode("latin-1")
            for key, value in parse_qsl(query, keep_blank_values=True):
                if "\x00" in key or "\x00" in value:
                    field = key.replace("\x00", "\\x00")
                    break
        if field is None:
            return None
        message = "contains a NUL byte"
        return problem(422, "Invalid request", f"{field}: {message}", "invalid-request",
                       [{"field": field, "message": message}])  # fmt: skip

    def _declared_size(self, scope: Scope) -> JSONResponse | None:
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    size = int(value)
                except ValueError:
                    return problem(400, "Malformed request", "Content-Length is not a number", "malformed-request")
                return self._too_large() if size > self.max_body else None
        return None

    def _too_large(self) -> JSONResponse:
        mib, rest = divmod(self.max_body, 1024 * 1024)
        limit = f"{mib} MiB" if rest == 0 else f"{self.max_body} bytes"
        return problem(413, "Request too large", f"the request body exceeds the limit of {limit}", "request-too-large")
