"""Which Unix account a hub user's jobs run as.

A hub that runs as root starts every job under its submitter's own account, so a job can
read neither the hub's secrets (admin token, database, the hub's ``/proc``) nor another
user's jobs. Each hub user maps to an account in one of two ways:

* **configured**: ``steppe serve --accounts accounts.toml`` names an existing Unix account
  per hub user (``alice = "alice"``); it must exist and be an ordinary account (uid >= 1000,
  not ``nobody``); its home directory is one of the user's own directories;
* **created by the hub**: every other user gets ``uid = gid = uid_base + hub user id`` (default
  base 200000, so hub user 7 runs as uid 200007), an account with no passwd entry, no
  supplementary groups and no home outside the job's own directory.

A hub that does not run as root cannot change uid: it runs only with ``--single-user``, and
then every job runs as the hub's own account (``JobAccount.shared``).

>>> m = AccountMap(uid_base=200000, root=True)
>>> a = m.account(7, "alice")
>>> (a.uid, a.gid, a.name, a.home is None)
(200007, 200007, 'alice', True)
"""

from __future__ import annotations

import os
import pwd
import tomllib
from dataclasses import dataclass
from pathlib import Path

from steppe.core.errors import SteppeError

UID_BASE = 200_000
UID_SPAN = 100_000  # hub-created accounts use uids [uid_base, uid_base + UID_SPAN)
MIN_CONFIGURED_UID = 1000


@dataclass(frozen=True)
class JobAccount:
    """A Unix identity a job runs as; ``uid`` None means the hub's own (single-user) account."""

    name: str
    uid: int | None
    gid: int | None
    home: Path | None = None

    @property
    def shared(self) -> bool:
        return self.uid is None


class AccountMap:
    """Maps hub users to Unix accounts (see the module docstring)."""

    def __init__(self, uid_base: int = UID_BASE, configured: dict[str, str] | None = None, root: bool = True) -> None:
        if not 1000 <= uid_base <= 2**31 - UID_SPAN:
            raise SteppeError(f"uid base {uid_base} is out of range: use 1000 to {2**31 - UID_SPAN} (e.g. 200000)")
        self.uid_base = uid_base
        self.root = root
        self.configured: dict[str, JobAccount] = {}
        for user, account in (configured or {}).items():
            self.configured[user] = _existing_account(user, account)

    @staticmethod
    def load(path: Path | None, uid_base: int = UID_BASE, root: bool = True) -> AccountMap:
        """A map from an accounts file (``[accounts]`` table of hub user = Unix account), or none."""
        configured: dict[str, str] = {}
        if path is not None:
            try:
                data = tomllib.loads(path.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SteppeError(f"{path}: cannot read the accounts file: {exc}") from None
            table = data.get("accounts", {})
            if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
                raise SteppeError(f'{path}: expected an [accounts] table of hub user = "unix account" lines')
            configured = dict(table)
        return AccountMap(uid_base, configured, root)

    def account(self, user_id: int, user: str) -> JobAccount:
        """The account hub user ``user`` (id ``user_id``) runs jobs as."""
        if not self.root:
            return JobAccount(user, None, None, Path(pwd.getpwuid(os.geteuid()).pw_dir))
        hit = self.configured.get(user)
        if hit is not None:
            return hit
        if not 0 < user_id < UID_SPAN:
            raise SteppeError(f"hub user id {user_id} is outside the uid range of {UID_SPAN} accounts")
        uid = self.uid_base + user_id
        return JobAccount(user, uid, uid)


def _existing_account(user: str, account: str) -> JobAccount:
    try:
        entry = pwd.getpwnam(account)
    except KeyError:
        raise SteppeError(f"accounts: {user} = {account!r}: no such Unix account on this machine") from None
    if entry.pw_uid < MIN_CONFIGURED_UID or entry.pw_name == "nobody":
        raise SteppeError(
            f"accounts: {user} = {account!r}: uid {entry.pw_uid} is a system account; "
            f"use an ordinary account (uid >= {MIN_CONFIGURED_UID})"
        )
    return JobAccount(account, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


def running_as_root() -> bool:
    return os.geteuid() == 0
