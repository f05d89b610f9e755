"""An in-process hub for the application layer's tests: mock executor, no HTTP, no processes.

``app_hub(tmp_path)`` yields an ``AppHub``: the hub (single-user, 4 H100, no review gate) with
organisations kaznu (member alice, org-admin olga) and enu (member bob), each with a project
``nlp``, and a hub-admin ``root``. With ``start=True`` the loop runs, so the workflows that wait
for its next cycle (datasets, shares, cancels) return at once instead of after their timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from steppe.app.auth import Principal
from steppe.app.bootstrap import HubSettings, open_hub
from steppe.app.hub import Hub
from steppe.store import tenancy as tenancy_repo


@dataclass(frozen=True)
class AppHub:
    hub: Hub
    alice: Principal  # member of kaznu
    olga: Principal  # org-admin of kaznu
    bob: Principal  # member of enu
    admin: Principal  # hub-admin


@contextmanager
def app_hub(tmp_path: Path, start: bool = False) -> Iterator[AppHub]:
    """The hub and its callers (module docstring); closed on exit."""
    h = open_hub(HubSettings(data_dir=tmp_path / "data", gpus=4, gpu_type="H100", review_gate=False,
                             executor="mock", single_user=True), root=False)  # fmt: skip
    who: dict[str, Principal] = {}
    with h.store.write() as conn:
        for org, users in (("kaznu", (("alice", "member"), ("olga", "org-admin"))), ("enu", (("bob", "member"),))):
            org_id = tenancy_repo.create_org(conn, org, "KZ", 0.0)
            tenancy_repo.create_project(conn, org_id, "nlp", 0.0)
            for user, role in users:
                user_id = tenancy_repo.create_user(conn, user, org_id, role, 0.0)
                who[user] = Principal(user_id, user, role, org_id, org)
        admin_id = tenancy_repo.create_user(conn, "root", None, "hub-admin", 0.0)
    try:
        if start:
            h.start()
        yield AppHub(h, who["alice"], who["olga"], who["bob"], Principal(admin_id, "root", "hub-admin", None, None))
    finally:
        h.close()
