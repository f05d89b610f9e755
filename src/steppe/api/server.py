"""``steppe serve``: lock the data directory, bind the port, open the hub, then serve the API with uvicorn.

The wiring is ``steppe.app.bootstrap``'s; the order matters for crash safety: the exclusive
lock on the data directory comes first (a second hub on the same directory is refused before it
reads or launches anything), then the port is bound (a hub that cannot listen stops before
recovery runs or a job starts), and only then is the store opened, the state recovered and the
first scheduling step taken (in the app's lifespan). The process runs with umask 077, so
everything it writes is private.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import uvicorn

from steppe.api.app import create_app
from steppe.api.hub import Hub, HubSettings
from steppe.api.logs import configure_logging
from steppe.app.bootstrap import lock_data_dir
from steppe.core.errors import SteppeError
from steppe.executors.accounts import running_as_root


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a clear error if the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SteppeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def serve(
    settings: HubSettings,
    host: str = "127.0.0.1",
    port: int = 8642,
    reset_admin_token: bool = False,
    say: Callable[[str], None] = print,
    log_format: str = "text",
) -> None:
    """Run the hub until interrupted (running jobs survive a stop and are adopted on the next start);
    the server log is ``log_format``: text lines or JSON lines (``steppe.api.logs``)."""
    configure_logging(log_format)
    os.umask(0o077)
    root = running_as_root()
    lock = lock_data_dir(settings, root)
    try:
        sock = bind(host, port)
        hub = Hub.open(settings)
        wrote = hub.ensure_admin(reset=reset_admin_token)
        say(f"Steppe hub on http://{host}:{port}: policy {settings.policy}, {hub.fleet.source}")
        say(f"Data in {settings.data_dir}")
        if root:
            say(f"Jobs run as their users' own Unix accounts (uids from {settings.uid_base}, or --accounts)")
        else:
            say(f"Single-user hub: every job runs as uid {os.geteuid()}, this hub's own account, and can read "
                "its data directory")  # fmt: skip
        if wrote:
            say(f"Admin token written to {hub.admin_token_path} (mode 0600)")
        else:
            say(f"Admin token: see {hub.admin_token_path} (written on first start; --reset-admin-token writes a new "
                "one and revokes the old)")  # fmt: skip
        # no proxy headers: the failure limit keys on the address the hub sees (docs/security.md)
        config = uvicorn.Config(create_app(hub), log_level="warning", access_log=False, proxy_headers=False)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        lock.release()
