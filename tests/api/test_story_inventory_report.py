"""Story: an agent reports its host's inventory; the server reconciles it, guarded by the host generation."""

from __future__ import annotations

import shutil
from pathlib import Path

from epa.domain.status import DeviceStatus
from epa.inventory import Database
from epa.inventory.devices import set_device_status
from support.api_story import Api
from support.reports import report_body

QAT_VF = "0000:3d:01.0"


def devices_of(api: Api, host: str) -> dict[str, dict[str, object]]:
    return {d["address"]: d for d in api.call("GET", f"/v1/devices?host={host}&limit=10000")["devices"]}


def test_first_report_then_unchanged_then_stale(api: Api, nfv_sysfs: Path) -> None:
    token = api.call("POST", "/v1/hosts", json={"name": "nfv-1"}, expect=201)["agent_token"]
    body = report_body(nfv_sysfs, generation=0)

    outcome = api.call("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=body)
    assert outcome["generation"] == 1
    assert len(outcome["added"]) == 86
    assert outcome["removed"] == outcome["updated"] == outcome["vanished_in_use"] == []

    host = api.call("GET", "/v1/hosts/nfv-1")
    assert host["generation"] == 1
    assert host["last_report_at"] is not None
    assert host["device_total"] == 86
    assert [c["node"] for c in host["numa_cells"]] == [0, 1]

    devices = devices_of(api, "nfv-1")
    assert devices["0000:18:02.3"]["tags"] == {"physical_network": "physnet1"}
    assert devices["0000:18:0a.0"]["tags"] == {"physical_network": "physnet2", "trusted": "true"}
    assert devices[QAT_VF]["status"] == "available"
    assert devices["0000:3a:00.0"]["assignable"] is False

    body["generation"] = 1
    again = api.call("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=body)
    assert (again["generation"], again["added"], again["updated"], again["unchanged"]) == (2, [], [], 86)

    body["generation"] = 1  # stale: the host is at 2 now
    message = api.error(
        "PUT", "/v1/hosts/nfv-1/inventory", token=token, json=body, expect=409, code="generation_conflict"
    )
    assert "nfv-1" in message
    stale = api.call("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=body, expect=409)
    assert stale["error"]["current_generation"] == 2


def test_bad_device_is_rejected_and_changes_nothing(api: Api, nfv_sysfs: Path) -> None:
    token = api.call("POST", "/v1/hosts", json={"name": "nfv-1"}, expect=201)["agent_token"]
    api.call("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=report_body(nfv_sysfs, 0))
    body = report_body(nfv_sysfs, 1)
    body["devices"][3]["vendor_id"] = "zz"
    body["devices"].pop(0)
    message = api.error("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=body, expect=400, code="invalid_input")
    assert "devices[2]" in message and "vendor_id" in message and "'zz'" in message
    body = report_body(nfv_sysfs, 1)
    body["devices"][5]["address"] = "0000:3d:01.9"
    message = api.error(
        "PUT", "/v1/hosts/nfv-1/inventory", token=token, json=body, expect=400, code="invalid_pci_address"
    )
    assert "devices[5]" in message and "0000:3d:01.9" in message
    body = report_body(nfv_sysfs, 1)
    body["devices"].append(dict(body["devices"][0]))
    api.error("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=body, expect=400, code="invalid_input")
    host = api.call("GET", "/v1/hosts/nfv-1")
    assert (host["generation"], host["device_total"]) == (1, 86)  # nothing half-written


def test_device_vanishing_free_and_in_use(api: Api, db: Database, nfv_sysfs: Path) -> None:
    token = api.call("POST", "/v1/hosts", json={"name": "nfv-1"}, expect=201)["agent_token"]
    api.call("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=report_body(nfv_sysfs, 0))
    set_device_status(db, "nfv-1", "0000:3d:01.1", DeviceStatus.CLAIMED, owner="server-1")
    assert devices_of(api, "nfv-1")["0000:3d:00.0"]["status"] == "unavailable"  # its PF

    for vf in (QAT_VF, "0000:3d:01.1"):  # one free VF and one in use disappear from the host
        shutil.rmtree((nfv_sysfs / "bus/pci/devices" / vf).resolve())
        (nfv_sysfs / "bus/pci/devices" / vf).unlink()
    outcome = api.call("PUT", "/v1/hosts/nfv-1/inventory", token=token, json=report_body(nfv_sysfs, 1))
    assert outcome["removed"] == [QAT_VF]
    assert outcome["vanished_in_use"] == ["0000:3d:01.1"]

    devices = devices_of(api, "nfv-1")
    assert devices[QAT_VF]["status"] == "removed"
    kept = devices["0000:3d:01.1"]
    assert (kept["status"], kept["owner"], kept["vanished"]) == ("claimed", "server-1", True)
    assert api.call("GET", "/v1/hosts/nfv-1")["device_counts"]["removed"] == 1
