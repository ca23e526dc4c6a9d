"""The seeded cloud that the fuzz tests hit (one per module: seeding goes through the API)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fuzz.cloud import Cloud, seeded


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with seeded(tmp_path_factory.mktemp("fuzz")) as c:
        yield c
