"""Reading from a request body what the gateway decides on: the model and whether it streams.

One reading of every body: a JSON body (`json_body`) or a multipart form (`form`) is parsed
once, checked for anything another parser could read differently, and what is sent upstream is
re-encoded from that reading, never the bytes as received. The deciding fields are declared
once, in `fields.DECIDING_FIELDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rolegate.errors import InvalidRequest
from rolegate.reading.fields import has_control_characters
from rolegate.reading.form import is_form, parse_form, rewrite_form
from rolegate.reading.json_body import JSON, parse_object, rewrite

__all__ = ["JSON", "MAX_MODEL_NAME", "Inspected", "inspect", "is_form", "parse_form",
           "parse_object", "rewrite", "rewrite_form"]

MAX_MODEL_NAME = 256


@dataclass(frozen=True, slots=True)
class Inspected:
    model: str
    is_stream: bool


def inspect(body: dict[str, Any], path_model: str | None) -> Inspected:
    """The model (from the path for Azure-style routes, else from the body) and `stream`."""
    model = path_model if path_model is not None else body.get("model")
    if model is None:
        raise InvalidRequest("The request body has no `model`.", code="missing_model",
                             param="model")
    if not isinstance(model, str) or not model or len(model) > MAX_MODEL_NAME:
        raise InvalidRequest("`model` must be a non-empty string of at most "
                             f"{MAX_MODEL_NAME} characters.", code="invalid_model", param="model")
    if has_control_characters(model):
        raise InvalidRequest("`model` must not contain control or invisible characters.",
                             code="invalid_model", param="model")
    user = body.get("user")
    if isinstance(user, str) and has_control_characters(user):
        raise InvalidRequest("`user` must not contain control or invisible characters.",
                             code="invalid_user", param="user")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("`stream` must be true or false.", code="invalid_stream",
                             param="stream")
    return Inspected(model=model, is_stream=bool(stream))
