"""Keys are long and random; only their peppered HMAC is stored."""

from __future__ import annotations

import base64

import pytest

from rolegate.keys.material import KeyHasher, hint, is_api_key, new_key


def test_a_new_key_carries_at_least_128_random_bits():
    keys = {new_key() for _ in range(200)}

    assert len(keys) == 200
    for key in keys:
        assert is_api_key(key)
        raw = base64.urlsafe_b64decode(key[3:] + "=" * (-len(key[3:]) % 4))
        assert len(raw) * 8 >= 128


def test_the_hash_depends_on_the_pepper_and_never_contains_the_key():
    key = new_key()
    first, second = KeyHasher(b"p" * 16), KeyHasher(b"q" * 16)

    assert first.digest(key) != second.digest(key)
    assert first.matches(key, first.digest(key))
    assert not first.matches(key, second.digest(key))
    assert key[3:] not in first.digest(key)


def test_a_short_pepper_is_refused():
    with pytest.raises(ValueError):
        KeyHasher(b"short")


def test_the_hint_shows_only_the_last_four_characters():
    assert hint("rg-abcdefghijklmnop") == "rg-...mnop"
