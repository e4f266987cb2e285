"""Reading from a request body only what the gateway needs: the model and whether it streams.

Everything else passes through untouched. JSON bodies are parsed as objects; multipart forms
(audio transcription, image edits) are read only for their text fields, and sent on as they came
unless a deployment names the model otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import multipart  # type: ignore[import-untyped]  # the package ships no type information
import orjson

from rolegate.errors import InvalidRequest

MAX_MODEL_NAME = 256
MAX_FORM_PARTS = 64
JSON = "application/json"


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


def is_form(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "multipart/form-data"


def parse_form(raw: bytes, content_type: str) -> dict[str, Any]:
    """The text fields of a multipart/form-data body (RFC 7578); file parts are skipped."""
    fields: dict[str, Any] = {}
    seen: set[str] = set()
    try:
        for segment, pieces in _form_parts(raw, content_type):
            _refuse_repeated(segment.name, fields, seen)
            if segment.filename is None:
                fields.setdefault(segment.name, b"".join(pieces).decode())
    except UnicodeDecodeError:
        raise InvalidRequest("The multipart body is malformed.", code="invalid_body") from None
    if isinstance(fields.get("stream"), str):
        fields["stream"] = fields["stream"].lower() == "true"
    return fields


def rewrite_form(raw: bytes, content_type: str, values: dict[str, str]) -> bytes:
    """The form `raw` with the text fields named in `values` set to them (a deployment's own
    model name), every other part as it came, files byte for byte, under the same boundary."""
    boundary = _boundary(content_type).encode("latin-1")
    out: list[bytes] = []
    for segment, pieces in _form_parts(raw, content_type):
        is_replaced = segment.filename is None and segment.name in values
        head = "".join(f"{name}: {value}\r\n" for name, value in segment.headerlist)
        out += [b"--", boundary, b"\r\n", head.encode(), b"\r\n",
                values[segment.name].encode() if is_replaced else b"".join(pieces), b"\r\n"]
    out += [b"--", boundary, b"--\r\n"]
    return b"".join(out)


def _form_parts(raw: bytes, content_type: str) -> Iterator[tuple[Any, list[bytes]]]:
    """Each whole part of a multipart body: its segment (name, filename, headers) and data."""
    segment: multipart.MultipartSegment | None = None
    pieces: list[bytes] = []
    try:
        with multipart.PushMultipartParser(_boundary(content_type),
                                           max_segment_count=MAX_FORM_PARTS) as parser:
            for result in [*parser.parse(raw), *parser.parse(b"")]:
                if isinstance(result, multipart.MultipartSegment):
                    segment, pieces = result, []
                elif result is not None:
                    pieces.append(result)
                elif segment is not None:
                    yield segment, pieces
    except multipart.MultipartError:
        raise InvalidRequest("The multipart body is malformed.", code="invalid_body") from None


def _boundary(content_type: str) -> str:
    _, options = multipart.parse_options_header(content_type)
    boundary = options.get("boundary")
    if not boundary:
        raise InvalidRequest("The multipart body has no boundary.", code="invalid_body")
    return str(boundary)


# Fields the gateway decides on. The form is forwarded as sent, so were one repeated, this
# parser (first wins) and the upstream's (often last wins) could read different models.
_DECIDING_FIELDS = frozenset({"model", "stream"})


def _refuse_repeated(name: str, fields: dict[str, Any], seen: set[str]) -> None:
    if name in _DECIDING_FIELDS:
        if name in seen:
            raise InvalidRequest(f"The form has more than one `{name}` part.",
                                 code="invalid_body", param=name)
        seen.add(name)


def rewrite(body: dict[str, Any], raw: bytes, *, upstream_model: str, end_user: str | None,
            extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], bytes | None]:
    """The body for the upstream, and its original bytes when nothing had to change. `extra`
    holds further fields the gateway sets (e.g. `stream_options`)."""
    changes: dict[str, Any] = dict(extra or {})
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
