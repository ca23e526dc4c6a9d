"""Every action on a server, in the layer that owns its invariants: create (scheduled and claimed),
explain, stop, start, delete, and what a host's agent reports (progress, failure, the teardown done).

Each action that gives devices back reloads that host in the scheduler's view before it returns, so no
caller has to remember to; each agent action checks that the caller is the server's host's agent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from epa.domain import cloud_init
from epa.domain.port import Port
from epa.domain.server import HostName, ServerId, ServerStatus
from epa.errors import Forbidden, InvalidInput
from epa.inventory import flavors, images, lifecycle, servers
from epa.inventory.records import Principal, ServerRecord
from epa.scheduler.request import ServerRequest
from epa.scheduler.scheduler import Explanation
from epa.service.scheduling import SchedulingService


@dataclass(frozen=True, slots=True)
class Boot:
    """What a create asks its server to boot: an image (None: the flavor's, if any) and cloud-init data."""

    image: str | None = None
    ssh_keys: Sequence[str] = field(default_factory=tuple)
    user_data: str | None = None


@dataclass(frozen=True, slots=True)
class AgentReport:
    """What a host's agent says about a server it makes: a status, why, and the domain it sees."""

    status: ServerStatus | None = None
    reason: str | None = None
    domain_uuid: str | None = None
    domain_state: str | None = None
    domain_xml: str | None = None


def require_host(who: Principal, host: str) -> None:
    """Admins reach every host; an agent only its own (``Forbidden`` naming both otherwise)."""
    if not who.may_act_for(host):
        raise Forbidden(f"the agent token of host {who.host!r} may not act on host {host!r}")


class ServerActions:
    def __init__(self, scheduling: SchedulingService) -> None:
        self.scheduling = scheduling
        self.db = scheduling.db

    def _boot(self, flavor: str, boot: Boot) -> dict[str, Any] | None:
        """What the server boots: the image it names, else its flavor's (which must be whole), and its
        cloud-init data, checked here."""
        name = boot.image if boot.image is not None else flavors.get_flavor(self.db, flavor).image
        if name is None:
            if boot.ssh_keys or boot.user_data is not None:
                raise InvalidInput("image (None): ssh_keys and user_data need an image to boot")
            return None
        image = images.active_image(self.db, name).snapshot()
        return {"image": image, **cloud_init.check(boot.ssh_keys, boot.user_data)}

    def create(
        self, name: str, flavor: str, ports: Sequence[Port], boot: Boot, request_key: str | None = None
    ) -> tuple[ServerRecord, bool]:
        """Schedule and claim (a server in ``error`` with the reason when no host can take it). With a
        ``request_key`` a create sent again gets the first one's server back: True when it did."""
        booted = self._boot(flavor, boot)
        if request_key is None:
            return self.scheduling.create(name, flavor, ports, boot=booted), False
        return self.scheduling.create_once(request_key, name, flavor, ports, booted)

    def explain(self, flavor: str, ports: Sequence[Port], image: str | None) -> tuple[ServerRequest, Explanation]:
        boot = {"image": images.active_image(self.db, image).snapshot()} if image is not None else None
        return self.scheduling.explain(flavor, ports, boot)

    def stop(self, server_id: ServerId) -> ServerRecord:
        return lifecycle.stop(self.db, server_id)

    def start(self, server_id: ServerId) -> ServerRecord:
        return lifecycle.start(self.db, server_id)

    def delete(self, server_id: ServerId, force: bool = False) -> ServerRecord:
        """A server on a host goes to ``deleting`` (its agent tears it down, then reports the release);
        one without a host, or with ``force`` (the host is gone for good), is released at once."""
        record = lifecycle.request_delete(self.db, server_id, force=force)
        if record.status is ServerStatus.DELETED:
            self.scheduling.released(record.host)
        return record

    def _agents_server(self, who: Principal, server_id: ServerId) -> ServerRecord:
        current = servers.get_server(self.db, server_id)
        require_host(who, current.host or "")
        return current

    def report(self, who: Principal, server_id: ServerId, report: AgentReport) -> ServerRecord:
        """The host's agent reports progress, failure (which releases the devices) or the domain it sees."""
        self._agents_server(who, server_id)
        record = lifecycle.report(
            self.db, server_id, report.status, report.reason, report.domain_uuid, report.domain_state, report.domain_xml
        )
        if report.status is ServerStatus.ERROR:
            self.scheduling.released(record.host)
        return record

    def released(self, who: Principal, server_id: ServerId) -> ServerRecord:
        """The host's agent destroyed the domain and reset the VFs: the devices go back to the pool."""
        self._agents_server(who, server_id)
        record = lifecycle.teardown_done(self.db, server_id)
        self.scheduling.released(record.host)
        return record

    def on_host(self, who: Principal, host: HostName) -> list[ServerRecord]:
        """What the host's agent must make real: every server on the host that is not deleted."""
        require_host(who, host)
        return servers.servers_on_host(self.db, host)
