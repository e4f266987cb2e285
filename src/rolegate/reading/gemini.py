"""Reading a Gemini API call: the model is the path's, never the body's, and what the method and
`alt` say decides whether it streams.

The Gemini API takes its model from the URL (`/v1beta/models/{model}:generateContent`); a body
that names one too (`model`, or a `batchEmbedContents` request naming another) is refused, so
the model decided on is the model forwarded. Google's JSON parser takes a field in lowerCamelCase
and in its proto name alike (`generationConfig`, `generation_config`): top-level names with an
underscore are refused, so no two spellings of one field reach it.

A body may not point the upstream at content it holds on the gateway's own credential:
`cachedContent` (a cache made with the deployment's key, perhaps by another tenant) or a part's
`fileData` (a Files API upload, or on Vertex AI a `gs://` object the gateway's service account
can read: a caller would read it through the gateway's identity). Both are refused wherever
they are nested, in either spelling; content is sent inline (`inlineData`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from rolegate.errors import InvalidRequest

GENERATE = "generateContent"
STREAM = "streamGenerateContent"
BATCH = "batchEmbedContents"


def gemini_operation(method: str, body: dict[str, Any], model: str,
                     query_string: bytes) -> tuple[str, bool]:
    """The operation sent on for Gemini method `method` (a stream is `generateContent`
    streamed) and whether it streams; 400 for a body or query the gateway will not read two
    ways."""
    if "model" in body:
        raise InvalidRequest("The Gemini API takes the model from the path; remove `model` "
                             "from the body.", code="invalid_body", param="model")
    for name in body:
        if "_" in name:
            raise InvalidRequest(f"Send `{name}` in lowerCamelCase, as the Gemini API's JSON "
                                 "names it.", code="invalid_body", param=name)
    stored = _stored_reference(body, "")
    if stored is not None:
        raise InvalidRequest(f"`{stored}` names content the upstream holds for the gateway, "
                             "which no caller is granted; send the content inline "
                             "(`inlineData`).", code="stored_content_refused", param=stored)
    if method == BATCH:
        _check_batch(body.get("requests"), model)
    alt = _alt(query_string)
    if method == STREAM:
        if alt != "sse":
            raise InvalidRequest("streamGenerateContent is served as server-sent events: add "
                                 "`?alt=sse`.", code="invalid_query", param="alt")
        return GENERATE, True
    if alt not in (None, "json"):
        raise InvalidRequest(f"{method} answers in JSON: `alt` must be `json` or absent.",
                             code="invalid_query", param="alt")
    return method, False


def _alt(query_string: bytes) -> str | None:
    try:
        pairs = parse_qsl(query_string.decode("ascii"), keep_blank_values=True,
                          strict_parsing=bool(query_string))
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("The query string cannot be read.", code="invalid_query") from None
    names = [name for name, _ in pairs]
    if set(names) - {"alt"} or len(names) > 1:
        raise InvalidRequest("The only query parameter taken is `alt`.", code="invalid_query")
    return pairs[0][1] if pairs else None


# Fields naming content held upstream, as Google's parser reads them (either spelling).
_STORED = frozenset({"cachedcontent", "filedata"})


def _stored_reference(value: Any, where: str) -> str | None:
    """Where in `value` a field names upstream-held content (`contents[0].parts[1].fileData`),
    or None."""
    if isinstance(value, dict):
        for name, inner in value.items():
            at = f"{where}.{name}" if where else name
            if name.replace("_", "").lower() in _STORED:
                return at
            found = _stored_reference(inner, at)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found = _stored_reference(inner, f"{where}[{index}]")
            if found is not None:
                return found
    return None


def _check_batch(requests: Any, model: str) -> None:
    if not isinstance(requests, list):
        raise InvalidRequest("`requests` must be a list.", code="invalid_body",
                             param="requests")
    for index, request in enumerate(requests):
        if not isinstance(request, dict):  # else dropped on the way: fewer embeddings than sent
            raise InvalidRequest(f"requests[{index}] must be an object.", code="invalid_body",
                                 param=f"requests[{index}]")
        named = request.get("model")
        if named is not None and named != f"models/{model}":
            raise InvalidRequest(f"requests[{index}].model must be `models/{model}`, the "
                                 "model of the path.", code="invalid_body",
                                 param=f"requests[{index}].model")
