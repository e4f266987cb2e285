"""Hand-made tokens for attacks PyJWT refuses to produce: `alg: none`, HMAC signed with a public
key, arbitrary headers and payloads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return b64url(raw)


def unsigned(header: Any, payload: Any, signature: str = "") -> str:
    """`header.payload.signature`, with whatever header and payload (JSON or raw bytes)."""
    return f"{segment(header)}.{segment(payload)}.{signature}"


def hmac_signed(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    """An HS256 token, signed with `secret` (e.g. an RSA public key's PEM)."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    digest = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(digest)}"


def with_payload(token: str, payload: dict[str, Any]) -> str:
    """`token` with its payload swapped and its original signature kept."""
    header, _, signature = token.split(".")
    return f"{header}.{segment(payload)}.{signature}"
