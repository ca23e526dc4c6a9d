"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright) against the real app:
log in with the token, see the hosts, the device trees and the servers, watch a new server appear and a deleted one
disappear, and run an explanation. Missing Chromium or Playwright fails the test: ./dev installs both."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard.cloud import PORT, Cloud
from support.browser import CHROMIUM, CHROMIUM_ARGS

LIVE_S = 8_000  # ms: the page polls every 2 s


@pytest.fixture
def page(cloud: Cloud) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is missing: run ./dev (it installs requirements.lock, with playwright)")
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(f"{CHROMIUM} is missing: run ./dev (it installs the Debian package chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            p = context.new_page()
            errors: list[str] = []
            p.on("pageerror", lambda e: errors.append(str(e)))
            p.set_default_timeout(LIVE_S)
            yield p
            assert not errors, errors
        finally:
            browser.close()


def test_dashboard_shows_the_cloud_live_and_explains(cloud: Cloud, page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page.goto(cloud.url + "/")
    page.fill("#token", cloud.admin)
    page.click("#login-form button[type=submit]")

    # Hosts with their utilisation.
    hosts = page.locator("#hosts tbody")
    expect(hosts.locator('tr[data-host="nfv-1"]')).to_contain_text("nfv-1")
    expect(hosts.locator('tr[data-host="gpu-1"]')).to_contain_text("gpu-1")
    expect(hosts.locator('tr[data-host="nfv-1"]')).to_contain_text("claimed 3")
    expect(hosts.locator('tr[data-host="nfv-1"]')).to_contain_text("2 / 8")  # vCPUs of vnf-1 on 8

    # The tree: NUMA node 0 of nfv-1 holds the physnet1 PF with its VFs, one of them claimed by vnf-1.
    (vnf1,) = cloud.call("GET", "/v1/servers")["servers"]
    (address,) = [d["address"] for d in vnf1["devices"] if d["port"] == 0]
    assert cloud.call("GET", f"/v1/hosts/nfv-1/devices/{address}")["parent_addr"] == "0000:18:00.0"
    pf = page.locator('#trees [data-host="nfv-1"] [data-node="0"] li[data-pf="0000:18:00.0"]')
    expect(pf).to_have_count(1)
    vf = pf.locator(f'li[data-address="{address}"]')
    expect(vf).to_contain_text("type-VF")
    expect(vf.locator("[data-status]")).to_have_text("claimed")
    expect(vf).to_contain_text("owner: vnf-1")
    expect(vf).to_have_attribute("title", "PCIe path: " + _path(cloud, "nfv-1", address))
    assert pf.locator(":scope > ul.vfs > li").count() >= 2
    expect(page.locator(f'#trees [data-host="nfv-1"] [data-node="1"] li[data-address="{address}"]')).to_have_count(0)

    # Servers with host, devices and libvirt state.
    row = page.locator('#servers tr[data-server="vnf-1"]')
    expect(row.locator(".server-host")).to_have_text("nfv-1")
    expect(row.locator(".server-devices")).to_contain_text(address)
    expect(row.locator(".server-domain")).to_have_text("—")
    first = page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    # Live: a server created through the API appears, its libvirt state follows, and a deleted one goes away.
    second = cloud.call(
        "POST", "/v1/servers", json={"name": "vnf-2", "flavor": "vnf.small", "ports": [PORT]}, expect=201
    )
    row2 = page.locator('#servers tr[data-server="vnf-2"]')
    expect(row2.locator(".server-host")).to_have_text(second["host"])
    cloud.call("POST", f"/v1/servers/{second['id']}/state", json={"status": "building", "domain_state": "shut off"})
    cloud.call("POST", f"/v1/servers/{second['id']}/state", json={"status": "active", "domain_state": "running"})
    expect(row2.locator(".server-domain")).to_have_text("running")
    cloud.call("DELETE", f"/v1/servers/{second['id']}?force=true", expect=202)
    expect(row2).to_have_count(0)

    # Explain: the QAT flavor fits nfv-1 only; gpu-1 is rejected with the scheduler's reason.
    page.select_option("#explain-flavor", "vnf.small")
    page.click("#explain-add-port")
    page.fill("#explain-ports .port-physnet", "physnet1")
    page.select_option("#explain-ports .port-vnic", "direct")
    page.click("#explain-run")
    expect(page.locator('#explain-candidates tr[data-candidate="nfv-1"]')).to_contain_text("alias qat")
    rejected = page.locator('#explain-rejected tr[data-rejected="gpu-1"] .reason')
    expect(rejected).to_have_text("0 free 8086:37c9 VF, 2 requested (alias qat)")
    page.screenshot(path=str(tmp_path / "explain.png"), full_page=True)

    for name, data in (("dashboard.png", first), ("explain.png", None)):
        shot = tmp_path / name
        assert shot.exists(), shot
        assert shot.stat().st_size > 10_000, (shot, shot.stat().st_size)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if data is not None:
            assert data == shot.read_bytes()


def test_a_wrong_token_is_refused_and_asked_again(cloud: Cloud, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(cloud.url + "/dashboard")
    page.fill("#token", "not-the-token")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("refused the token")
    expect(page.locator("#main")).to_be_hidden()


def test_data_is_shown_as_text_never_as_html(cloud: Cloud, page: Any) -> None:
    from playwright.sync_api import expect

    # A tag value is free text from the agent: it must come out as text, not as markup.
    hostile = "<img src=x onerror=window.pwned=1>"
    host = cloud.call("GET", "/v1/hosts/gpu-1")
    agent = cloud.call("POST", "/v1/hosts/gpu-1/token")["agent_token"]
    devices = cloud.call("GET", "/v1/devices?host=gpu-1")["devices"]
    for d in devices:
        if d["assignable"]:
            d["tags"] = {"note": hostile}
            break
    body = {"generation": host["generation"], "numa_cells": host["numa_cells"], "devices": devices}
    resp = cloud.http.put("/v1/hosts/gpu-1/inventory", json=body, headers={"Authorization": f"Bearer {agent}"})
    assert resp.status_code == 200, resp.text

    page.goto(cloud.url + "/")
    page.fill("#token", cloud.admin)
    page.click("#login-form button[type=submit]")
    expect(page.locator('#trees [data-host="gpu-1"]')).to_contain_text("note=" + hostile)
    assert page.locator("#trees img").count() == 0
    assert page.evaluate("window.pwned") is None


def _path(cloud: Cloud, host: str, address: str) -> str:
    device = cloud.call("GET", f"/v1/hosts/{host}/devices/{address}")
    return " → ".join([*device["pcie_path"], address])


def test_the_topology_picture_nests_nodes_roots_switches_and_pfs_and_lights_up_a_servers_group(
    cloud: Cloud, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page.goto(cloud.url + "/")
    page.fill("#token", cloud.admin)
    page.click("#login-form button[type=submit]")
    host = page.locator('#topology [data-topo-host="nfv-1"]')
    # The QAT PFs sit behind the PCIe switch (upstream port 3b:00.0) on root complex pci0000:3a of node 0.
    switch = host.locator('[data-node="0"] [data-root="pci0000:3a"] [data-switch="0000:3b:00.0"]')
    expect(switch.locator('[data-pf="0000:3d:00.0"]')).to_have_count(1)
    expect(switch.locator('[data-pf="0000:3f:00.0"]')).to_have_count(1)
    # vnf-1 holds two QAT VFs and a VF of the physnet1 PF (on a root port, not behind the switch).
    (vnf1,) = cloud.call("GET", "/v1/servers")["servers"]
    held = [d["address"] for d in vnf1["devices"]]
    for address in held:
        square = host.locator(f'.topo-vf[data-address="{address}"]')
        expect(square).to_have_attribute("data-status", "claimed")
        expect(square).to_have_attribute("data-owner", vnf1["id"])
    port_vf = next(d["address"] for d in vnf1["devices"] if d["port"] == 0)
    expect(host.locator(f'[data-switch] .topo-vf[data-address="{port_vf}"]')).to_have_count(0)
    expect(host.locator('[data-pf="0000:18:00.0"] .topo-label')).to_contain_text("1/8 VFs used")
    # Pointing at one of the server's devices lights up all of them, and nothing else.
    host.locator(f'.topo-vf[data-address="{held[0]}"]').hover()
    lit = page.locator("#topology .topo-lit")
    expect(lit).to_have_count(len(held))
    assert sorted(lit.evaluate_all("els => els.map(e => e.dataset.address)")) == sorted(held)
    shot = tmp_path / "topology.png"
    page.locator("#topology").screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
