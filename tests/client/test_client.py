"""ApiClient against a real HTTP server (stdlib, in a thread, answering canned bodies): error codes come
back as epa.errors classes, and every route sends the request docs/api.md describes."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from epa.client import ApiClient
from epa.errors import (
    Conflict,
    EpaError,
    Forbidden,
    GenerationConflict,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)


@dataclass
class Answer:
    status: int
    body: str = ""
    delay: float = 0.0
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: int, value: Any) -> Answer:
        return cls(status, json.dumps(value))

    @classmethod
    def error(cls, status: int, code: str, message: str, **extra: Any) -> Answer:
        return cls.json(status, {"error": {"code": code, "message": message, **extra}})


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeApi:
    url: str = ""
    answers: list[Answer] = field(default_factory=list)
    default: Answer = field(default_factory=lambda: Answer.json(200, {}))
    requests: list[Seen] = field(default_factory=list)

    def next_answer(self) -> Answer:
        return self.answers.pop(0) if self.answers else self.default


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            api.requests.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            answer = api.next_answer()
            if answer.delay:
                time.sleep(answer.delay)
            data = answer.body.encode()
            self.send_response(answer.status)
            if data:
                self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def client(fake_api: FakeApi) -> Iterator[ApiClient]:
    with ApiClient(fake_api.url, "t0ken", timeout=2.0) as c:
        yield c


@pytest.mark.parametrize(
    ("answer", "cls", "code"),
    [
        (Answer.error(401, "unauthorized", "no token"), Unauthorized, "unauthorized"),
        (Answer.error(403, "forbidden", "not your host"), Forbidden, "forbidden"),
        (Answer.error(404, "not_found", "host x does not exist"), NotFound, "not_found"),
        (Answer.error(409, "conflict", "host x exists"), Conflict, "conflict"),
        (Answer.error(400, "invalid_input", "name ('') is bad"), InvalidInput, "invalid_input"),
        (Answer.error(400, "invalid_alias", "alias qat: bad"), InvalidInput, "invalid_alias"),
        (Answer.error(405, "method_not_allowed", "no"), EpaError, "method_not_allowed"),
        (Answer(404, "<html>Not Found</html>", content_type="text/html"), NotFound, "not_found"),
        (Answer(418, "teapot"), EpaError, "epa_error"),
    ],
)
def test_error_code_maps_to_its_class(
    fake_api: FakeApi, client: ApiClient, answer: Answer, cls: type[EpaError], code: str
) -> None:
    fake_api.answers.append(answer)
    with pytest.raises(EpaError) as info:
        client.get_host("x")
    assert type(info.value) is cls
    assert info.value.code == code
    assert "not_found" not in str(info.value) or code == "not_found"


def test_message_is_the_servers(fake_api: FakeApi, client: ApiClient) -> None:
    fake_api.answers.append(Answer.error(404, "not_found", "host nfv-9 does not exist"))
    with pytest.raises(NotFound, match=r"^host nfv-9 does not exist$"):
        client.get_host("nfv-9")


@pytest.mark.parametrize("inside_error", [True, False])
def test_generation_conflict_carries_the_current_generation(
    fake_api: FakeApi, client: ApiClient, inside_error: bool
) -> None:
    body = {"error": {"code": "generation_conflict", "message": "stale"}}
    if inside_error:
        body["error"]["current_generation"] = 7  # type: ignore[index]
    else:
        body["current_generation"] = 7  # type: ignore[assignment]
    fake_api.answers.append(Answer.json(409, body))
    with pytest.raises(GenerationConflict) as info:
        client.put_inventory("nfv-1", 3, (), ())
    assert info.value.current == 7


@pytest.mark.parametrize(
    "answer",
    [
        Answer.error(500, "internal", "boom"),
        Answer(502, "<html>Bad Gateway</html>", content_type="text/html"),
    ],
)
def test_5xx_is_service_unavailable_naming_the_url(fake_api: FakeApi, client: ApiClient, answer: Answer) -> None:
    fake_api.answers.append(answer)
    with pytest.raises(ServiceUnavailable) as info:
        client.list_hosts()
    assert f"{fake_api.url}/v1/hosts" in str(info.value)
    assert str(answer.status) in str(info.value)


def test_refused_connection_is_service_unavailable_naming_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        with (
            ApiClient(f"http://127.0.0.1:{port}", "t", timeout=2.0) as c,
            pytest.raises(ServiceUnavailable) as info,
        ):
            c.list_hosts()
    assert f"http://127.0.0.1:{port}/v1/hosts" in str(info.value)


def test_timeout_is_service_unavailable(fake_api: FakeApi) -> None:
    fake_api.answers.append(
        Answer.json(
            200,
            {"hosts": []},
        )
    )
    fake_api.answers[0].delay = 1.0
    with ApiClient(fake_api.url, "t", timeout=0.2) as c, pytest.raises(ServiceUnavailable, match="in time"):
        c.list_hosts()


def test_a_2xx_answer_that_is_not_json_is_an_error(fake_api: FakeApi, client: ApiClient) -> None:
    fake_api.answers.append(Answer(200, "<html>proxy login</html>", content_type="text/html"))
    with pytest.raises(EpaError, match="not JSON"):
        client.get_host("x")


# -- routes ------------------------------------------------------------------------------------


def test_every_request_carries_the_bearer_token_and_escapes_names(fake_api: FakeApi, client: ApiClient) -> None:
    fake_api.answers.append(Answer.json(200, {"name": "a/b"}))
    client.get_host("a/b")
    seen = fake_api.requests[0]
    assert seen.headers["Authorization"] == "Bearer t0ken"
    assert (seen.method, seen.path) == ("GET", "/v1/hosts/a%2Fb")


def test_list_devices_follows_every_page_and_sends_the_filters(fake_api: FakeApi, client: ApiClient) -> None:
    fake_api.answers += [
        Answer.json(200, {"devices": [{"address": "0000:18:02.0"}], "next_marker": "m1"}),
        Answer.json(200, {"devices": [{"address": "0000:18:02.1"}], "next_marker": "m2"}),
        Answer.json(200, {"devices": [{"address": "0000:18:02.2"}], "next_marker": None}),
    ]
    devices = client.list_devices(host="nfv-1", status="available", dev_type="type-VF", assignable=False)
    assert [d["address"] for d in devices] == ["0000:18:02.0", "0000:18:02.1", "0000:18:02.2"]
    paths = [r.path for r in fake_api.requests]
    assert len(paths) == 3
    for path in paths:
        assert path.startswith("/v1/devices?")
        assert "host=nfv-1" in path and "status=available" in path and "dev_type=type-VF" in path
        assert "assignable=false" in path and "limit=1000" in path
    assert "marker" not in paths[0] and "marker=m1" in paths[1] and "marker=m2" in paths[2]


def test_a_repeating_marker_is_an_error_not_an_endless_loop(fake_api: FakeApi, client: ApiClient) -> None:
    fake_api.default = Answer.json(200, {"devices": [{"address": "x"}], "next_marker": "same"})
    with pytest.raises(EpaError, match="repeats"):
        client.list_devices()
    assert len(fake_api.requests) == 2


def test_put_inventory_sends_cells_and_classified_devices(fake_api: FakeApi, client: ApiClient) -> None:
    from epa.domain.address import PciAddress
    from epa.domain.device import PciDevice
    from epa.domain.device_spec import ClassifiedDevice
    from epa.domain.host import NumaCell

    device = PciDevice(PciAddress.parse("0000:3d:00.0"), "8086", "37c8", "0b4000", numa_node=0)
    classified = ClassifiedDevice(device, True, (("physical_network", "physnet1"),), 0)
    fake_api.answers.append(
        Answer.json(200, {"generation": 4, "added": ["0000:3d:00.0"], "updated": [], "removed": [], "unchanged": 0})
    )
    result = client.put_inventory("nfv-1", 3, (NumaCell(0, (0, 1), 64000, 0),), (classified,))
    seen = fake_api.requests[0]
    assert (seen.method, seen.path) == ("PUT", "/v1/hosts/nfv-1/inventory")
    assert seen.body["generation"] == 3
    assert seen.body["numa_cells"] == [{"node": 0, "socket": 0, "cpus": [0, 1], "memory_mb": 64000}]
    (sent,) = seen.body["devices"]
    assert sent["address"] == "0000:3d:00.0" and sent["assignable"] is True
    assert sent["tags"] == {"physical_network": "physnet1"}
    assert PciDevice.from_json(sent) == device
    assert (result.generation, result.added, result.removed) == (4, ("0000:3d:00.0",), ())


def test_host_routes(fake_api: FakeApi, client: ApiClient) -> None:
    fake_api.answers += [
        Answer.json(201, {"host": {"name": "nfv-1"}, "agent_token": "agent-1"}),
        Answer.json(200, {"hosts": [{"name": "nfv-1"}]}),
        Answer.json(200, {"name": "nfv-1", "enabled": False}),
        Answer.json(200, {"agent_token": "agent-2"}),
        Answer(204),
    ]
    assert client.create_host("nfv-1")["agent_token"] == "agent-1"
    assert client.list_hosts() == [{"name": "nfv-1"}]
    assert client.set_host_enabled("nfv-1", False)["enabled"] is False
    assert client.rotate_token("nfv-1") == "agent-2"
    assert client.delete_host("nfv-1") is None
    assert [(r.method, r.path, r.body) for r in fake_api.requests] == [
        ("POST", "/v1/hosts", {"name": "nfv-1"}),
        ("GET", "/v1/hosts", None),
        ("PATCH", "/v1/hosts/nfv-1", {"enabled": False}),
        ("POST", "/v1/hosts/nfv-1/token", None),
        ("DELETE", "/v1/hosts/nfv-1", None),
    ]


def test_alias_and_flavor_routes(fake_api: FakeApi, client: ApiClient) -> None:
    entries = [
        {"name": "nic", "vendor_id": "8086", "product_id": "154c"},
        {"name": "nic", "vendor_id": "15b3"},
    ]
    fake_api.answers += [
        Answer.json(201, {"name": "nic"}),
        Answer.json(200, {"aliases": [{"name": "nic"}]}),
        Answer.json(201, {"name": "vnf.small"}),
        Answer.json(200, {"flavors": []}),
        Answer(204),
        Answer(204),
    ]
    client.create_alias(entries)
    assert client.list_aliases() == [{"name": "nic"}]
    client.create_flavor({"name": "vnf.small", "vcpus": 2, "memory_mb": 1024, "pci_passthrough:alias": "nic:1"})
    assert client.list_flavors() == []
    client.delete_flavor("vnf.small")
    client.delete_alias("nic")
    assert [(r.method, r.path) for r in fake_api.requests] == [
        ("POST", "/v1/aliases"),
        ("GET", "/v1/aliases"),
        ("POST", "/v1/flavors"),
        ("GET", "/v1/flavors"),
        ("DELETE", "/v1/flavors/vnf.small"),
        ("DELETE", "/v1/aliases/nic"),
    ]
    assert fake_api.requests[0].body == entries


def test_a_missing_list_key_is_an_error(fake_api: FakeApi, client: ApiClient) -> None:
    fake_api.answers.append(Answer.json(200, {"items": []}))
    with pytest.raises(EpaError, match="'hosts'"):
        client.list_hosts()
