"""The EPA API client: what the agent and the CLI use to talk to ``epa serve`` over HTTP."""

from epa.client.api_client import (
    DEFAULT_URL,
    ApiClient,
    InventoryResult,
    JsonObject,
    device_json,
    inventory_json,
)

__all__ = ["DEFAULT_URL", "ApiClient", "InventoryResult", "JsonObject", "device_json", "inventory_json"]
