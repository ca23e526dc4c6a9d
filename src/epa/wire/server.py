"""A server on the wire: what ``/v1/servers`` and ``/v1/hosts/{name}/servers`` answer, the body that creates
one (with its ports), what its agent reports of it, and its console."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from epa.domain.names import shown
from epa.domain.port import Port, VnicType, placed
from epa.domain.server import ServerStatus
from epa.errors import InvalidInput
from epa.wire.host import HOST_NAME


class PortIn(BaseModel):
    """A port as a create or an explain names it; ``to_port`` checks it (the one parse of a port)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    physnet: str = Field(min_length=1, max_length=64)
    vnic_type: str = Field(default="direct", max_length=32)
    trusted: bool = False
    vlan: int | None = None
    mac: str | None = Field(default=None, max_length=17)

    def to_port(self) -> Port:
        mac = self.mac.lower() if self.mac else None
        return Port(self.physnet, self.vnic_type, self.trusted, self.vlan, mac)  # type: ignore[arg-type]

    @classmethod
    def of(cls, port: Port) -> PortIn:
        return cls(
            physnet=port.physical_network,
            vnic_type=port.vnic_type.value,
            trusted=port.trusted,
            vlan=port.vlan,
            mac=port.mac,
        )


def to_ports(bodies: list[PortIn]) -> list[Port]:
    """The ports of a request, each error naming the port's place in the list."""
    return [placed(f"ports[{i}]", body.to_port) for i, body in enumerate(bodies)]


class PortOut(BaseModel):
    """A server's port as recorded: ``mac`` is the one given, or the one EPA chose for it."""

    physnet: str
    vnic_type: VnicType
    trusted: bool
    vlan: int | None
    mac: str

    def to_port(self) -> Port:
        return Port(self.physnet, self.vnic_type, self.trusted, self.vlan, self.mac)


class ServerDevice(BaseModel):
    """A device the server holds: the device request it answers (the flavor's aliases first, then one per
    port) and, for a port's device, the port's index."""

    address: str
    request_index: int
    request_label: str
    port: int | None


class ServerCell(BaseModel):
    """The CPUs and memory the server holds on one host NUMA node."""

    node: int
    cpus: int
    memory_mb: int


class FlavorOfServer(BaseModel):
    """The flavor as it was when the server was made (a copy: the flavor may change or go later)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    name: str
    vcpus: int
    memory_mb: int
    numa_nodes: int = 1
    pci_alias: str | None = Field(default=None, alias="pci_passthrough:alias")
    numa_policy: str | None = None
    disk_gb: int | None = None
    image: str | None = None


class ServerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(pattern=HOST_NAME)
    flavor: str = Field(pattern=HOST_NAME)
    ports: list[PortIn] = Field(default_factory=list, max_length=32)
    image: str | None = Field(default=None, pattern=HOST_NAME, description="The image the server boots.")
    ssh_keys: list[Annotated[str, Field(max_length=8192)]] = Field(
        default_factory=list, max_length=16, description="OpenSSH public keys for the guest's default user."
    )
    user_data: str | None = Field(
        default=None, max_length=65536, description="cloud-init user-data (NoCloud seed), at most 64 KiB."
    )


class ServerState(BaseModel):
    """What a host's agent reports about a server."""

    model_config = ConfigDict(extra="forbid", strict=True)
    status: Literal["building", "active", "stopped", "error"] | None = None
    reason: str | None = Field(default=None, max_length=4096)
    domain_uuid: str | None = Field(default=None, max_length=36)
    domain_state: str | None = Field(default=None, max_length=32)
    domain_xml: str | None = Field(default=None, max_length=1_000_000)


class ServerOut(BaseModel):
    id: str
    name: str
    status: ServerStatus
    status_reason: str | None
    host: str | None
    host_nodes: list[int]
    flavor: FlavorOfServer
    ports: list[PortOut]
    devices: list[ServerDevice]
    cells: list[ServerCell]
    domain_uuid: str | None
    domain_state: str | None
    domain_xml: str | None
    image: dict[str, Any] | None = None
    ssh_keys: list[str] = Field(default_factory=list)
    user_data: str | None = None
    created_at: str
    updated_at: str


class ServerList(BaseModel):
    servers: list[ServerOut]


def read_server(obj: object) -> ServerOut:
    """A server's JSON as the API answered it, checked; ``InvalidInput`` naming the first field at fault
    and its value (pydantic's error does not leave this package)."""
    try:
        return ServerOut.model_validate(obj)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "server"
        raise InvalidInput(f"{field} ({shown(first.get('input'))}): {first.get('msg', 'is not valid')}") from e


class ConsoleIn(BaseModel):
    """What a host's agent sends of a server's console: its end, already escaped (escaped again here)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    text: str = Field(max_length=256 * 1024)


class ConsoleOut(BaseModel):
    server_id: str
    lines: list[str]
    updated_at: str | None
