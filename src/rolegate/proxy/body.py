"""Reading from a request body only what the gateway needs: the model and whether it streams.

Everything else passes through untouched; the body is re-encoded only when the gateway has to
change it (the upstream's model name, or `user` set to the end-user id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from rolegate.errors import InvalidRequest

MAX_MODEL_NAME = 256


@dataclass(frozen=True, slots=True)
class Inspected:
    model: str
    is_stream: bool


def parse_object(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(value, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    return value


def inspect(body: dict[str, Any], path_model: str | None) -> Inspected:
    """The model (from the path for Azure-style routes, else from the body) and `stream`."""
    model = path_model if path_model is not None else body.get("model")
    if model is None:
        raise InvalidRequest("The request body has no `model`.", code="missing_model",
                             param="model")
    if not isinstance(model, str) or not model or len(model) > MAX_MODEL_NAME:
        raise InvalidRequest("`model` must be a non-empty string of at most "
                             f"{MAX_MODEL_NAME} characters.", code="invalid_model", param="model")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("`stream` must be true or false.", code="invalid_stream",
                             param="stream")
    return Inspected(model=model, is_stream=bool(stream))


def rewrite(body: dict[str, Any], raw: bytes, *, upstream_model: str,
            end_user: str | None) -> tuple[dict[str, Any], bytes | None]:
    """The body for the upstream, and its original bytes when nothing had to change."""
    changes: dict[str, Any] = {}
    if body.get("model") != upstream_model:
        changes["model"] = upstream_model
    if end_user is not None and body.get("user") != end_user:
        changes["user"] = end_user
    if not changes and not _is_ambiguous(raw, watch_user=end_user is not None):
        return body, raw
    return {**body, **changes}, None


def _is_ambiguous(raw: bytes, *, watch_user: bool) -> bool:
    """Whether another JSON parser could read a different `model` (or `user`) from `raw` than
    the one authorized: duplicate keys (orjson keeps the last, some parsers the first), possibly
    spelled with escapes (`"mod\\u0065l"`). Such a body is re-encoded, so the upstream reads
    exactly what the policy saw. The check is a byte count, cheap enough for every request."""
    if raw.count(b'"model"') > 1 or b"\\u" in raw:
        return True
    return watch_user and raw.count(b'"user"') > 1
