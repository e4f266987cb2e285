"""Making keys and hashing them.

A key is `rg-` followed by 32 random bytes (256 bits) in URL-safe base64. It is shown once; the
database keeps only HMAC-SHA-256(pepper, key), so a copy of the database alone cannot be used to
check guesses: the pepper lives in the configuration, not next to the hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "rg-"
KEY_BYTES = 32
MAX_KEY_LENGTH = 128


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def is_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def hint(key: str) -> str:
    """What lists show to tell keys apart: the prefix and the last four characters."""
    return f"{KEY_PREFIX}...{key[-4:]}"


class KeyHasher:
    """`KeyHasher(pepper).digest(key)` -> the hex HMAC-SHA-256 stored for `key`."""

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < 16:
            raise ValueError("the key pepper must be at least 16 bytes")
        self._pepper = pepper

    def digest(self, key: str) -> str:
        return hmac.new(self._pepper, key.encode(), hashlib.sha256).hexdigest()

    def matches(self, key: str, stored: str) -> bool:
        return hmac.compare_digest(self.digest(key), stored)
