"""The server's log: plain text (the default) or JSON lines (``steppe serve --log-format json``),
and the request id of each HTTP request.

**Request ids.** The edge (``steppe.api.edge``) gives each HTTP request an id: the caller's
``X-Request-ID`` when it is a plain token (letters, digits, ``._:-``, at most 128 characters),
else a new one (32 hex digits). It is echoed in the response's ``X-Request-ID`` header and kept
in a context variable (``REQUEST_ID``) while the request is served: FastAPI runs a synchronous
route in a worker thread with a copy of the context, so a workflow's log lines, whichever thread
writes them, carry the id of the request that caused them. Lines of the scheduler's loop carry
none (no request caused a start or an end).

**Structured lines.** A log call may pass ``extra={"fields": {...}}``: the job transitions
(``steppe.control.loop``: ``job.start``, ``job.end`` with its state and exit code,
``job.preempt``, ``job.requeue``), the workflows' ``job.submit`` and ``job.cancel``
(``steppe.app.jobs``) and every audited action (``steppe.store.audit``: ``node.drain``,
``quota.change``, ``token.issue`` ...). ``JsonFormatter`` writes one object per line with the
time (ISO 8601, UTC), level, logger, message, the request id if any, then the fields.

Example: ``POST /api/v1/nodes/gpu01/drain`` with ``X-Request-ID: r-42`` logs
``{"time": "2026-12-01T08:00:00.123Z", "level": "INFO", "logger": "steppe.audit", "message":
"node.drain gpu01 by root: bad fan", "request_id": "r-42", "event": "node.drain", ...}``.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

__all__ = ["LOG_FORMATS", "REQUEST_ID", "JsonFormatter", "RequestIdFilter", "configure_logging", "request_id_of"]

REQUEST_ID: ContextVar[str | None] = ContextVar("steppe_request_id", default=None)
LOG_FORMATS = ("text", "json")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_of(given: bytes | None) -> str:
    """The caller's request id if it is a plain token, else a new one.

    >>> request_id_of(b"r-42"), len(request_id_of(None)), len(request_id_of(b"a b"))
    ('r-42', 32, 32)
    """
    if given is not None:
        text = given.decode("latin-1")
        if _TOKEN.fullmatch(text):
            return text
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (the request being served, or None) to every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record (module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line: dict[str, object] = {"time": stamp, "level": record.levelname, "logger": record.name,
                                   "message": record.getMessage()}  # fmt: skip
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> logging.Handler:
    """Log to stderr in ``fmt`` (``text`` or ``json``), every record with its request id; returns the handler."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r}: choose one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT))
    handler.addFilter(RequestIdFilter())
    handler.set_name("steppe")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "steppe"]:  # an earlier call's: replaced
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
