"""Simulated hosts shaped like real servers, with real vendor/product ids, drivers, PCIe topology
(root ports, switches), NUMA placement and SR-IOV VF numbering."""

from __future__ import annotations

from epa.domain.address import PciAddress
from epa.simulate.model import SimFunction, SimHost, SimNet

INTEL = "8086"
MELLANOX = "15b3"
NVIDIA = "10de"

CLASS_HOST_BRIDGE = "060000"
CLASS_PCI_BRIDGE = "060400"
CLASS_ETHERNET = "020000"
CLASS_COPROCESSOR = "0b4000"
CLASS_3D = "030200"
CLASS_NVME = "010802"


class HostBuilder:
    """Adds functions to a host, numbering IOMMU groups and MAC addresses as it goes."""

    def __init__(self, name: str) -> None:
        self.host = SimHost(name)
        self._group = 0
        self._mac = 0

    def _next_group(self) -> int:
        self._group += 1
        return self._group

    def mac(self, oui: str = "3c:fd:fe") -> str:
        self._mac += 1
        n = self._mac
        return f"{oui}:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"

    def add(
        self,
        address: str,
        vendor: str,
        device: str,
        class_code: str,
        *,
        root: str,
        upstream: str | None = None,
        numa: int | None = -1,
        driver: str | None = None,
        iommu: bool = True,
        **kw: object,
    ) -> SimFunction:
        fn = SimFunction(
            address=PciAddress.parse(address),
            vendor=vendor,
            device=device,
            class_code=class_code,
            root=root,
            upstream=PciAddress.parse(upstream) if upstream else None,
            numa_node=numa,
            driver=driver,
            iommu_group=self._next_group() if iommu else None,
            **kw,  # type: ignore[arg-type]
        )
        self.host.functions.append(fn)
        return fn

    def root_port(
        self, address: str, root: str, numa: int | None, upstream: str | None = None, device: str = "2030"
    ) -> str:
        self.add(
            address,
            INTEL,
            device,
            CLASS_PCI_BRIDGE,
            root=root,
            upstream=upstream,
            numa=numa,
            driver="pcieport",
        )
        return address

    def vfs(
        self,
        pf: SimFunction,
        count: int,
        device: str,
        first: PciAddress,
        drivers: list[str | None],
        *,
        netdev_prefix: str | None = None,
    ) -> list[SimFunction]:
        """Create ``count`` VFs of ``pf`` at consecutive routing ids from ``first``."""
        out = []
        rid = (first.bus << 8) | (first.slot << 3) | first.function
        for i in range(count):
            r = rid + i
            addr = PciAddress(first.domain, r >> 8, (r >> 3) & 0x1F, r & 0x7)
            driver = drivers[i % len(drivers)]
            nets = []
            if netdev_prefix and driver not in (None, "vfio-pci"):
                nets = [SimNet(f"{netdev_prefix}v{i}", self.mac("52:54:00"))]
            fn = SimFunction(
                address=addr,
                vendor=pf.vendor,
                device=device,
                class_code=pf.class_code,
                root=pf.root,
                upstream=pf.upstream,
                numa_node=pf.numa_node,
                driver=driver,
                iommu_group=self._next_group(),
                netdevs=nets,
                physfn=pf.address,
                subsystem_vendor=pf.subsystem_vendor,
                subsystem_device=pf.subsystem_device,
            )
            self.host.functions.append(fn)
            out.append(fn)
        return out


def _x710_pair(
    b: HostBuilder,
    bus: str,
    root: str,
    port: str,
    numa: int | None,
    vf_counts: tuple[int, int],
    vf_drivers: tuple[str, str],
    names: tuple[str, str],
) -> None:
    for func, count, drv, name in zip((0, 1), vf_counts, vf_drivers, names, strict=True):
        pf = b.add(
            f"0000:{bus}:00.{func}",
            INTEL,
            "1572",
            CLASS_ETHERNET,
            root=root,
            upstream=port,
            numa=numa,
            driver="i40e",
            sriov_totalvfs=64,
            subsystem_device="0007",
            netdevs=[SimNet(name, b.mac())],
        )
        first = PciAddress.parse(f"0000:{bus}:02.0") if func == 0 else PciAddress.parse(f"0000:{bus}:0a.0")
        b.vfs(pf, count, "154c", first, [drv], netdev_prefix=name)


