"""A tamper-evident audit log: append-only entries, each chained to the previous one by a SHA-256 hash.

Every proposal, review decision, quota and allocation change, token issue and revocation is
written as an ``AuditEntry(seq, time_s, actor, action, subject, reason, details, prev_hash,
hash)``. ``seq`` counts from 1 without gaps; ``prev_hash`` is the previous entry's ``hash``
(``GENESIS``, 64 zeros, for the first); ``hash`` is the SHA-256 (hex) of the entry's canonical
encoding without its own ``hash`` field.

Canonical encoding: JSON with keys sorted, no whitespace (separators ``,`` and ``:``), UTF-8
without escaping non-ASCII characters, no NaN or infinity; floats in Python's shortest
round-trip form. ``details`` must be JSON (objects, arrays, strings, numbers, booleans, null).

``verify`` walks the entries in order and reports the first bad one:

* an edited field -> its hash no longer matches its content;
* a deleted or inserted entry, or two swapped -> a ``seq`` out of sequence, or a ``prev_hash``
  that is not the previous entry's hash (also when an edited entry's hash was recomputed);
* entries removed from the end leave a valid chain: pass the head recorded earlier
  (``expect_head=(seq, hash)``, e.g. from an export or a periodic checkpoint) to detect that.

Someone who can rewrite the whole chain from the edited entry onwards can only be caught by
such an external head. Actions starting with ``quota.`` or ``allocation.`` need a reason.

>>> log = MemoryAuditSink()
>>> e = append(log, actor="bob", action="allocation.create", subject="kaznu/kazllm", reason="Q1 grant", time_s=0.0)
>>> e.seq, e.prev_hash == GENESIS, verify(log.entries()).ok
(1, True, True)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from steppe.governance.errors import AuditError

GENESIS = "0" * 64
REASON_REQUIRED_PREFIXES = ("quota.", "allocation.")
"""Actions whose entries must carry a non-empty reason."""

ACTIONS = (
    "proposal.create", "review.submit", "review.screen_out", "review.screen_changes", "review.start_review",
    "review.request_changes", "review.approve", "review.reject", "review.expire", "review.revoke", "org.create",
    "project.create", "user.create", "user.disable", "quota.change", "allocation.create", "allocation.change",
    "allocation.delete", "token.issue", "token.revoke", "terms.publish", "terms.accept", "dataset.register",
)
"""The actions the hub writes (others are allowed; reasons are enforced by prefix)."""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time_s: float
    actor: str
    action: str
    subject: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""

    def body(self) -> dict[str, Any]:
        """The fields the hash covers (all but ``hash``)."""
        d = asdict(self)
        del d["hash"]
        d["time_s"] = float(d["time_s"])  # a store may hand back 0 for 0.0; the encoding must not change
        return d


def canonical(obj: Any) -> bytes:
    """The canonical encoding (module docstring).

    >>> canonical({"b": 1, "a": "Қазақ", "c": [1.5, None]})
    b'{"a":"\\xd2\\x9a\\xd0\\xb0\\xd0\\xb7\\xd0\\xb0\\xd2\\x9b","b":1,"c":[1.5,null]}'
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def entry_hash(entry: AuditEntry) -> str:
    """SHA-256 (hex) of the canonical encoding of ``entry.body()``."""
    return hashlib.sha256(canonical(entry.body())).hexdigest()


class AuditSink(Protocol):
    """Where entries are kept. The SQL store implements it; appends must be serialised (one writer)."""

    def append(self, entry: AuditEntry) -> None: ...

    def entries(self) -> Sequence[AuditEntry]: ...

    def last(self) -> AuditEntry | None: ...


class MemoryAuditSink:
    """An in-memory sink that refuses entries that do not continue its chain."""

    def __init__(self, entries: Iterable[AuditEntry] = ()) -> None:
        self._entries: list[AuditEntry] = list(entries)

    def append(self, entry: AuditEntry) -> None:
        last = self.last()
        want_seq, want_prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
        if entry.seq != want_seq or entry.prev_hash != want_prev:
            raise AuditError(f"entry {entry.seq} does not continue the chain (expected seq {want_seq})")
        self._entries.append(entry)

    def entries(self) -> Sequence[AuditEntry]:
        return tuple(self._entries)

    def last(self) -> AuditEntry | None:
        return self._entries[-1] if self._entries else None


