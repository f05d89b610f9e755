"""Fixtures for the live hub's tests: real ``steppe serve`` processes on loopback, SDK clients,
tenants, and a throwaway PostgreSQL server (installed and started by ``scripts/pg_throwaway.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hubtest import ROOT, HubProcess, Tenant, make_tenant


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One hub shared by the API tests: 4 declared H100 GPUs, a 1 s grace period, fast charging.

    It runs without the review gate (a lab's hub): these tests are about scheduling and tenancy;
    the governance tests (test_hub_governance.py) run gated hubs of their own.
    """
    data = tmp_path_factory.mktemp("hub") / "data"
    proc = HubProcess(
        data, "--gpus", "4", "--gpu-type", "H100", "--grace", "1", "--charge-interval", "0.2", "--no-review-gate"
    ).start()
    yield proc
    proc.stop()
    proc.kill_jobs()


@pytest.fixture(scope="session")
def tenants(hub: HubProcess) -> dict[str, Tenant]:
    return {name: make_tenant(hub, name) for name in ("kaznu", "enu")}


@pytest.fixture
def fresh_hub(tmp_path: Path) -> Iterator[Callable[..., HubProcess]]:
    """A factory of hubs of one's own (for tests that kill or restart them)."""
    made: list[HubProcess] = []

    def make(*options: str) -> HubProcess:
        proc = HubProcess(tmp_path / f"data{len(made)}", *options).start()
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.stop()
        proc.kill_jobs()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server; fails (never skips) if it cannot be installed or started."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from pg_throwaway import PostgresUnavailable, throwaway_postgres

    try:
        with throwaway_postgres(install=False) as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL store tests need a PostgreSQL server: {exc}", pytrace=False)
