"""What the fuzzers found, each reproduced as the request that broke the contract (400, never 500)."""

from __future__ import annotations

from typing import Any

import pytest

from epa.domain.alias import InvalidAlias, parse_aliases
from fuzz.cloud import Cloud


@pytest.mark.parametrize("key", ["numa_policy", "device_type"])
@pytest.mark.parametrize("value", [[], {}, [1]])
def test_an_alias_with_a_non_string_enum_value_is_invalid_input_not_a_crash(cloud: Cloud, key: str, value: Any) -> None:
    body = {"name": "nic", "vendor_id": "8086", "product_id": "154c", key: value}
    with pytest.raises(InvalidAlias, match=key):
        parse_aliases([body])
    cloud.restore()
    before = cloud.fingerprint()
    response = cloud.client.post("/v1/aliases", json=body, headers={"Authorization": f"Bearer {cloud.admin}"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_alias"
    assert key in response.json()["error"]["message"]
    assert cloud.fingerprint() == before
