"""The EPA agent: runs on each hypervisor and keeps the server's inventory of that host current."""

from epa.agent.agent import Agent, Backoff, Cycle, InventoryApi, WarningLog
from epa.agent.host_facts import HostFacts, read_host_facts

__all__ = ["Agent", "Backoff", "Cycle", "HostFacts", "InventoryApi", "WarningLog", "read_host_facts"]
