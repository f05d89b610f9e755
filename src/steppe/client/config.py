"""Where clients find the hub and their token.

``STEPPE_URL`` and ``STEPPE_TOKEN`` win; otherwise the TOML file that ``steppe login`` writes
(``$STEPPE_CONFIG``, else ``$XDG_CONFIG_HOME/steppe/config.toml``, else
``~/.config/steppe/config.toml``, mode 0600); the URL defaults to ``http://127.0.0.1:8642``.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from steppe.core.errors import ConfigError

DEFAULT_URL = "http://127.0.0.1:8642"


@dataclass(frozen=True)
class ClientConfig:
    url: str
    token: str | None


def config_path() -> Path:
    if os.environ.get("STEPPE_CONFIG"):
        return Path(os.environ["STEPPE_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "steppe" / "config.toml"


def load_config() -> ClientConfig:
    """The URL and token to use (see the module docstring)."""
    data: dict[str, object] = {}
    path = config_path()
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
    url = os.environ.get("STEPPE_URL") or str(data.get("url") or DEFAULT_URL)
    token = os.environ.get("STEPPE_TOKEN") or (str(data["token"]) if data.get("token") else None)
    return ClientConfig(url, token)


def save_config(url: str, token: str) -> Path:
    """Write the config file (mode 0600) and return its path."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"url = {json.dumps(url)}\ntoken = {json.dumps(token)}\n")
    os.chmod(path, 0o600)
    return path
