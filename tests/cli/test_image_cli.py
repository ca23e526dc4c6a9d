"""`epa image`: create from a file (streamed to a real API), list, show, refuse what is not a disk with
one line and nothing left behind, delete; `epa server create --image --ssh-key --user-data`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from epa.cli.main import main
from epa.client import ApiClient
from support import images
from support.served import Served


def epa(capsys: pytest.CaptureFixture[str], served: Served, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--server", served.url, "--token", served.admin])
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys: pytest.CaptureFixture[str], served: Served, *args: str) -> Any:
    code, out, err = epa(capsys, served, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_create_list_show_delete(capsys: pytest.CaptureFixture[str], served: Served, tmp_path: Path) -> None:
    path = images.qcow2(tmp_path / "disk.qcow2", "2G")
    created = as_json(capsys, served, "image", "create", "deb", "--file", str(path))
    assert created["status"] == "active" and created["format"] == "qcow2" and created["virtual_size"] == 2 * 1024**3
    assert created["parts"][0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    code, out, err = epa(capsys, served, "image", "list")
    assert code == 0, err
    assert "deb" in out and "qcow2" in out and "2.0 GiB" in out
    code, out, err = epa(capsys, served, "image", "show", "deb")
    assert code == 0 and created["parts"][0]["sha256"] in out
    code, out, err = epa(capsys, served, "image", "delete", "deb")
    assert code == 0 and "deleted image deb" in out
    assert as_json(capsys, served, "image", "list") == []


def test_a_refused_file_is_one_line_and_leaves_no_image(
    capsys: pytest.CaptureFixture[str], served: Served, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a disk\n")
    code, _out, err = epa(capsys, served, "image", "create", "bad", "--file", str(text))
    assert code == 2
    assert err.startswith("epa: error: ") and "too small" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    missing = tmp_path / "nope.qcow2"
    code, _out, err = epa(capsys, served, "image", "create", "bad", "--file", str(missing))
    assert code == 2 and "is not a file" in err
    assert as_json(capsys, served, "image", "list") == []


def test_kernel_image_and_a_server_that_boots_it(
    capsys: pytest.CaptureFixture[str], served: Served, tmp_path: Path
) -> None:
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"\0" * 0x202 + b"HdrS" + b"\0" * 4096)
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"070701" + b"0" * 1024)
    created = as_json(
        capsys,
        served,
        "image",
        "create",
        "tiny",
        "--kernel",
        str(kernel),
        "--initrd",
        str(initrd),
        "--cmdline",
        "quiet",
    )
    assert created["status"] == "active" and created["kind"] == "kernel" and created["cmdline"] == "quiet"
    with ApiClient(served.url, served.admin) as api:
        api.create_flavor({"name": "small", "vcpus": 1, "memory_mb": 64})
    key = tmp_path / "id.pub"
    key.write_text("# my key\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me\n")
    data = tmp_path / "user-data"
    data.write_text("#cloud-config\nruncmd: [echo hi]\n")
    args = ["server", "create", "vm", "--flavor", "small", "--image", "tiny", "--ssh-key", str(key)]
    code, _out, err = epa(capsys, served, *args, "--user-data", str(data), "--json")
    # No host reports here: the server is recorded in error, with what it was to boot.
    assert code == 1 and "no valid host" in err
    with ApiClient(served.url, served.admin) as api:
        (server,) = api.list_servers(status="error")
    assert server["image"]["name"] == "tiny" and server["user_data"].startswith("#cloud-config")
    assert server["ssh_keys"] == [key.read_text().splitlines()[1]]
