"""A simulated PF driver for simulated hosts: the netlink calls ``apply_vf_config`` makes, answered the
way the kernel answers them for the interfaces of a ``/sys``-shaped tree, with the VF settings a real
PF would hold kept in ``ROOT/.epa-sim/vf-state.json`` so that tests can read them back.

Like the kernel: an interface whose PCI function is not an SR-IOV PF (no ``sriov_totalvfs``) answers
EOPNOTSUPP; a VF index at or beyond ``sriov_numvfs``, a group MAC or a VLAN over 4095 is EINVAL; an
unknown interface is not found by ``link_lookup``. A fresh VF holds what PF drivers start it with: no
MAC, no VLAN, untrusted, spoof-checked."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from epa.domain.mac import is_mac, is_multicast

STATE_DIR = ".epa-sim"
STATE_FILE = "vf-state.json"
_ZERO_MAC = "00:00:00:00:00:00"


@dataclass(frozen=True, slots=True)
class SimVf:
    """What a PF holds for one of its VFs."""

    mac: str = _ZERO_MAC
    vlan: int = 0
    qos: int = 0
    trusted: bool = False
    spoofchk: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"mac": self.mac, "vlan": self.vlan, "qos": self.qos, "trusted": self.trusted, "spoofchk": self.spoofchk}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SimVf:
        return cls(str(obj["mac"]), int(obj["vlan"]), int(obj["qos"]), bool(obj["trusted"]), bool(obj["spoofchk"]))


def state_path(sysfs_root: Path) -> Path:
    return sysfs_root / STATE_DIR / STATE_FILE


def lock_path(sysfs_root: Path) -> Path:
    """The file whose flock serialises changes to the state (a test holding it holds every PF still)."""
    return sysfs_root / STATE_DIR / "vf-state.lock"


def _load(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    data = json.loads(text) if text.strip() else {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def read_vf_states(sysfs_root: Path) -> dict[str, dict[int, SimVf]]:
    """The VF settings the simulated PFs of ``sysfs_root`` hold: PF interface -> VF index -> settings
    (only VFs that were ever set appear)."""
    return {
        pf: {int(index): SimVf.from_json(vf) for index, vf in vfs.items()}
        for pf, vfs in _load(state_path(sysfs_root)).items()
    }


@contextlib.contextmanager
def _locked_state(sysfs_root: Path) -> Iterator[dict[str, dict[str, dict[str, Any]]]]:
    """The state file's content, written back (atomically) when the block ends without an error.
    An flock serialises agents and tests that share one tree."""
    path = state_path(sysfs_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path(sysfs_root).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = _load(path)
            yield data
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


class SimulatedPf:
    """One netlink socket (``IPRoute``-shaped: ``link_lookup``, ``link``, ``close``) on the simulated
    host whose ``/sys`` is ``sysfs_root``."""

    def __init__(self, sysfs_root: Path) -> None:
        self.sysfs_root = sysfs_root
        net = sysfs_root / "class" / "net"
        names = sorted(os.listdir(net)) if net.is_dir() else []
        # Interface indexes as the kernel would number them: stable for the life of the tree.
        self._by_index = {i + 1: name for i, name in enumerate(names)}
        self._closed = False

    def link_lookup(self, *, ifname: str) -> list[int]:
        self._check_open()
        return [index for index, name in self._by_index.items() if name == ifname]

    def link(self, command: str, **kwargs: Any) -> None:
        """``link("set", index=N, vf={...})``: one IFLA_VF_INFO entry, as ``apply_vf_config`` sends it.
        Other link commands are not simulated."""
        self._check_open()
        index, vf = kwargs.get("index"), kwargs.get("vf")
        if command != "set" or not isinstance(index, int) or not isinstance(vf, dict) or set(kwargs) != {"index", "vf"}:
            raise ValueError(
                f"simulated PF: only link('set', index=N, vf={{...}}) is simulated, not {command!r} {kwargs}"
            )
        name = self._by_index.get(index)
        if name is None:
            raise NetlinkError(errno.ENODEV, "No such device")
        device = self.sysfs_root / "class" / "net" / name / "device"
        # rtnetlink answers EOPNOTSUPP when the driver has no ndo_set_vf_* op: any non-PF function.
        if not (device / "sriov_totalvfs").is_file():
            raise NetlinkError(errno.EOPNOTSUPP, "Operation not supported")
        vf_index = vf.get("vf")
        numvfs = _read_int(device / "sriov_numvfs") or 0
        if not isinstance(vf_index, int) or not 0 <= vf_index < numvfs:
            raise NetlinkError(errno.EINVAL, "Invalid argument")
        with _locked_state(self.sysfs_root) as data:
            current = data.get(name, {}).get(str(vf_index))
            settings = SimVf.from_json(current).to_json() if current else SimVf().to_json()
            settings.update(_apply(vf))
            data.setdefault(name, {})[str(vf_index)] = settings

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise OSError(errno.EBADF, "simulated netlink socket is closed")


def _apply(vf: dict[str, Any]) -> dict[str, Any]:
    """The settings one VF entry changes, checked as the kernel and a PF driver check them."""
    out: dict[str, Any] = {}
    if "mac" in vf:
        mac = str(vf["mac"]).lower()
        if not is_mac(mac) or is_multicast(mac):
            raise NetlinkError(errno.EINVAL, "Invalid argument")
        out["mac"] = mac
    if "vlan" in vf:
        vlan, qos = int(vf["vlan"]), int(vf.get("qos", 0))
        if not 0 <= vlan <= 4095 or not 0 <= qos <= 7:
            raise NetlinkError(errno.EINVAL, "Invalid argument")
        out.update(vlan=vlan, qos=qos)
    if "trust" in vf:
        out["trusted"] = bool(vf["trust"])
    if "spoofchk" in vf:
        out["spoofchk"] = bool(vf["spoofchk"])
    if not out:
        raise NetlinkError(errno.EINVAL, "Invalid argument")
    return out


def simulated_netlink(sysfs_root: Path) -> Callable[[], SimulatedPf]:
    """A factory to pass to ``apply_vf_config(config, netlink=...)`` in place of ``IPRoute``."""
    return lambda: SimulatedPf(sysfs_root)
