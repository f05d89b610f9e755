"""The application layer without HTTP: workflows take typed inputs and raise typed domain errors,
which the API maps to its problem responses; the bootstrap wires a hub for ``steppe serve`` and tests.
In process, with the mock executor (no processes run, the loop is not started)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from apphub import app_hub

from steppe.api.problems import STATUS, status_of
from steppe.app import allocations, jobs, review, tenancy
from steppe.app.auth import Principal
from steppe.app.bootstrap import HubSettings, lock_data_dir, open_hub
from steppe.app.errors import AppError, Conflict, Forbidden, Invalid, NotFound, TermsNotAccepted, Unauthenticated
from steppe.app.hub import Hub
from steppe.client import models as m
from steppe.control.datadir import DataDirLocked
from steppe.core.errors import SteppeError
from steppe.governance.terms import TermsVersion
from steppe.store import governance as gov_repo


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[Hub, Principal, Principal, Principal]]:
    """A hub (not started) with organisations kaznu (member alice) and enu (member bob), and its admin."""
    with app_hub(tmp_path) as a:
        yield a.hub, a.alice, a.bob, a.admin


def _submit(h: Hub, who: Principal, key: str | None = None, **fields: object) -> jobs.Submitted:
    body = m.JobSubmit.model_validate({"project": "kaznu/nlp", "argv": ["/bin/true"], **fields})
    return asyncio.run(jobs.submit(h, who, body, key))


def test_submit_stores_a_pending_job_and_an_idempotent_retry_finds_it(
    hub: tuple[Hub, Principal, Principal, Principal],
) -> None:
    h, alice, _, _ = hub
    done = _submit(h, alice, key="k1", gpus=2)
    assert not done.replayed and done.row.state == "PENDING" and done.row.gpus == 2
    again = _submit(h, alice, key="k1", gpus=2)
    assert again.replayed and again.job_id == done.job_id
    with pytest.raises(Conflict, match="different request"):
        _submit(h, alice, key="k1", gpus=1)


def test_submit_refusals_are_typed_and_name_their_fields(hub: tuple[Hub, Principal, Principal, Principal]) -> None:
    h, alice, bob, _ = hub
    with pytest.raises(Invalid) as bad:
        _submit(h, bob)  # another organisation's project does not exist for bob
    assert bad.value.errors == [{"field": "project", "message": "no project 'kaznu/nlp'"}]
    with pytest.raises(Invalid) as bad:
        _submit(h, alice, gpus=5, walltime_s=60)
    assert [e["field"] for e in bad.value.errors] == ["gpus"]
    with pytest.raises(Invalid, match="datasets: not registered: corpus"):
        _submit(h, alice, datasets=["corpus"])
    with h.store.write() as conn:
        gov_repo.publish_terms(conn, TermsVersion.of_text("1", date(2000, 1, 1), "be good"), "be good", 0.0)
    h.terms_changed()
    with pytest.raises(TermsNotAccepted, match="must accept the acceptable-use terms version 1"):
        _submit(h, alice)


def test_cancel_checks_who_acts_and_what_state(hub: tuple[Hub, Principal, Principal, Principal]) -> None:
    h, alice, bob, _ = hub
    job_id = _submit(h, alice).job_id
    with pytest.raises(NotFound):
        jobs.cancel(h, bob, job_id)  # another organisation's job is not found, as a missing one
    carol = Principal(alice.user_id + 100, "carol", "member", alice.org_id, "kaznu")
    with pytest.raises(Forbidden, match="owner or an org-admin"):
        jobs.cancel(h, carol, job_id)
    with h.store.write() as conn:
        conn.exec_driver_sql("UPDATE jobs SET state = 'COMPLETED' WHERE id = ?", (job_id,))
    with pytest.raises(Conflict, match="already ended"):
        jobs.cancel(h, alice, job_id)


def test_tenancy_and_review_workflows_raise_typed_errors(hub: tuple[Hub, Principal, Principal, Principal]) -> None:
    h, alice, _, admin = hub
    with pytest.raises(Forbidden, match="hub-admin"):
        tenancy.set_share(h, alice, "kaznu", 2.0, 8, "more")
    with pytest.raises(NotFound):
        tenancy.set_share(h, admin, "nowhere", 2.0, 8, "more")
    grant = m.AllocationCreate(period="2031-05", gpu_hours=10, reason="call 1")
    assert allocations.create_allocation(h, admin, "kaznu", "nlp", grant).remaining_gpu_hours == 10
    with pytest.raises(Conflict, match="overlaps"):
        allocations.create_allocation(h, admin, "kaznu", "nlp", grant)
    with pytest.raises(Invalid) as bad:
        allocations.create_allocation(
            h, admin, "kaznu", "nlp", m.AllocationCreate(period="2031-05", gpu_hours=1, gpu_types=["B200"], reason="x")
        )
    assert bad.value.errors[0]["field"] == "gpu_types"
    with pytest.raises(Invalid) as bad:
        review.submit_new(h, alice, {"project": "kaznu/nlp"})
    assert bad.value.title == "Invalid proposal" and bad.value.errors


def test_every_domain_error_has_an_api_status() -> None:
    samples = [NotFound("job 1"), Forbidden("x"), Conflict("x"), Invalid.field("gpus", "x"), TermsNotAccepted("x"),
               Unauthenticated("x")]  # fmt: skip
    assert {type(e): status_of(e) for e in samples} == STATUS == {
        NotFound: 404, Forbidden: 403, Conflict: 409, Invalid: 422, TermsNotAccepted: 403, Unauthenticated: 401,
    }  # fmt: skip
    assert status_of(AppError("unknown")) == 500
    assert str(Invalid.field("gpus", "too many")) == "gpus: too many"


def test_bootstrap_refuses_before_writing_and_locks_the_data_dir(tmp_path: Path) -> None:
    settings = HubSettings(data_dir=tmp_path / "data", gpus=1, gpu_type="H100")
    with pytest.raises(SteppeError, match="--single-user"):
        open_hub(settings, root=False)
    assert not (tmp_path / "data").exists()
    lock = lock_data_dir(HubSettings(data_dir=tmp_path / "data", single_user=True), root=False)
    try:
        with pytest.raises(DataDirLocked, match="another hub already uses this data directory"):
            lock_data_dir(HubSettings(data_dir=tmp_path / "data", single_user=True), root=False)
    finally:
        lock.release()
