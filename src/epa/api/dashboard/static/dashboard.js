// EPA dashboard: polls the JSON API every 2 s with the admin token and redraws. Data is only ever put in the page
// as text (textContent, text nodes, setAttribute), never parsed as HTML.
"use strict";

const TOKEN_KEY = "epa.admin-token";
const REFRESH_MS = 2000;
const VNIC_TYPES = ["direct", "direct-physical", "macvtap"];
const $ = (id) => document.getElementById(id);

// el("td", {class: "x", title: "..."}, "text", child...): strings become text nodes, so nothing is parsed as HTML.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(resp.status, err.code || "http_" + resp.status, err.message || resp.statusText);
  }
  return data;
}

async function allDevices() {
  const devices = [];
  let marker = null;
  do {
    const query = "/v1/devices?limit=10000" + (marker ? "&marker=" + encodeURIComponent(marker) : "");
    const page = await api("GET", query);
    devices.push(...page.devices);
    marker = page.next_marker;
  } while (marker);
  return devices;
}

// --- state ---
let timer = null;
let flavorsSeen = "";
const collapsed = new Set(); // host names whose device tree the user closed
let last = null;

function setStatus(text, bad) {
  $("status").textContent = text;
  $("status").classList.toggle("bad", Boolean(bad));
}

function showLogin(message) {
  stop();
  $("main").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  setStatus("not connected", Boolean(message));
  $("token").focus();
}

function stop() {
  if (timer !== null) clearTimeout(timer);
  timer = null;
}

