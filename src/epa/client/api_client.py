"""A synchronous client for the EPA REST API (docs/api.md): one method per route, errors as
``epa.errors`` classes, JSON bodies returned as plain dicts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from epa.client._errors import error_from_response
from epa.domain.device_spec import ClassifiedDevice
from epa.domain.host import NumaCell
from epa.errors import EpaError, InvalidInput, ServiceUnavailable

JsonObject = dict[str, Any]

DEFAULT_URL = "http://127.0.0.1:8700"
DEFAULT_PAGE_SIZE = 1000


def device_json(c: ClassifiedDevice) -> JsonObject:
    """One device as an inventory report carries it: the discovery fields, assignable and tags."""
    out: JsonObject = c.device.to_json()
    out["assignable"] = c.assignable
    out["tags"] = dict(c.tags)
    return out


def inventory_json(numa_cells: Sequence[NumaCell], devices: Sequence[ClassifiedDevice]) -> JsonObject:
    """The body of an inventory report, less the generation (what an agent compares between scans)."""
    return {
        "numa_cells": [c.to_json() for c in numa_cells],
        "devices": [device_json(d) for d in devices],
    }


@dataclass(frozen=True, slots=True)
class InventoryResult:
    """The server's answer to an inventory report."""

    generation: int
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    vanished_in_use: tuple[str, ...] = ()
    unchanged: int = 0

    @classmethod
    def from_json(cls, body: JsonObject) -> InventoryResult:
        generation = body.get("generation")
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise EpaError(f"inventory answer: generation ({generation!r}) is not an integer")

        def addrs(key: str) -> tuple[str, ...]:
            value = body.get(key) or []
            if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
                raise EpaError(f"inventory answer: {key} ({value!r}) is not a list of addresses")
            return tuple(value)

        unchanged = body.get("unchanged", 0)
        return cls(
            generation=generation,
            added=addrs("added"),
            updated=addrs("updated"),
            removed=addrs("removed"),
            vanished_in_use=addrs("vanished_in_use"),
            unchanged=unchanged if isinstance(unchanged, int) else 0,
        )


def _segment(value: str) -> str:
    """A path segment, escaped so that a name can never reach another route."""
    return quote(value, safe="")


