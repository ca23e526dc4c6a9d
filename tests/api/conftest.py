"""API stories run in-process (FastAPI's TestClient) on every database the ``db`` fixture gives."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from epa.api.app import create_app
from epa.inventory import Database
from epa.inventory.tokens import ensure_admin_token
from support.api_story import Api


@pytest.fixture
def api(db: Database) -> Iterator[Api]:
    token = ensure_admin_token(db)
    assert token is not None
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        yield Api(client, token)
