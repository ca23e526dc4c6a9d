"""Device rows to and from domain values, and the PF/VF family rule applied to a host's rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from epa.domain.address import PciAddress
from epa.domain.device import DevType, NetInterface, PciDevice
from epa.domain.device_spec import ClassifiedDevice
from epa.domain.status import DeviceStatus, InvalidStatusTransition, check_transition, settle_family
from epa.inventory.records import DeviceRecord
from epa.inventory.schema import DeviceRow

# The columns a report sets; a report that changes none of them leaves the row alone.
REPORTED = (
    "vendor_id",
    "product_id",
    "class_code",
    "dev_type",
    "parent_addr",
    "subsystem_vendor_id",
    "subsystem_product_id",
    "numa_node",
    "iommu_group",
    "driver",
    "netdevs",
    "sriov_totalvfs",
    "sriov_numvfs",
    "vf_addrs",
    "pci_root",
    "pcie_path",
    "vendor_name",
    "product_name",
    "assignable",
    "tags",
)
COLUMNS = tuple(DeviceRow.__table__.c)


def reported_columns(classified: ClassifiedDevice) -> dict[str, Any]:
    """The REPORTED columns of a classified device, in the JSON-able form they are stored in."""
    d = classified.device
    return {
        "vendor_id": d.vendor_id,
        "product_id": d.product_id,
        "class_code": d.class_code,
        "dev_type": d.dev_type.value,
        "parent_addr": str(d.parent_addr) if d.parent_addr is not None else None,
        "subsystem_vendor_id": d.subsystem_vendor_id,
        "subsystem_product_id": d.subsystem_product_id,
        "numa_node": d.numa_node,
        "iommu_group": d.iommu_group,
        "driver": d.driver,
        "netdevs": [n.to_json() for n in d.netdevs],
        "sriov_totalvfs": d.sriov_totalvfs,
        "sriov_numvfs": d.sriov_numvfs,
        "vf_addrs": [str(a) for a in d.vf_addrs],
        "pci_root": d.pci_root,
        "pcie_path": [str(a) for a in d.pcie_path],
        "vendor_name": d.vendor_name,
        "product_name": d.product_name,
        "assignable": classified.assignable,
        "tags": dict(classified.tag_pairs),
    }


def to_device(row: Mapping[Any, Any]) -> PciDevice:
    return PciDevice(
        address=PciAddress.parse(row["address"]),
        vendor_id=row["vendor_id"],
        product_id=row["product_id"],
        class_code=row["class_code"],
        dev_type=DevType(row["dev_type"]),
        parent_addr=PciAddress.parse(row["parent_addr"]) if row["parent_addr"] else None,
        subsystem_vendor_id=row["subsystem_vendor_id"],
        subsystem_product_id=row["subsystem_product_id"],
        numa_node=row["numa_node"],
        iommu_group=row["iommu_group"],
        driver=row["driver"],
        netdevs=tuple(NetInterface(**n) for n in row["netdevs"]),
        sriov_totalvfs=row["sriov_totalvfs"],
        sriov_numvfs=row["sriov_numvfs"],
        vf_addrs=tuple(PciAddress.parse(a) for a in row["vf_addrs"]),
        pci_root=row["pci_root"],
        pcie_path=tuple(PciAddress.parse(a) for a in row["pcie_path"]),
        vendor_name=row["vendor_name"],
        product_name=row["product_name"],
    )


def to_record(host: str, row: Mapping[Any, Any]) -> DeviceRecord:
    return DeviceRecord(
        host=host,
        device=to_device(row),
        assignable=row["assignable"],
        tags=dict(row["tags"]),
        status=DeviceStatus(row["status"]),
        owner=row["owner"],
        vanished=row["vanished"],
    )


def settle_host(
    rows: Iterable[Mapping[str, Any]], statuses: Mapping[str, DeviceStatus], strict: bool
) -> dict[str, DeviceStatus]:
    """Apply the PF/VF rule to every PF among ``rows``; return the statuses that change.

    ``statuses`` holds each device's status before settling (by address). Every change goes through
    ``check_transition``. With ``strict`` a family with the PF and a VF both in use raises; without,
    it is left as it is (a report describes hardware and must not fail over a scheduling state)."""
    pfs: list[str] = []
    children: dict[str, list[str]] = {}
    for row in rows:
        if row["dev_type"] == DevType.PF.value:
            pfs.append(row["address"])
        elif row["dev_type"] == DevType.VF.value and row["parent_addr"]:
            children.setdefault(row["parent_addr"], []).append(row["address"])
    changes: dict[str, DeviceStatus] = {}
    for pf in pfs:
        vfs = {PciAddress.parse(a): statuses[a] for a in children.get(pf, ())}
        try:
            pf_status, vf_statuses = settle_family(statuses[pf], vfs)
        except InvalidStatusTransition:
            if strict:
                raise
            continue
        for address, new in ((pf, pf_status), *((str(a), s) for a, s in vf_statuses.items())):
            if new != statuses[address]:
                check_transition(address, statuses[address], new)
                changes[address] = new
    return changes
