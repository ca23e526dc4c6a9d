"""A server's cloud-init NoCloud seed: an ISO 9660 image labelled ``cidata`` with ``meta-data``,
``user-data`` and ``network-config`` at its root (Rock Ridge and Joliet names, as cloud-localds
writes them), built with pycdlib in this process and written atomically next to its disk."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pycdlib

from epa.domain import cloud_init

FILES = ("meta-data", "user-data", "network-config")


def seed_files(server: Mapping[str, Any]) -> dict[str, bytes]:
    """The seed's files for ``server`` as the API lists it (its ports carry the MACs EPA gave them)."""
    ports = [p for p in server.get("ports") or [] if isinstance(p, Mapping)]
    return {
        "meta-data": cloud_init.meta_data(
            str(server["id"]), str(server["name"]), server.get("ssh_keys") or ()
        ).encode(),
        "user-data": cloud_init.user_data(server.get("user_data")).encode(),
        "network-config": cloud_init.network_config(ports).encode(),
    }


def write_seed(path: Path, files: Mapping[str, bytes]) -> Path:
    """Write the ISO to ``path`` (through a temporary file beside it, renamed: never half a seed)."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=cloud_init.SEED_LABEL)
    for name, data in files.items():
        iso_name = "/" + name.replace("-", "_").upper()[:8] + ".;1"
        iso.add_fp(io.BytesIO(data), len(data), iso_name, rr_name=name, joliet_path="/" + name)
    fd, tmp_name = tempfile.mkstemp(prefix=".seed-", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            iso.write_fp(out)
        iso.close()
        tmp.chmod(0o644)
        tmp.rename(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_seed(path: Path) -> dict[str, bytes]:
    """The files of a seed ISO by their Rock Ridge names (for checks and tests)."""
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        out = {}
        for name in FILES:
            buffer = io.BytesIO()
            iso.get_file_from_iso_fp(buffer, rr_path="/" + name)
            out[name] = buffer.getvalue()
        label = iso.pvd.volume_identifier.decode().strip()
    finally:
        iso.close()
    out[".label"] = label.encode()
    return out
