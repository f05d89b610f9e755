"""Acceptable-use terms: members accept the hub's terms before their first job, and again when they change.

The hub publishes numbered versions of its acceptable-use terms; each user's record keeps the
version they last accepted. A user must (re)accept when they have accepted none, or one other
than the version in force today. A ``digest`` (SHA-256 of the text) lets the audit log and the
acceptance record name exactly which text was accepted.

>>> from datetime import date
>>> v2 = TermsVersion("2", date(2026, 3, 1), "sha256:ab12")
>>> must_accept_terms("1", v2), must_accept_terms("2", v2), must_accept_terms(None, v2)
(True, False, True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from steppe.governance.errors import GovernanceError


@dataclass(frozen=True)
class TermsVersion:
    """One published version of the acceptable-use terms."""

    version: str
    effective_on: date
    digest: str = ""

    @staticmethod
    def of_text(version: str, effective_on: date, text: str) -> TermsVersion:
        """A version whose digest is the SHA-256 of ``text`` (UTF-8)."""
        return TermsVersion(version, effective_on, "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest())


def terms_in_force(versions: Sequence[TermsVersion], today: date) -> TermsVersion | None:
    """The latest version effective on or before ``today`` (None before the first); of versions effective
    on the same date, the one listed (published) last."""
    live = [v for v in versions if v.effective_on <= today]
    return max(reversed(live), key=lambda v: v.effective_on) if live else None


def must_accept_terms(accepted_version: str | None, current: TermsVersion | None) -> bool:
    """True when a user who last accepted ``accepted_version`` must accept ``current`` first."""
    return current is not None and accepted_version != current.version


def require_terms(user: str, accepted_version: str | None, current: TermsVersion | None) -> None:
    """Raise ``GovernanceError`` when ``user`` must (re)accept the terms before submitting a job."""
    if current is not None and must_accept_terms(accepted_version, current):
        had = f"accepted version {accepted_version}" if accepted_version else "not accepted any version"
        raise GovernanceError(
            f"user {user} must accept the acceptable-use terms version {current.version} "
            f"(in force since {current.effective_on}) before submitting jobs; they have {had}"
        )
