"""Consistency of the PF and VF relations a backend read: what it warns about is the same whichever
backend (sysfs links, libvirt capabilities) the relations came from."""

from __future__ import annotations

from epa.domain.device import DevType, PciDevice


def check_pf_vf_links(devices: list[PciDevice], warnings: list[str], parent_link: str, absent: str) -> None:
    """Each VF's parent must be a PF that lists it, and each VF a PF lists must be there. ``parent_link``
    says how the backend names the VF's parent (``physfn points to``), ``absent`` where a VF was missing."""
    by_addr = {d.address: d for d in devices}
    for d in devices:
        if d.parent_addr is not None:
            pf = by_addr.get(d.parent_addr)
            if pf is None or pf.dev_type is not DevType.PF:
                warnings.append(f"{d.address}: {parent_link} {d.parent_addr}, which is not a PF here")
            elif d.address not in pf.vf_addrs:
                warnings.append(f"{d.address}: its PF {d.parent_addr} does not list it among its VFs")
        for vf in d.vf_addrs:
            if vf not in by_addr:
                warnings.append(f"{d.address}: VF {vf} is listed but {absent}")
