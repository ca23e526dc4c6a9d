"""VF configuration over real netlink as far as this kernel allows (no SR-IOV here: the kernel answers
EOPNOTSUPP), and the exact requests a real PF would receive."""

from __future__ import annotations

import errno
from typing import Any

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from epa.errors import InvalidInput
from epa.hostnet.vf import VfConfig, VfConfigError, VfUnsupported, apply_vf_config


def test_requests_one_per_attribute() -> None:
    config = VfConfig("ens785f0", 3, mac="52:54:00:12:34:56", vlan=100, trusted=True, spoofchk=False)
    assert config.requests() == [
        ("mac", {"vf": 3, "mac": "52:54:00:12:34:56"}),
        ("vlan", {"vf": 3, "vlan": 100, "qos": 0}),
        ("trust", {"vf": 3, "trust": 1}),
        ("spoofchk", {"vf": 3, "spoofchk": 0}),
    ]
    assert VfConfig("ens785f0", 3).requests() == []
    reset = VfConfig.reset("ens785f0", 3)
    assert [a for a, _ in reset.requests()] == ["mac", "vlan", "trust", "spoofchk"]
    assert reset.requests()[0][1]["mac"] == "00:00:00:00:00:00"


def test_real_kernel_refuses_vf_settings_on_a_device_without_sriov() -> None:
    # `lo` exists everywhere and has no VFs: the real kernel answers EOPNOTSUPP and nothing changes.
    with pytest.raises(VfUnsupported) as err:
        apply_vf_config(VfConfig("lo", 0, mac="52:54:00:00:00:01"))
    assert str(err.value) == (
        "PF lo VF 0: the PF driver does not support setting mac (EOPNOTSUPP; is lo an SR-IOV PF?)"
    )


def test_missing_pf_interface_is_named() -> None:
    with pytest.raises(VfConfigError, match="no network interface named 'nosuchpf0'"):
        apply_vf_config(VfConfig("nosuchpf0", 1, vlan=5))


class FakePf:
    """A PF driver as netlink shows it: accepts what it supports, EOPNOTSUPP / EINVAL otherwise."""

    def __init__(self, unsupported: set[str] = frozenset(), invalid: set[str] = frozenset()) -> None:
        self.sent: list[dict[str, Any]] = []
        self.unsupported = unsupported
        self.invalid = invalid
        self.closed = False

    def __call__(self) -> FakePf:
        return self

    def link_lookup(self, *, ifname: str) -> list[int]:
        return [7] if ifname == "ens785f0" else []

    def link(self, command: str, **kwargs: Any) -> None:
        assert (command, kwargs["index"]) == ("set", 7)
        fields = kwargs["vf"]
        if set(fields) & self.unsupported:
            raise NetlinkError(errno.EOPNOTSUPP, "Operation not supported")
        if set(fields) & self.invalid:
            raise NetlinkError(errno.EINVAL, "Invalid argument")
        self.sent.append(fields)

    def close(self) -> None:
        self.closed = True


def test_every_attribute_reaches_the_pf() -> None:
    pf = FakePf()
    done = apply_vf_config(VfConfig("ens785f0", 2, mac="52:54:00:00:00:02", vlan=10, trusted=True), pf)
    assert done == ["mac", "vlan", "trust"]
    assert pf.sent == [{"vf": 2, "mac": "52:54:00:00:00:02"}, {"vf": 2, "vlan": 10, "qos": 0}, {"vf": 2, "trust": 1}]
    assert pf.closed


def test_a_driver_without_trust_names_the_attribute() -> None:
    pf = FakePf(unsupported={"trust"})
    with pytest.raises(VfUnsupported, match="PF ens785f0 VF 2: the PF driver does not support setting trust"):
        apply_vf_config(VfConfig("ens785f0", 2, mac="52:54:00:00:00:02", trusted=True), pf)
    assert pf.sent == [{"vf": 2, "mac": "52:54:00:00:00:02"}]
    assert pf.closed


def test_other_kernel_errors_carry_the_errno() -> None:
    with pytest.raises(VfConfigError, match="setting vlan failed: EINVAL"):
        apply_vf_config(VfConfig("ens785f0", 2, vlan=4000), FakePf(invalid={"vlan"}))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"pf_ifname": "", "vf_index": 0}, "PF interface name"),
        ({"pf_ifname": "p", "vf_index": -1}, "vf_index (-1)"),
        ({"pf_ifname": "p", "vf_index": 0, "vlan": 4095}, "vlan (4095)"),
    ],
)
def test_bad_config_is_rejected(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle.replace("(", r"\(").replace(")", r"\)")):
        VfConfig(**kwargs)
