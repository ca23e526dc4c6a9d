"""The byte scan that spares most bodies the walk for unstorable text must never miss one."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from epa.api.text import first_unstorable, may_hold_unstorable

TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=8)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


@pytest.mark.parametrize(
    ("raw", "suspect"),
    [
        ('{"name": "a\\u0000b"}', True),
        ('{"a\\u0000": 1}', True),
        ('["\\ud800"]', True),
        ('["\\uDFFF"]', True),
        ('["\\ud83d\\ude00"]', True),  # a valid pair: the walk decides (and lets it through)
        ('{"name": "caf\\u00e9", "n": 1}', False),
        ('{"name": "plain"}', False),
        ('"\\\\u0000"', True),  # an escaped backslash: suspect, and the walk finds it harmless
    ],
)
def test_the_scan_flags_every_escape_that_can_spell_unstorable_text(raw: str, suspect: bool) -> None:
    assert may_hold_unstorable(raw.encode()) is suspect


@given(JSON)
def test_no_unstorable_body_passes_the_scan(value: object) -> None:
    if first_unstorable(value) is None:
        return
    assert may_hold_unstorable(json.dumps(value).encode())
    try:
        compact = json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return  # a lone surrogate has no UTF-8: only the escaped form can carry it
    assert may_hold_unstorable(compact)