def nfv_host(name: str = "nfv-1") -> SimHost:
    """A two-socket NFV server: X710 ports with VFs on iavf and on vfio-pci, three QAT C62x
    endpoints behind a PCIe switch with 16 VFs each, a ConnectX-5 in switchdev mode with VFs,
    an NVMe drive and a Tesla T4."""
    b = HostBuilder(name)
    b.host.numa_cells = {0: ("0-19,40-59", 196_608_000), 1: ("20-39,60-79", 196_608_000)}
    b.add("0000:00:00.0", INTEL, "2020", CLASS_HOST_BRIDGE, root="pci0000:00", numa=0, iommu=True)
    # Socket 0: X710 dual port behind root port 17:00.0.
    p = b.root_port("0000:17:00.0", "pci0000:17", 0)
    _x710_pair(b, "18", "pci0000:17", p, 0, (8, 8), ("iavf", "vfio-pci"), ("ens785f0", "ens785f1"))
    # Socket 0: QAT endpoints behind a PCIe switch (upstream 3b:00.0, downstream 3c:00.0 / 3c:01.0).
    rp = b.root_port("0000:3a:00.0", "pci0000:3a", 0)
    up = b.root_port("0000:3b:00.0", "pci0000:3a", 0, upstream=rp, device="37c0")
    for port, bus in (("0000:3c:00.0", "3d"), ("0000:3c:01.0", "3f")):
        b.root_port(port, "pci0000:3a", 0, upstream=up, device="37c5")
        qat = b.add(
            f"0000:{bus}:00.0",
            INTEL,
            "37c8",
            CLASS_COPROCESSOR,
            root="pci0000:3a",
            upstream=port,
            numa=0,
            driver="c6xx",
            sriov_totalvfs=16,
            subsystem_device="0000",
        )
        b.vfs(qat, 16, "37c9", PciAddress.parse(f"0000:{bus}:01.0"), ["c6xxvf", "vfio-pci"])
    # Socket 1: ConnectX-5 in switchdev mode: uplink and VF representors carry the switch id.
    p = b.root_port("0000:5d:00.0", "pci0000:5d", 1)
    switch_id = "b8cef6fffe0a1b2c"
    reps = [SimNet("enp94s0f0np0", b.mac("b8:ce:f6"), phys_switch_id=switch_id, phys_port_name="p0")]
    reps += [
        SimNet(f"enp94s0f0npf0vf{i}", b.mac("b8:ce:f6"), phys_switch_id=switch_id, phys_port_name=f"pf0vf{i}")
        for i in range(4)
    ]
    cx5 = b.add(
        "0000:5e:00.0",
        MELLANOX,
        "1017",
        CLASS_ETHERNET,
        root="pci0000:5d",
        upstream=p,
        numa=1,
        driver="mlx5_core",
        sriov_totalvfs=8,
        subsystem_device="0020",
        netdevs=reps,
    )
    b.vfs(cx5, 4, "1018", PciAddress.parse("0000:5e:00.2"), ["vfio-pci"])
    # Socket 1: NVMe, a GPU and the third QAT endpoint.
    p = b.root_port("0000:ae:00.0", "pci0000:ae", 1)
    b.add(
        "0000:af:00.0",
        NVIDIA,
        "1eb8",
        CLASS_3D,
        root="pci0000:ae",
        upstream=p,
        numa=1,
        driver="vfio-pci",
        subsystem_vendor=NVIDIA,
        subsystem_device="12a2",
    )
    p = b.root_port("0000:b0:00.0", "pci0000:b0", 1)
    b.add(
        "0000:b1:00.0",
        INTEL,
        "0a54",
        CLASS_NVME,
        root="pci0000:b0",
        upstream=p,
        numa=1,
        driver="nvme",
        subsystem_device="4802",
    )
    p = b.root_port("0000:d9:00.0", "pci0000:d9", 1)
    qat = b.add(
        "0000:da:00.0",
        INTEL,
        "37c8",
        CLASS_COPROCESSOR,
        root="pci0000:d9",
        upstream=p,
        numa=1,
        driver="c6xx",
        sriov_totalvfs=16,
    )
    b.vfs(qat, 16, "37c9", PciAddress.parse("0000:da:01.0"), ["vfio-pci"])
    return b.host