def _check_json(value: Any, where: str) -> None:
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AuditError(f"{where}: {value} is not allowed in the audit log (NaN or infinity)")
        return
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_json(v, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise AuditError(f"{where}: keys must be strings, got {k!r}")
            _check_json(v, f"{where}.{k}")
        return
    raise AuditError(f"{where}: {type(value).__name__} is not JSON; convert it first")


def next_entry(
    last: AuditEntry | None,
    *,
    actor: str,
    action: str,
    subject: str,
    time_s: float,
    reason: str = "",
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """The entry that follows ``last`` (pure; ``append`` stores it)."""
    if not actor.strip() or not action.strip():
        raise AuditError("an audit entry needs an actor and an action")
    if action.startswith(REASON_REQUIRED_PREFIXES) and not reason.strip():
        raise AuditError(f"{action} on {subject}: a reason is required for quota and allocation changes")
    if not math.isfinite(time_s):
        raise AuditError(f"time_s must be finite, got {time_s}")
    _check_json(dict(details or {}), "details")
    body = json.loads(canonical(dict(details or {})))  # tuples become lists: what is stored is what was hashed
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    entry = AuditEntry(seq, float(time_s), actor, action, subject, reason, body, prev)
    return replace(entry, hash=entry_hash(entry))


def append(
    sink: AuditSink,
    *,
    actor: str,
    action: str,
    subject: str,
    time_s: float,
    reason: str = "",
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Write the next entry to ``sink`` and return it."""
    entry = next_entry(sink.last(), actor=actor, action=action, subject=subject, time_s=time_s, reason=reason,
                       details=details)
    sink.append(entry)
    return entry


@dataclass(frozen=True)
class VerifyResult:
    """``ok``, or the first bad entry's seq (as stored; for a missing tail, the seq expected) and the problem."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""
    head: tuple[int, str] | None = None


def verify(entries: Iterable[AuditEntry], expect_head: tuple[int, str] | None = None) -> VerifyResult:
    """Check sequence numbers, the hash chain and every entry's hash.

    With ``expect_head=(seq, hash)``, a head recorded earlier, the entry with that seq must exist
    and have that hash (the log may have grown since).
    """
    prev: AuditEntry | None = None
    n = 0
    seen_head = False
    for n, e in enumerate(entries, start=1):
        if e.seq != n:
            why = f"entry at position {n} has seq {e.seq}, expected {n} (entries deleted, inserted or reordered)"
            return VerifyResult(False, n - 1, e.seq, why)
        if e.prev_hash != (prev.hash if prev else GENESIS):
            why = f"seq {e.seq}: prev_hash is not entry {n - 1}'s hash (an earlier entry was changed or replaced)"
            return VerifyResult(False, n - 1, e.seq, why)
        try:
            actual = entry_hash(e)
        except (TypeError, ValueError) as exc:
            return VerifyResult(False, n - 1, e.seq, f"seq {e.seq}: cannot encode entry: {exc}")
        if actual != e.hash:
            return VerifyResult(False, n - 1, e.seq, f"seq {e.seq}: hash does not match its content (edited)")
        if expect_head is not None and e.seq == expect_head[0]:
            if e.hash != expect_head[1]:
                return VerifyResult(False, n - 1, e.seq, f"seq {e.seq}: hash is not the recorded head (rewritten)")
            seen_head = True
        prev = e
    head = (prev.seq, prev.hash) if prev else None
    if expect_head is not None and not seen_head:
        why = (f"log ends at seq {head[0] if head else 0} but the recorded head is seq {expect_head[0]} "
               "(entries removed from the end)")
        return VerifyResult(False, n, n + 1, why, head)
    return VerifyResult(True, n, head=head)


def export_jsonl(entries: Iterable[AuditEntry], path: str | Path) -> int:
    """Write one canonical JSON object per line (with ``hash``); return the number written."""
    count = 0
    with Path(path).open("wb") as f:
        for e in entries:
            f.write(canonical(asdict(e)) + b"\n")
            count += 1
    return count


def read_jsonl(path: str | Path) -> list[AuditEntry]:
    """Read an export back (to verify it); a malformed line raises ``AuditError`` naming it."""
    out: list[AuditEntry] = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        try:
            out.append(AuditEntry(**json.loads(line)))
        except (TypeError, ValueError) as exc:
            raise AuditError(f"{path}:{i}: not an audit entry: {exc}") from None
    return out