async function refresh() {
  stop();
  try {
    const [hosts, servers, devices, flavors] = await Promise.all([
      api("GET", "/v1/hosts"),
      api("GET", "/v1/servers"),
      allDevices(),
      api("GET", "/v1/flavors"),
    ]);
    last = { hosts: hosts.hosts, servers: servers.servers, devices, flavors: flavors.flavors };
    $("login").hidden = true;
    $("main").hidden = false;
    $("logout").hidden = false;
    render(last);
    setStatus("live · updated " + new Date().toLocaleTimeString());
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin("The API refused the token: " + err.message);
      return;
    }
    setStatus("refresh failed: " + err.message + " (retrying)", true);
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

// --- rendering ---
function render(data) {
  const serverById = new Map(data.servers.map((s) => [s.id, s]));
  renderHosts(data);
  renderServers(data.servers);
  renderFlavors(data.flavors);
  renderTrees(data, serverById);
  renderTopology(data, serverById); // topology.js
}

function bar(used, total, text) {
  const pct = total > 0 ? Math.min(100, Math.round((100 * used) / total)) : 0;
  const fill = el("span");
  fill.style.width = pct + "%";
  return el("span", { class: "usage" }, el("span", { class: "bar", title: pct + "%" }, fill), text);
}

const HOLDS_RESOURCES = new Set(["scheduled", "building", "active", "stopped", "deleting"]);

function renderHosts(data) {
  const used = new Map();
  for (const s of data.servers) {
    if (!s.host || !HOLDS_RESOURCES.has(s.status)) continue;
    const u = used.get(s.host) || { cpus: 0, mem: 0 };
    for (const c of s.cells || []) {
      u.cpus += c.cpus;
      u.mem += c.memory_mb;
    }
    used.set(s.host, u);
  }
  const rows = data.hosts.map((h) => {
    const u = used.get(h.name) || { cpus: 0, mem: 0 };
    const cpus = h.numa_cells.reduce((n, c) => n + c.cpus.length, 0);
    const mem = h.numa_cells.reduce((n, c) => n + c.memory_mb, 0);
    const counts = Object.entries(h.device_counts)
      .filter(([, n]) => n > 0)
      .map(([status, n]) => el("span", { class: "chip st-" + status }, status + " " + n));
    return el(
      "tr",
      { "data-host": h.name },
      el("td", {}, el("strong", {}, h.name)),
      el("td", {}, h.enabled ? "yes" : "no"),
      el("td", { class: "muted" }, h.last_report_at ? new Date(h.last_report_at).toLocaleString() : "never"),
      el("td", {}, counts.length ? counts : "none", el("span", { class: "muted" }, " (" + h.device_total + ")")),
      el("td", {}, bar(u.cpus, cpus, u.cpus + " / " + cpus)),
      el("td", {}, bar(u.mem, mem, u.mem + " / " + mem + " MiB")),
    );
  });
  $("hosts").tBodies[0].replaceChildren(...rows);
}

function renderServers(servers) {
  const rows = servers.map((s) =>
    el(
      "tr",
      { "data-server": s.name, "data-server-id": s.id },
      el("td", {}, el("strong", {}, s.name), el("div", { class: "muted mono" }, s.id)),
      el("td", {}, el("span", { class: "chip st-" + s.status }, s.status), s.status_reason ? el("div", { class: "muted" }, s.status_reason) : null),
      el("td", { class: "server-host" }, s.host || "—"),
      el("td", {}, (s.host_nodes || []).join(", ") || "—"),
      el("td", {}, s.flavor ? s.flavor.name : "—"),
      el(
        "td",
        { class: "server-devices" },
        (s.devices || []).map((d) => el("div", { class: "mono" }, d.address + " ", el("span", { class: "muted" }, d.request_label))),
      ),
      el("td", { class: "server-domain" }, s.domain_state || "—"),
    ),
  );
  for (const row of rows) {
    if (row.dataset.serverId === selectedServer) row.classList.add("selected");
    row.addEventListener("click", () => {
      selectedServer = row.dataset.serverId;
      showConsole();
    });
  }
  $("servers").tBodies[0].replaceChildren(...rows);
  $("servers-empty").hidden = servers.length > 0;
  showConsole();
}

// The selected server's last console lines. The API has escaped every control character; textContent
// keeps the page from interpreting anything in them.
let selectedServer = null;
const CONSOLE_LINES = 20;

// Why a server's console is empty, in words: a host on libvirt's test driver runs no guest (the demo's
// simulated hosts), a server without an image boots nothing, else the guest has not written yet.
function whyNoConsole(serverId) {
  const server = last && last.servers.find((s) => s.id === serverId);
  const host = server && last.hosts.find((h) => h.name === server.host);
  const hypervisor = host && host.hypervisor;
  if (hypervisor && hypervisor.domain_type === "test") {
    return (
      "(no console output: host " + host.name + " runs libvirt's test driver (" + hypervisor.uri + "), " +
      "where no guest runs, so nothing is ever written to this server's serial console. " +
      "On a host with qemu:///system the guest's boot messages appear here.)"
    );
  }
  if (server && !server.image) return "(no console output: this server boots no image)";
  return "(nothing yet)";
}

async function showConsole() {
  if (!selectedServer) return;
  const row = document.querySelector(`tr[data-server-id="${CSS.escape(selectedServer)}"]`);
  $("console-title").textContent = "Console of " + (row ? row.dataset.server : selectedServer);
  try {
    const answer = await api("GET", `/v1/servers/${encodeURIComponent(selectedServer)}/console?tail=${CONSOLE_LINES}`);
    $("console").textContent = answer.lines.length ? answer.lines.join("\n") : whyNoConsole(selectedServer);
  } catch (err) {
    $("console").textContent = "(" + err.message + ")";
  }
}

function renderFlavors(flavors) {
  const key = JSON.stringify(flavors.map((f) => f.name));
  if (key === flavorsSeen) return; // keep the user's choice while the list is the same
  flavorsSeen = key;
  const select = $("explain-flavor");
  const chosen = select.value;
  select.replaceChildren(
    ...flavors.map((f) =>
      el("option", { value: f.name }, f.name + " — " + f.vcpus + " vCPU, " + f.memory_mb + " MiB" + (f["pci_passthrough:alias"] ? ", " + f["pci_passthrough:alias"] : "")),
    ),
  );
  if (flavors.some((f) => f.name === chosen)) select.value = chosen;
}

function isBridge(d) {
  return d.class_code.startsWith("0604");
}

function deviceItem(d, serverById) {
  const owner = d.owner ? serverById.get(d.owner) : null;
  const path = (d.pcie_path || []).concat([d.address]).join(" → ");
  const name = [d.vendor_name, d.product_name].filter(Boolean).join(" ") || d.vendor_id + ":" + d.product_id;
  const tags = Object.entries(d.tags || {}).map(([k, v]) => el("span", { class: "chip" }, k + "=" + v));
  return el(
    "li",
    { "data-address": d.address, title: "PCIe path: " + path },
    el(
      "div",
      { class: "dev" },
      el("code", {}, d.address),
      el("span", { class: "kind" }, d.dev_type),
      el("span", {}, name),
      el("span", { class: "chip st-" + d.status, "data-status": d.status }, d.status + (d.vanished ? " (vanished)" : "")),
      d.owner ? el("span", { class: "owner" }, "owner: " + (owner ? owner.name : d.owner)) : null,
      tags,
      el("span", { class: "path" }, "path: " + path),
    ),
  );
}

function renderTrees(data, serverById) {
  const showBridges = $("show-bridges").checked;
  const byHost = new Map(data.hosts.map((h) => [h.name, []]));
  for (const d of data.devices) {
    if (d.status === "removed" || (!showBridges && isBridge(d))) continue;
    if (!byHost.has(d.host)) byHost.set(d.host, []);
    byHost.get(d.host).push(d);
  }
  const trees = [];
  for (const [host, devices] of byHost) {
    const pfs = new Set(devices.filter((d) => d.dev_type === "type-PF").map((d) => d.address));
    const vfsOf = new Map();
    const nodes = new Map();
    for (const d of devices) {
      if (d.dev_type === "type-VF" && pfs.has(d.parent_addr)) {
        if (!vfsOf.has(d.parent_addr)) vfsOf.set(d.parent_addr, []);
        vfsOf.get(d.parent_addr).push(d);
        continue;
      }
      const node = d.numa_node === null ? "none" : String(d.numa_node);
      if (!nodes.has(node)) nodes.set(node, []);
      nodes.get(node).push(d);
    }
    const nodeItems = [...nodes.keys()]
      .sort((a, b) => (a === "none") - (b === "none") || Number(a) - Number(b))
      .map((node) =>
        el(
          "li",
          { class: "node", "data-node": node },
          el("span", { class: "label" }, node === "none" ? "No NUMA node" : "NUMA node " + node),
          el(
            "ul",
            { class: "tree" },
            nodes.get(node).map((d) => {
              const item = deviceItem(d, serverById);
              if (d.dev_type === "type-PF") {
                item.setAttribute("data-pf", d.address);
                const vfs = vfsOf.get(d.address) || [];
                item.append(el("ul", { class: "tree vfs" }, vfs.map((vf) => deviceItem(vf, serverById))));
              }
              return item;
            }),
          ),
        ),
      );
    const details = el(
      "details",
      { class: "host-tree", "data-host": host, open: !collapsed.has(host) },
      el("summary", {}, host + " — " + devices.length + " devices"),
      el("ul", { class: "tree" }, nodeItems),
    );
    details.addEventListener("toggle", () => (details.open ? collapsed.delete(host) : collapsed.add(host)));
    trees.push(details);
  }
  $("trees").replaceChildren(...trees);
}

// --- explain ---
function addPort() {
  const physnet = el("input", { class: "port-physnet", placeholder: "physnet", "aria-label": "physnet", value: "physnet1" });
  const vnic = el("select", { class: "port-vnic", "aria-label": "vnic_type" }, VNIC_TYPES.map((t) => el("option", { value: t }, t)));
  const remove = el("button", { type: "button", title: "remove this port" }, "×");
  const port = el("span", { class: "port" }, "port", physnet, vnic, remove);
  remove.addEventListener("click", () => port.remove());
  $("explain-ports").append(port);
}

async function explain(event) {
  event.preventDefault();
  const ports = [...document.querySelectorAll("#explain-ports .port")].map((p) => {
    const port = { vnic_type: p.querySelector(".port-vnic").value };
    const physnet = p.querySelector(".port-physnet").value.trim();
    if (physnet) port.physnet = physnet;
    return port;
  });
  const out = $("explain-result");
  out.replaceChildren(el("p", { class: "muted" }, "asking the scheduler…"));
  try {
    const answer = await api("POST", "/v1/scheduler/explain", { flavor: $("explain-flavor").value, ports });
    out.replaceChildren(...renderExplanation(answer));
  } catch (err) {
    out.replaceChildren(el("p", { class: "error" }, "explain failed: " + err.message));
  }
}

function renderExplanation(answer) {
  const wants = answer.request.devices.map((d) => el("li", {}, d.label + ": " + d.count + " × " + d.wants + " (numa_policy " + d.numa_policy + ")"));
  const candidates = answer.candidates.map((c) =>
    el(
      "tr",
      { "data-candidate": c.host },
      el("td", {}, el("strong", {}, c.host)),
      el("td", {}, String(c.score)),
      el("td", {}, c.host_nodes.join(", ")),
      el("td", {}, c.devices.map((d) => el("div", {}, d.request + ": ", el("code", {}, d.addresses.join(", "))))),
    ),
  );
  const rejected = answer.rejected.map((r) =>
    el("tr", { "data-rejected": r.host }, el("td", {}, el("strong", {}, r.host)), el("td", { class: "reason" }, r.reason)),
  );
  return [
    el("p", { class: "explain-summary" }, "Request: " + answer.request.vcpus + " vCPU, " + answer.request.memory_mb + " MiB on " + answer.request.numa_nodes + " NUMA node(s)"),
    el("ul", {}, wants),
    el("h3", {}, "Candidates (" + answer.candidates.length + ")"),
    candidates.length
      ? el("table", { id: "explain-candidates" }, el("thead", {}, el("tr", {}, el("th", {}, "Host"), el("th", {}, "Score"), el("th", {}, "NUMA nodes"), el("th", {}, "Devices"))), el("tbody", {}, candidates))
      : el("p", { class: "muted" }, "No host fits."),
    el("h3", {}, "Rejected hosts (" + answer.rejected.length + ")"),
    rejected.length
      ? el("table", { id: "explain-rejected" }, el("thead", {}, el("tr", {}, el("th", {}, "Host"), el("th", {}, "Reason"))), el("tbody", {}, rejected))
      : el("p", { class: "muted" }, "None."),
    el("p", { class: "muted" }, "Summary: " + answer.summary),
  ];
}

// --- start ---
document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    setStatus("connecting…");
    refresh();
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("");
  });
  $("show-bridges").addEventListener("change", () => last && render(last));
  $("explain-add-port").addEventListener("click", addPort);
  $("explain-form").addEventListener("submit", explain);
  if (sessionStorage.getItem(TOKEN_KEY)) refresh();
  else showLogin("");
});
