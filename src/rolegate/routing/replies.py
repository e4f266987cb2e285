"""Reading an upstream reply read whole: whether it is a failure for the caller, its error
code, and its token usage. Transport-neutral: statuses and bytes in, gateway errors out."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from rolegate.errors import UpstreamError
from rolegate.providers.base import usage_in

log = logging.getLogger("rolegate.proxy")


def raise_for_upstream_status(status: int, body: bytes) -> None:
    """OpenAI-shaped 4xx bodies pass through; the upstream refusing our credential, any 5xx
    and anything unreadable become 502."""
    if status < 400:
        return
    if status in (401, 403):
        log.error("the upstream refused the gateway's credential (status %d)", status)
        raise UpstreamError("The upstream refused the gateway's credential.",
                            code="upstream_auth_failed")
    if status >= 500 or not is_openai_error(body):
        raise UpstreamError(f"The upstream failed with status {status}.")


def is_openai_error(body: bytes) -> bool:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(value, dict) and isinstance(value.get("error"), dict)


def usage_of(body: bytes) -> dict[str, Any] | None:
    """The `usage` object of a JSON reply body (Gemini's: `usageMetadata`), if it has one."""
    if b'"usage' not in body:  # `"usage"` and `"usageMetadata"` alike
        return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return usage_in(value) if isinstance(value, dict) else None
