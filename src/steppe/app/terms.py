"""Acceptable-use terms: published by a hub-admin, accepted by each user before they submit.

* ``publish_terms``: hub-admin only; stores the version with its text's digest, audited as
  ``terms.publish``; a version published already is a ``Conflict``. From its ``effective_on``
  date (the hub's local date) the version is in force, and a user who has not accepted it gets
  ``TermsNotAccepted`` on submission (``Hub.terms_required``);
* ``current_terms``: the version in force today with its text and whether the caller accepted
  it (``NotFound`` when none is in force);
* ``accept_terms``: the caller accepts the version in force (another version is ``Invalid``
  naming ``version``); the first acceptance is stored and audited as ``terms.accept``, a
  repeated one changes nothing.

Both changes drop the submission path's terms cache (``Hub.terms_changed``).

Example: after ``publish_terms(hub, admin, m.TermsPublish(version="1", effective_on=date(2026, 1, 1),
text="..."))``, ``current_terms(hub, alice).accepted`` is False until ``accept_terms(hub, alice, "1")``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from steppe.app.errors import Conflict, Invalid, NotFound
from steppe.client import models as m
from steppe.governance.terms import TermsVersion, terms_in_force
from steppe.store import governance as gov_repo
from steppe.store.audit import record

if TYPE_CHECKING:
    from steppe.app.auth import Principal
    from steppe.app.hub import Hub


def publish_terms(hub: Hub, who: Principal, body: m.TermsPublish) -> m.Terms:
    """Publish a version of the terms (module docstring)."""
    who.require_hub_admin()
    t = TermsVersion.of_text(body.version, body.effective_on, body.text)
    now = time.time()
    try:
        with hub.store.write() as conn:
            gov_repo.publish_terms(conn, t, body.text, now)
            record(
                conn,
                actor=who.name,
                action="terms.publish",
                subject=f"terms {t.version}",
                time_s=now,
                details={"version": t.version, "effective_on": t.effective_on.isoformat(), "digest": t.digest},
            )
    except IntegrityError:
        raise Conflict(f"terms version {body.version!r} already exists") from None
    hub.terms_changed()
    return m.Terms(version=t.version, effective_on=t.effective_on, digest=t.digest, text=body.text)


def current_terms(hub: Hub, who: Principal) -> m.Terms:
    """The terms in force today, and whether ``who`` has accepted them."""
    with hub.store.read() as conn:
        t = terms_in_force(gov_repo.terms(conn), hub.today())
        if t is None:
            raise NotFound("acceptable-use terms in force")
        text = gov_repo.terms_text(conn, t.version) or ""
        accepted = t.version in gov_repo.accepted_versions(conn, who.user_id)
    return m.Terms(version=t.version, effective_on=t.effective_on, digest=t.digest, text=text, accepted=accepted)


def accept_terms(hub: Hub, who: Principal, version: str) -> m.Terms:
    """``who`` accepts ``version``, which must be the one in force (module docstring)."""
    now = time.time()
    with hub.store.write() as conn:
        t = terms_in_force(gov_repo.terms(conn), hub.today())
        if t is None or t.version != version:
            raise Invalid.field("version", f"the terms in force are version {t.version if t else 'none'}")
        if t.version not in gov_repo.accepted_versions(conn, who.user_id):
            gov_repo.accept_terms(conn, who.user_id, t.version, now)
            record(
                conn,
                actor=who.name,
                action="terms.accept",
                subject=f"terms {t.version}",
                time_s=now,
                details={"digest": t.digest},
            )
        text = gov_repo.terms_text(conn, t.version) or ""
    hub.terms_changed()
    return m.Terms(version=t.version, effective_on=t.effective_on, digest=t.digest, text=text, accepted=True)
