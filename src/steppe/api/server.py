"""``steppe serve``: open the hub, write the admin token on first start, and serve the API with uvicorn."""

from __future__ import annotations

import logging
from collections.abc import Callable

import uvicorn

from steppe.api.app import create_app
from steppe.api.hub import Hub, HubSettings


def serve(
    settings: HubSettings,
    host: str = "127.0.0.1",
    port: int = 8642,
    reset_admin_token: bool = False,
    say: Callable[[str], None] = print,
) -> None:
    """Run the hub until interrupted (running jobs survive a stop and are adopted on the next start)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    hub = Hub.open(settings)
    wrote = hub.ensure_admin(reset=reset_admin_token)
    say(f"Steppe hub on http://{host}:{port}: policy {settings.policy}, {hub.fleet.source}")
    say(f"Data in {settings.data_dir}")
    if wrote:
        say(f"Admin token written to {hub.admin_token_path} (mode 0600)")
    else:
        say(f"Admin token: see {hub.admin_token_path} (written on first start; --reset-admin-token makes a new one)")
    config = uvicorn.Config(create_app(hub), host=host, port=port, log_level="warning", access_log=False)
    uvicorn.Server(config).run()
