"""Shared fixtures: simulated hosts rendered as /sys trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from epa.simulate.hosts import gpu_host, nfv_host, no_numa_host
from epa.simulate.model import SimHost
from epa.simulate.sysfs_tree import render_sysfs


@pytest.fixture
def nfv() -> SimHost:
    return nfv_host()


@pytest.fixture
def nfv_sysfs(tmp_path: Path, nfv: SimHost) -> Path:
    return render_sysfs(nfv, tmp_path / "sys")


@pytest.fixture
def no_numa_sysfs(tmp_path: Path) -> Path:
    return render_sysfs(no_numa_host(), tmp_path / "sys")


@pytest.fixture
def gpu_sysfs(tmp_path: Path) -> Path:
    return render_sysfs(gpu_host(), tmp_path / "sys")
