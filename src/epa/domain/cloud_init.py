"""cloud-init NoCloud data of a server: the three files of its seed (``meta-data``, ``user-data``,
``network-config``), and the checks on what a user may put in them. Pure: the agent writes the files
into an ISO (label ``cidata``), see ``epa.agent.seed``.

The files are JSON, which is YAML (1.2) too: cloud-init reads them with its YAML loader, and EPA writes
them without a YAML library or any quoting rules of its own."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from epa.errors import InvalidInput

MAX_USER_DATA = 64 * 1024
MAX_SSH_KEY = 16 * 1024
MAX_SSH_KEYS = 16
SEED_LABEL = "cidata"
# An OpenSSH public key line: type, base64 blob, optional comment; one line of printable ASCII.
_SSH_KEY = re.compile(
    r"(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)"
    r" [A-Za-z0-9+/]+={0,3}( [\x20-\x7e]*)?"
)


class InvalidCloudInit(InvalidInput):
    code = "invalid_cloud_init"


def check(ssh_keys: Sequence[str], user_data: str | None) -> dict[str, Any]:
    """``{"ssh_keys", "user_data"}`` once each is what a guest can take; ``InvalidCloudInit`` naming
    the key or the problem otherwise."""
    if len(ssh_keys) > MAX_SSH_KEYS:
        raise InvalidCloudInit(f"ssh_keys: {len(ssh_keys)} keys, at most {MAX_SSH_KEYS}")
    keys = []
    for i, key in enumerate(ssh_keys):
        line = key.strip()
        if len(line) > MAX_SSH_KEY or not _SSH_KEY.fullmatch(line):
            raise InvalidCloudInit(
                f"ssh_keys[{i}] ({line[:40]!r}...) is not an OpenSSH public key line (TYPE BASE64 [COMMENT])"
            )
        keys.append(line)
    if user_data is not None:
        if len(user_data.encode("utf-8", "surrogatepass")) > MAX_USER_DATA:
            raise InvalidCloudInit(f"user_data: more than {MAX_USER_DATA} bytes")
        if "\x00" in user_data:
            raise InvalidCloudInit("user_data: contains a NUL character")
    return {"ssh_keys": keys, "user_data": user_data}


def meta_data(server_id: str, hostname: str, ssh_keys: Sequence[str]) -> str:
    """NoCloud's meta-data: the instance id (a new one makes cloud-init run its first boot again), the
    host name and the public keys (NoCloud reads ``public-keys`` from here)."""
    data: dict[str, Any] = {"instance-id": server_id, "local-hostname": hostname}
    if ssh_keys:
        data["public-keys"] = list(ssh_keys)
    return json.dumps(data, indent=2) + "\n"


def user_data(text: str | None) -> str:
    """The user's user-data as given, or an empty cloud-config (cloud-init needs the file)."""
    return text if text is not None else "#cloud-config\n{}\n"


def network_config(ports: Sequence[Mapping[str, Any]]) -> str:
    """Network config version 2: each port's NIC matched by the MAC EPA gave it, named ``portN``, DHCP."""
    ethernets: dict[str, Any] = {}
    for i, port in enumerate(ports):
        mac = port.get("mac")
        if not isinstance(mac, str):
            continue
        ethernets[f"port{i}"] = {"match": {"macaddress": mac}, "set-name": f"port{i}", "dhcp4": True}
    return json.dumps({"version": 2, "ethernets": ethernets}, indent=2) + "\n"