class ApiClient:
    """The EPA API at ``base_url`` with bearer ``token``. Raises ``ServiceUnavailable`` (naming the URL)
    when the server cannot be reached, times out or answers 5xx, and the class of the answer's error
    code otherwise (``NotFound``, ``GenerationConflict``, ``InvalidInput``...)."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "epa-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)
        # Image transfers: each read and write may wait as long as any call, the whole may take minutes.
        self._long = httpx.Timeout(timeout, connect=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: object = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = self._http.request(
                method,
                path,
                json=body,
                params=dict(params) if params else None,
                headers=dict(headers) if headers else None,
            )
        except httpx.TimeoutException as e:
            raise ServiceUnavailable(f"EPA server at {url} did not answer {method} in time: {e}") from e
        except httpx.HTTPError as e:
            raise ServiceUnavailable(f"cannot reach EPA server at {url}: {e}") from e
        if response.status_code >= 300:
            raise error_from_response(response.status_code, response.text, method, url)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as e:
            raise EpaError(f"{method} {url}: the answer is not JSON ({response.text[:200]!r})") from e

    def _object(
        self, method: str, path: str, body: object = None, headers: Mapping[str, str] | None = None
    ) -> JsonObject:
        answer = self._request(method, path, body, headers=headers)
        if not isinstance(answer, dict):
            raise EpaError(f"{method} {self.base_url}{path}: expected a JSON object, got {answer!r}")
        return answer

    def _list(self, path: str, key: str) -> list[JsonObject]:
        answer = self._object("GET", path)
        items = answer.get(key)
        if not isinstance(items, list):
            raise EpaError(f"GET {self.base_url}{path}: the answer has no list {key!r}")
        return items

    # -- health --------------------------------------------------------------------------------

    def health(self) -> JsonObject:
        return self._object("GET", "/healthz")

    # -- hosts ---------------------------------------------------------------------------------

    def create_host(self, name: str) -> JsonObject:
        """``{"host": Host, "agent_token": "..."}``: the token is shown this once."""
        return self._object("POST", "/v1/hosts", {"name": name})

    def list_hosts(self) -> list[JsonObject]:
        return self._list("/v1/hosts", "hosts")

    def get_host(self, name: str) -> JsonObject:
        return self._object("GET", f"/v1/hosts/{_segment(name)}")

    def set_host_enabled(self, name: str, enabled: bool) -> JsonObject:
        return self._object("PATCH", f"/v1/hosts/{_segment(name)}", {"enabled": enabled})

    def put_hypervisor(self, name: str, state: Mapping[str, Any]) -> JsonObject:
        """Say what host ``name``'s agent sees of its hypervisor (uri, reachable, reason, domain_type, warnings)."""
        return self._object("PUT", f"/v1/hosts/{_segment(name)}/hypervisor", dict(state))

    def put_images(self, name: str, parts: Sequence[Mapping[str, Any]]) -> JsonObject:
        """Say which image parts host ``name``'s agent holds in its cache (``[{"sha256", "size"}]``)."""
        return self._object("PUT", f"/v1/hosts/{_segment(name)}/images", {"parts": [dict(p) for p in parts]})

    def rotate_token(self, name: str) -> str:
        """A new agent token for ``name``; the old one stops working."""
        answer = self._object("POST", f"/v1/hosts/{_segment(name)}/token")
        token = answer.get("agent_token")
        if not isinstance(token, str):
            raise EpaError(f"POST /v1/hosts/{name}/token: the answer has no agent_token")
        return token

    def delete_host(self, name: str) -> None:
        self._request("DELETE", f"/v1/hosts/{_segment(name)}")

    def put_inventory(
        self,
        host: str,
        generation: int,
        numa_cells: Sequence[NumaCell],
        devices: Sequence[ClassifiedDevice],
    ) -> InventoryResult:
        """Report ``host``'s full inventory, based on the host ``generation`` last seen; raises
        ``GenerationConflict`` (with the server's ``current``) when that is stale."""
        body = {"generation": generation, **inventory_json(numa_cells, devices)}
        answer = self._object("PUT", f"/v1/hosts/{_segment(host)}/inventory", body)
        return InventoryResult.from_json(answer)

    def heartbeat(self, host: str, generation: int) -> int:
        """Tell the server ``host``'s agent is alive and holds ``generation`` (its inventory unchanged);
        the host's generation back. ``GenerationConflict`` (with ``current``) when the server has
        another: the agent then sends its full report."""
        answer = self._object("POST", f"/v1/hosts/{_segment(host)}/heartbeat", {"generation": generation})
        current = answer.get("generation")
        if not isinstance(current, int) or isinstance(current, bool):
            raise EpaError(f"heartbeat answer: generation ({current!r}) is not an integer")
        return current

    # -- devices -------------------------------------------------------------------------------

    def iter_devices(
        self,
        host: str | None = None,
        status: str | None = None,
        dev_type: str | None = None,
        assignable: bool | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[JsonObject]:
        """Every device matching the filters, following ``next_marker`` page by page."""
        params: dict[str, str] = {"limit": str(page_size)}
        for key, value in (("host", host), ("status", status), ("dev_type", dev_type)):
            if value is not None:
                params[key] = value
        if assignable is not None:
            params["assignable"] = "true" if assignable else "false"
        seen_markers: set[str] = set()
        while True:
            answer = self._request("GET", "/v1/devices", params=params)
            if not isinstance(answer, dict) or not isinstance(answer.get("devices"), list):
                raise EpaError(f"GET {self.base_url}/v1/devices: the answer has no list 'devices'")
            yield from answer["devices"]
            marker = answer.get("next_marker")
            if not isinstance(marker, str) or not marker:
                return
            if marker in seen_markers:  # a server bug must not loop us forever
                raise EpaError(f"GET {self.base_url}/v1/devices: next_marker {marker!r} repeats")
            seen_markers.add(marker)
            params["marker"] = marker

    def list_devices(
        self,
        host: str | None = None,
        status: str | None = None,
        dev_type: str | None = None,
        assignable: bool | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> list[JsonObject]:
        return list(self.iter_devices(host, status, dev_type, assignable, page_size))

    def get_device(self, host: str, address: str) -> JsonObject:
        return self._object("GET", f"/v1/hosts/{_segment(host)}/devices/{_segment(address)}")

    # -- aliases -------------------------------------------------------------------------------

    def create_alias(self, entries: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> JsonObject:
        """One Nova alias entry, or a list of entries with one name (alternatives)."""
        body: object = dict(entries) if isinstance(entries, Mapping) else [dict(e) for e in entries]
        return self._object("POST", "/v1/aliases", body)

    def list_aliases(self) -> list[JsonObject]:
        return self._list("/v1/aliases", "aliases")

    def get_alias(self, name: str) -> JsonObject:
        return self._object("GET", f"/v1/aliases/{_segment(name)}")

    def delete_alias(self, name: str) -> None:
        self._request("DELETE", f"/v1/aliases/{_segment(name)}")

    # -- flavors -------------------------------------------------------------------------------

    def create_flavor(self, body: Mapping[str, Any]) -> JsonObject:
        return self._object("POST", "/v1/flavors", dict(body))

    def list_flavors(self) -> list[JsonObject]:
        return self._list("/v1/flavors", "flavors")

    def get_flavor(self, name: str) -> JsonObject:
        return self._object("GET", f"/v1/flavors/{_segment(name)}")

    def delete_flavor(self, name: str) -> None:
        self._request("DELETE", f"/v1/flavors/{_segment(name)}")

    # -- images ----------------------------------------------------------------------------------

    def create_image(self, name: str, kind: str = "disk", cmdline: str | None = None) -> JsonObject:
        body: JsonObject = {"name": name, "kind": kind}
        if cmdline is not None:
            body["cmdline"] = cmdline
        return self._object("POST", "/v1/images", body)

    def list_images(self) -> list[JsonObject]:
        return self._list("/v1/images", "images")

    def get_image(self, name: str) -> JsonObject:
        return self._object("GET", f"/v1/images/{_segment(name)}")

    def delete_image(self, name: str) -> None:
        self._request("DELETE", f"/v1/images/{_segment(name)}")

    def upload_image_part(self, name: str, part: str, path: Path, chunk_bytes: int = 1024 * 1024) -> JsonObject:
        """Send the file at ``path`` as image ``name``'s ``part``, read and sent a chunk at a time, with
        its size and sha256 (computed first, so the server can refuse a body that arrives damaged)."""
        digest = hashlib.sha256()
        size = 0
        try:
            with path.open("rb") as f:
                while chunk := f.read(chunk_bytes):
                    digest.update(chunk)
                    size += len(chunk)
        except OSError as e:
            raise InvalidInput(f"--file ({str(path)!r}) cannot be read: {e.strerror or e}") from e

        def body() -> Iterator[bytes]:
            with path.open("rb") as f:
                while chunk := f.read(chunk_bytes):
                    yield chunk

        url = f"/v1/images/{_segment(name)}/{_segment(part)}"
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
            "X-Image-Sha256": digest.hexdigest(),
        }
        try:
            response = self._http.put(url, content=body(), headers=headers, timeout=self._long)
        except httpx.HTTPError as e:
            raise ServiceUnavailable(f"cannot upload to EPA server at {self.base_url}{url}: {e}") from e
        if response.status_code >= 300:
            raise error_from_response(response.status_code, response.text, "PUT", f"{self.base_url}{url}")
        answer: JsonObject = response.json()
        return answer

    def download_image_part(self, name: str, part: str, out: BinaryIO) -> tuple[int, str]:
        """Write image ``name``'s ``part`` to ``out`` as it arrives; (bytes written, their sha256)."""
        url = f"/v1/images/{_segment(name)}/{_segment(part)}"
        digest = hashlib.sha256()
        size = 0
        try:
            with self._http.stream("GET", url, timeout=self._long) as response:
                if response.status_code >= 300:
                    response.read()
                    raise error_from_response(response.status_code, response.text, "GET", f"{self.base_url}{url}")
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
        except httpx.HTTPError as e:
            raise ServiceUnavailable(f"cannot download from EPA server at {self.base_url}{url}: {e}") from e
        return size, digest.hexdigest()

    # -- servers and the scheduler ---------------------------------------------------------------

    def create_server(
        self,
        name: str,
        flavor: str,
        ports: Sequence[Mapping[str, Any]] = (),
        idempotency_key: str | None = None,
        boot: Mapping[str, Any] | None = None,
    ) -> JsonObject:
        """Create a server. With ``idempotency_key``, sending the same create again (after a lost answer)
        returns the server the first one made instead of making another. ``boot``: ``image``,
        ``ssh_keys``, ``user_data``."""
        body = {"name": name, "flavor": flavor, "ports": [dict(p) for p in ports], **(boot or {})}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._object("POST", "/v1/servers", body, headers=headers)

    def list_servers(self, host: str | None = None, status: str | None = None) -> list[JsonObject]:
        query = "&".join(f"{k}={_segment(v)}" for k, v in (("host", host), ("status", status)) if v)
        return self._list("/v1/servers" + (f"?{query}" if query else ""), "servers")

    def get_server(self, server_id: str) -> JsonObject:
        return self._object("GET", f"/v1/servers/{_segment(server_id)}")

    def delete_server(self, server_id: str, force: bool = False) -> JsonObject:
        suffix = "?force=true" if force else ""
        return self._object("DELETE", f"/v1/servers/{_segment(server_id)}{suffix}")

    def explain(self, flavor: str, ports: Sequence[Mapping[str, Any]] = (), limit: int = 20) -> JsonObject:
        body = {"flavor": flavor, "ports": [dict(p) for p in ports], "limit": limit}
        return self._object("POST", "/v1/scheduler/explain", body)

    # -- provisioning (the agent's side of servers) --------------------------------------------------

    def host_servers(self, host: str) -> list[JsonObject]:
        """Every server placed on ``host`` that is not deleted: what its agent must make real."""
        return self._list(f"/v1/hosts/{_segment(host)}/servers", "servers")

    def post_server_state(
        self,
        server_id: str,
        *,
        status: str | None = None,
        reason: str | None = None,
        domain_uuid: str | None = None,
        domain_state: str | None = None,
        domain_xml: str | None = None,
    ) -> JsonObject:
        """Report what the agent made of a server: a new ``status`` (``error`` releases its devices;
        None leaves the status as it is) and the domain as libvirt shows it."""
        body = {
            "status": status,
            "reason": reason,
            "domain_uuid": domain_uuid,
            "domain_state": domain_state,
            "domain_xml": domain_xml,
        }
        return self._object("POST", f"/v1/servers/{_segment(server_id)}/state", body)

    def post_released(self, server_id: str) -> JsonObject | None:
        """A ``deleting`` server is gone from its host: its devices go back to the pool."""
        answer = self._request("POST", f"/v1/servers/{_segment(server_id)}/released")
        return answer if isinstance(answer, dict) else None

    def put_console(self, server_id: str, text: str) -> JsonObject:
        return self._object("PUT", f"/v1/servers/{_segment(server_id)}/console", {"text": text})

    def get_console(self, server_id: str, tail: int = 100) -> JsonObject:
        return self._object("GET", f"/v1/servers/{_segment(server_id)}/console?tail={int(tail)}")

    def stop_server(self, server_id: str) -> JsonObject:
        return self._object("POST", f"/v1/servers/{_segment(server_id)}/stop")

    def start_server(self, server_id: str) -> JsonObject:
        return self._object("POST", f"/v1/servers/{_segment(server_id)}/start")
