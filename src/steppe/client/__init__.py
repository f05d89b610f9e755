"""The hub's typed Python SDK.

>>> from steppe.client import HubClient
>>> sorted(__all__)
['ClientConfig', 'HubClient', 'HubError', 'HubUnreachable', 'load_config', 'models']
"""

from steppe.client import models
from steppe.client.config import ClientConfig, load_config
from steppe.client.sdk import HubClient, HubError, HubUnreachable

__all__ = ["ClientConfig", "HubClient", "HubError", "HubUnreachable", "load_config", "models"]
