"""Which account jobs run as: the uid range, configured accounts, and the refusal of a non-root hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from steppe.api import hub as hub_module
from steppe.api.hub import Hub, HubSettings
from steppe.core.errors import SteppeError
from steppe.executors.accounts import AccountMap


def test_hub_created_accounts_come_from_the_documented_range() -> None:
    accounts = AccountMap(uid_base=200000)
    assert (accounts.account(1, "admin").uid, accounts.account(42, "alice").uid) == (200001, 200042)
    with pytest.raises(SteppeError, match="outside the uid range"):
        accounts.account(100000, "bob")
    with pytest.raises(SteppeError, match="uid base 0 is out of range"):
        AccountMap(uid_base=0)


def test_configured_accounts_must_be_ordinary_existing_accounts(tmp_path: Path) -> None:
    mapping = tmp_path / "accounts.toml"
    mapping.write_text('[accounts]\nalice = "root"\n')
    with pytest.raises(SteppeError, match="uid 0 is a system account"):
        AccountMap.load(mapping)
    mapping.write_text('[accounts]\nalice = "no-such-account-xyz"\n')
    with pytest.raises(SteppeError, match="no such Unix account"):
        AccountMap.load(mapping)
    mapping.write_text("[accounts]\nalice = 7\n")
    with pytest.raises(SteppeError, match=r"expected an \[accounts\] table"):
        AccountMap.load(mapping)


def test_a_hub_not_running_as_root_needs_single_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "running_as_root", lambda: False)
    with pytest.raises(SteppeError, match="pass --single-user"):
        Hub.open(HubSettings(data_dir=tmp_path / "multi", gpus=1, gpu_type="H100"))
    assert not (tmp_path / "multi" / "steppe.db").exists()  # refused before anything was written
    hub = Hub.open(HubSettings(data_dir=tmp_path / "single", gpus=1, gpu_type="H100", single_user=True))
    try:
        account = hub.accounts.account(5, "alice")
        assert account.shared and account.uid is None  # every job runs as the hub's own account
        assert (tmp_path / "single").stat().st_mode & 0o777 == 0o700
    finally:
        hub.close()