def no_numa_host(name: str = "edge-1") -> SimHost:
    """A single-socket edge box whose kernel reports no NUMA affinity (``numa_node`` = -1)."""
    b = HostBuilder(name)
    b.add("0000:00:00.0", INTEL, "3e0f", CLASS_HOST_BRIDGE, root="pci0000:00", numa=-1)
    p = b.root_port("0000:00:01.0", "pci0000:00", -1, device="1901")
    _x710_pair(b, "01", "pci0000:00", p, -1, (4, 0), ("iavf", "iavf"), ("eno1", "eno2"))
    p = b.root_port("0000:00:1d.0", "pci0000:00", -1, device="a330")
    b.add("0000:02:00.0", INTEL, "0a54", CLASS_NVME, root="pci0000:00", upstream=p, numa=-1, driver="nvme")
    return b.host


def gpu_host(name: str = "gpu-1") -> SimHost:
    """A two-socket GPU server: two A100s per socket on vfio-pci and an E810 NIC."""
    b = HostBuilder(name)
    b.host.numa_cells = {0: ("0-31", 257_698_037), 1: ("32-63", 257_698_037)}
    for numa, bases in ((0, ("17", "31")), (1, ("ca", "e3"))):
        for bus in bases:
            rb = f"{int(bus, 16) - 1:02x}"
            p = b.root_port(f"0000:{rb}:00.0", f"pci0000:{rb}", numa)
            b.add(
                f"0000:{bus}:00.0",
                NVIDIA,
                "20b0",
                CLASS_3D,
                root=f"pci0000:{rb}",
                upstream=p,
                numa=numa,
                driver="vfio-pci",
                subsystem_vendor=NVIDIA,
                subsystem_device="134f",
            )
    p = b.root_port("0000:4a:00.0", "pci0000:4a", 0)
    pf = b.add(
        "0000:4b:00.0",
        INTEL,
        "1592",
        CLASS_ETHERNET,
        root="pci0000:4a",
        upstream=p,
        numa=0,
        driver="ice",
        sriov_totalvfs=256,
        netdevs=[SimNet("ens2f0", b.mac())],
    )
    b.vfs(pf, 0, "1889", PciAddress.parse("0000:4b:01.0"), ["iavf"])
    return b.host


def sriov_scale_host(
    pfs: int = 4, vfs_per_pf: int = 128, name: str = "scale-1", first_bus: int = 0x20, bus_stride: int = 0x10
) -> SimHost:
    """``pfs`` E810 ports, each with ``vfs_per_pf`` VFs: the benchmark's worst realistic case. PF ``i`` sits on
    bus ``first_bus + i * bus_stride`` (its VFs take that bus and, past 255 functions, the next)."""
    b = HostBuilder(name)
    for i in range(pfs):
        bus = first_bus + i * bus_stride
        rb = f"{bus - 1:02x}"
        p = b.root_port(f"0000:{rb}:00.0", f"pci0000:{rb}", i % 2)
        pf = b.add(
            f"0000:{bus:02x}:00.0",
            INTEL,
            "1592",
            CLASS_ETHERNET,
            root=f"pci0000:{rb}",
            upstream=p,
            numa=i % 2,
            driver="ice",
            sriov_totalvfs=256,
            netdevs=[SimNet(f"ens{i}f0", b.mac())],
        )
        b.vfs(pf, vfs_per_pf, "1889", PciAddress(0, bus, 1, 0), ["iavf", "vfio-pci"], netdev_prefix=f"ens{i}f0")
    return b.host
