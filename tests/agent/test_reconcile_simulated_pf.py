"""The simulated PF driver behind ``apply_vf_config``: EOPNOTSUPP on anything that is not an SR-IOV PF,
EINVAL beyond sriov_numvfs, and the VF settings recorded where tests can read them."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from epa.hostnet.simulated import SimulatedPf, SimVf, read_vf_states, simulated_netlink
from epa.hostnet.vf import VfConfig, VfConfigError, VfUnsupported, apply_vf_config


def test_vf_settings_are_recorded_per_pf_and_vf(nfv_sysfs: Path) -> None:
    netlink = simulated_netlink(nfv_sysfs)
    config = VfConfig("ens785f1", 3, mac="fa:16:3e:00:00:01", vlan=100, trusted=True, spoofchk=False)
    assert apply_vf_config(config, netlink) == ["mac", "vlan", "trust", "spoofchk"]
    apply_vf_config(VfConfig("ens785f1", 4, vlan=7), netlink)
    assert read_vf_states(nfv_sysfs) == {
        "ens785f1": {
            3: SimVf("fa:16:3e:00:00:01", 100, 0, trusted=True, spoofchk=False),
            4: SimVf(vlan=7),
        }
    }
    apply_vf_config(VfConfig.reset("ens785f1", 3), netlink)
    assert read_vf_states(nfv_sysfs)["ens785f1"][3] == SimVf()


def test_an_interface_that_is_not_an_sriov_pf_answers_eopnotsupp(nfv_sysfs: Path) -> None:
    # ens785f0v1 is a VF's own netdev (iavf): its driver has no VF operations, as on a real host.
    with pytest.raises(VfUnsupported) as err:
        apply_vf_config(VfConfig("ens785f0v1", 0, mac="fa:16:3e:00:00:01"), simulated_netlink(nfv_sysfs))
    assert str(err.value) == (
        "PF ens785f0v1 VF 0: the PF driver does not support setting mac (EOPNOTSUPP; is ens785f0v1 an SR-IOV PF?)"
    )
    assert read_vf_states(nfv_sysfs) == {}


def test_a_vf_index_beyond_numvfs_is_einval(nfv_sysfs: Path) -> None:
    with pytest.raises(VfConfigError, match=r"PF ens785f0 VF 8: setting vlan failed: EINVAL") as err:
        apply_vf_config(VfConfig("ens785f0", 8, vlan=5), simulated_netlink(nfv_sysfs))
    assert not isinstance(err.value, VfUnsupported)
    with pytest.raises(VfConfigError, match="no network interface named 'nosuchpf0'"):
        apply_vf_config(VfConfig("nosuchpf0", 0, vlan=5), simulated_netlink(nfv_sysfs))


def test_the_kernel_s_own_checks(nfv_sysfs: Path) -> None:
    pf = SimulatedPf(nfv_sysfs)
    (index,) = pf.link_lookup(ifname="ens785f0")
    for vf in ({"vf": 0, "mac": "01:00:5e:00:00:01"}, {"vf": 0, "vlan": 4096, "qos": 0}, {"vf": 0}):
        with pytest.raises(NetlinkError) as err:
            pf.link("set", index=index, vf=vf)
        assert err.value.code == errno.EINVAL
    with pytest.raises(NetlinkError) as err:
        pf.link("set", index=10_000, vf={"vf": 0, "trust": 1})
    assert err.value.code == errno.ENODEV
    with pytest.raises(ValueError, match="only link"):
        pf.link("del", index=index)
    pf.close()
    with pytest.raises(OSError, match="closed"):
        pf.link_lookup(ifname="ens785f0")
    assert read_vf_states(nfv_sysfs) == {}
