"""Datasets: registered by a hub-admin with their jurisdiction, sensitivity, location and
residency policy; listed for everyone with the residency decision at this hub's site.

* ``register_dataset``: hub-admin only; the location must be a known site of the topology
  (``Invalid`` naming ``location`` otherwise), jurisdictions and transit countries are
  upper-cased; audited as ``dataset.register`` with the request's fields; a name taken already
  is a ``Conflict``. After the commit the loop re-reads datasets (and approvals) and the call
  waits for the cycle that does, so jobs using the dataset are held or released at once;
* ``list_datasets``: every dataset by name, each with ``here``: whether it may be used at the
  hub's site, over which route, and the estimated staging time
  (``steppe.governance.residency.decide``).

Example: a dataset held at the hub's own site ``astana`` lists
``here=Staging(allowed=True, route=None, reason="held at astana", staging_time_s=0.0)``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from steppe.app.errors import Conflict, Invalid
from steppe.client import models as m
from steppe.governance.residency import Dataset, Sensitivity, decide
from steppe.store import governance as gov_repo
from steppe.store.audit import record

if TYPE_CHECKING:
    from steppe.app.auth import Principal
    from steppe.app.hub import Hub


def dataset_view(hub: Hub, row: Any) -> m.Dataset:
    """A stored dataset with the residency decision at the hub's site."""
    gov = hub.loop.governance
    here = decide(gov_repo.dataset_of(row), gov.site, gov.topology)
    return m.Dataset(
        name=row.name, jurisdiction=row.jurisdiction, sensitivity=row.sensitivity, location=row.location,
        size_bytes=row.size_bytes, allowed_jurisdictions=row.allowed_jurisdictions,
        forbidden_transit=row.forbidden_transit, created_s=row.created_s, here=m.Staging(**asdict(here)),
    )  # fmt: skip


def register_dataset(hub: Hub, who: Principal, body: m.DatasetCreate) -> m.Dataset:
    """Register a dataset (module docstring); returns it with its residency decision here."""
    who.require_hub_admin()
    sites = hub.loop.governance.topology.sites
    if body.location.lower() not in sites:
        raise Invalid.field("location", f"unknown site {body.location!r}; sites: {', '.join(sorted(sites))}")
    ds = Dataset(
        body.name,
        body.jurisdiction,
        Sensitivity(body.sensitivity),
        body.location.lower(),
        body.size_bytes,
        frozenset(j.upper() for j in body.allowed_jurisdictions),
        frozenset(c.upper() for c in body.forbidden_transit),
    )
    now = time.time()
    try:
        with hub.store.write() as conn:
            gov_repo.create_dataset(conn, ds, now)
            record(
                conn,
                actor=who.name,
                action="dataset.register",
                subject=ds.name,
                time_s=now,
                details=body.model_dump(mode="json"),
            )
    except IntegrityError:
        raise Conflict(f"dataset {body.name!r} already exists") from None
    hub.governance_changed()
    with hub.store.read() as conn:
        row = next(r for r in gov_repo.list_datasets(conn) if r.name == body.name)
    return dataset_view(hub, row)


def list_datasets(hub: Hub) -> list[m.Dataset]:
    """Every registered dataset, by name, with its residency decision here."""
    with hub.store.read() as conn:
        rows = gov_repo.list_datasets(conn)
    return [dataset_view(hub, r) for r in rows]
