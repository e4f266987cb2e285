"""`accepted_request_id`: the caller's id only when it is a short token safe to echo and log."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rolegate.observability.requests import accepted_request_id

SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"


@given(st.text(alphabet=SAFE, min_size=1, max_size=64))
def test_a_safe_id_is_kept(incoming):
    assert accepted_request_id(incoming.encode()) == incoming


@given(st.binary(max_size=100))
def test_any_other_value_yields_a_safe_id(incoming):
    accepted = accepted_request_id(incoming)

    assert 1 <= len(accepted) <= 64 and set(accepted) <= set(SAFE)
    if accepted != incoming.decode("latin-1"):
        assert len(accepted) == 16


@pytest.mark.parametrize("incoming", [None, b"", b"a" * 65, b"a\nb", b"a b", b"x\x00"])
def test_an_unsafe_or_missing_id_is_replaced_by_a_new_one(incoming):
    first, second = accepted_request_id(incoming), accepted_request_id(incoming)

    assert first != second and len(first) == 16
