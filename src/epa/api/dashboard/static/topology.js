// EPA dashboard: each host's PCIe topology as a picture - NUMA nodes, the root complexes on them, the PCIe
// switches under those, PFs with a square per VF, and other devices - coloured by use. A device a server holds
// carries the server's name; pointing at it lights up every device of that server (its group) and shows the
// flavor's pci_group. Uses el() from dashboard.js; data goes in as text only.
"use strict";

// The upstream port of the nearest PCIe switch: pcie_path ends root port, ..., upstream, downstream port
// (epa.domain.pci_group.switch_of). Shorter paths: right under a root port, no switch.
function switchOf(d) {
  const path = d.pcie_path || [];
  return path.length >= 3 ? path[path.length - 2] : null;
}

function groupOf(map, key, make) {
  if (!map.has(key)) map.set(key, make());
  return map.get(key);
}

function ownerLabel(d, serverById) {
  if (!d.owner) return null;
  const server = serverById.get(d.owner);
  return server ? server.name : d.owner;
}

function topoTitle(d, serverById, groupByFlavor) {
  const lines = [d.address + " " + d.dev_type + " " + (d.vendor_name || d.vendor_id) + " " + (d.product_name || d.product_id), "status: " + d.status];
  const server = d.owner ? serverById.get(d.owner) : null;
  if (d.owner) lines.push("server: " + (server ? server.name : d.owner));
  const group = server && server.flavor ? groupByFlavor.get(server.flavor.name) : "";
  if (group) lines.push("pci_group: " + group);
  return lines.join("\n");
}

function vfSquare(vf, serverById, groupByFlavor) {
  return el("span", {
    class: "topo-vf st-" + vf.status,
    "data-address": vf.address,
    "data-status": vf.status,
    "data-owner": vf.owner || null,
    title: topoTitle(vf, serverById, groupByFlavor),
  });
}

function deviceBox(d, vfs, serverById, groupByFlavor) {
  const used = vfs.filter((v) => v.status === "claimed" || v.status === "allocated").length;
  const owner = ownerLabel(d, serverById);
  const label = el(
    "div",
    { class: "topo-label" },
    el("code", {}, d.address),
    " ",
    el("span", { class: "kind" }, d.dev_type === "type-PF" ? "PF" : d.dev_type === "type-VF" ? "VF" : "device"),
    " ",
    d.product_name || d.vendor_id + ":" + d.product_id,
    vfs.length ? el("span", { class: "muted" }, " · " + used + "/" + vfs.length + " VFs used") : null,
    owner ? el("span", { class: "topo-owner" }, owner) : null,
  );
  const box = el(
    "div",
    {
      class: "topo-dev st-" + d.status,
      "data-address": d.address,
      "data-pf": d.dev_type === "type-PF" ? d.address : null,
      "data-status": d.status,
      "data-owner": d.owner || null,
      title: topoTitle(d, serverById, groupByFlavor),
    },
    label,
  );
  if (vfs.length) box.append(el("div", { class: "topo-vfs" }, vfs.map((v) => vfSquare(v, serverById, groupByFlavor))));
  return box;
}

function hostTopology(host, devices, serverById, groupByFlavor) {
  const endpoints = devices.filter((d) => d.status !== "removed" && !d.class_code.startsWith("0604") && !d.class_code.startsWith("0600"));
  const pfs = new Set(endpoints.filter((d) => d.dev_type === "type-PF").map((d) => d.address));
  const vfsOf = new Map();
  // node -> root complex -> switch ("" for none) -> devices
  const nodes = new Map();
  for (const d of endpoints) {
    if (d.dev_type === "type-VF" && pfs.has(d.parent_addr)) {
      groupOf(vfsOf, d.parent_addr, () => []).push(d);
      continue;
    }
    const node = groupOf(nodes, d.numa_node === null ? "none" : String(d.numa_node), () => new Map());
    const root = groupOf(node, d.pci_root || "unknown", () => new Map());
    groupOf(root, switchOf(d) || "", () => []).push(d);
  }
  const box = (d) => deviceBox(d, vfsOf.get(d.address) || [], serverById, groupByFlavor);
  const nodeBoxes = [...nodes.keys()]
    .sort((a, b) => (a === "none") - (b === "none") || Number(a) - Number(b))
    .map((node) =>
      el(
        "div",
        { class: "topo-node", "data-node": node },
        el("div", { class: "topo-title" }, node === "none" ? "No NUMA node" : "NUMA node " + node),
        [...nodes.get(node).entries()].sort().map(([root, switches]) =>
          el(
            "div",
            { class: "topo-root", "data-root": root },
            el("div", { class: "topo-title" }, "root complex " + root),
            [...switches.entries()].sort().map(([sw, devs]) =>
              sw
                ? el(
                    "div",
                    { class: "topo-switch", "data-switch": sw },
                    el("div", { class: "topo-title" }, "PCIe switch " + sw),
                    devs.map(box),
                  )
                : el("div", { class: "topo-ports" }, devs.map(box)),
            ),
          ),
        ),
      ),
    );
  return el(
    "div",
    { class: "topo-host", "data-topo-host": host },
    el("div", { class: "topo-host-name" }, host),
    el("div", { class: "topo-nodes" }, nodeBoxes),
  );
}

// Pointing at a held device lights up every device its server holds on the picture.
function highlightGroups(container) {
  container.addEventListener("mouseover", (event) => {
    const owner = event.target.closest && event.target.closest("[data-owner]");
    for (const lit of container.querySelectorAll(".topo-lit")) lit.classList.remove("topo-lit");
    if (!owner) return;
    for (const same of container.querySelectorAll("[data-owner]")) {
      if (same.getAttribute("data-owner") === owner.getAttribute("data-owner")) same.classList.add("topo-lit");
    }
  });
}

function renderTopology(data, serverById) {
  const groupByFlavor = new Map((data.flavors || []).map((f) => [f.name, f.pci_group || ""]));
  const byHost = new Map(data.hosts.map((h) => [h.name, []]));
  for (const d of data.devices) groupOf(byHost, d.host, () => []).push(d);
  const container = $("topology");
  if (!container.dataset.wired) {
    highlightGroups(container);
    container.dataset.wired = "1";
  }
  container.replaceChildren(...[...byHost.entries()].map(([host, devices]) => hostTopology(host, devices, serverById, groupByFlavor)));
}
