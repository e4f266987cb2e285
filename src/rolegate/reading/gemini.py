"""Reading a Gemini API call: the model is the path's, never the body's, and what the method and
`alt` say decides whether it streams, and how: `streamGenerateContent?alt=sse` as server-sent
events, `streamGenerateContent` without `alt` (or `alt=json`) as one JSON array whose elements
arrive as they come, as Google's API sends them.

The Gemini API takes its model from the URL (`/v1beta/models/{model}:generateContent`); a body
that names one too (`model`, or a `batchEmbedContents` request naming another) is refused, so
the model decided on is the model forwarded (a `countTokens` call's `generateContentRequest`
may name only the path's model too). Google's JSON parser takes a field in lowerCamelCase
and in its proto name alike (`generationConfig`, `generation_config`): top-level names with an
underscore are refused, so no two spellings of one field reach it.

Content the upstream holds for the gateway (`cachedContent`, `fileData`) is refused on every
surface alike, by `stored.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from rolegate.errors import InvalidRequest

GENERATE = "generateContent"
STREAM = "streamGenerateContent"
BATCH = "batchEmbedContents"
COUNT = "countTokens"


@dataclass(frozen=True, slots=True)
class GeminiCall:
    """What a Gemini call asks for: the operation sent on (a stream is `generateContent`
    streamed), whether it streams, and whether as a JSON array rather than as events."""

    operation: str
    is_stream: bool = False
    is_json_array: bool = False


def gemini_operation(method: str, body: dict[str, Any], model: str,
                     query_string: bytes) -> GeminiCall:
    """The call Gemini method `method` makes; 400 for a body or query the gateway will not
    read two ways."""
    if "model" in body:
        raise InvalidRequest("The Gemini API takes the model from the path; remove `model` "
                             "from the body.", code="invalid_body", param="model")
    if "_" in "".join(body):  # one scan of all the names; which one, only when refusing
        name = next(name for name in body if "_" in name)
        raise InvalidRequest(f"Send `{name}` in lowerCamelCase, as the Gemini API's JSON "
                             "names it.", code="invalid_body", param=name)
    if method == BATCH:
        _check_batch(body.get("requests"), model)
    inner = body.get("generateContentRequest")
    if method == COUNT and isinstance(inner, dict):
        _check_named_model(inner.get("model"), model, "generateContentRequest.model")
    alt = _alt(query_string)
    if method == STREAM:
        if alt not in (None, "json", "sse"):
            raise InvalidRequest("streamGenerateContent streams as server-sent events "
                                 "(`alt=sse`) or as a JSON array (`alt=json` or none).",
                                 code="invalid_query", param="alt")
        return GeminiCall(GENERATE, is_stream=True, is_json_array=alt != "sse")
    if alt not in (None, "json"):
        raise InvalidRequest(f"{method} answers in JSON: `alt` must be `json` or absent.",
                             code="invalid_query", param="alt")
    return GeminiCall(method)


def _alt(query_string: bytes) -> str | None:
    if not query_string:
        return None
    try:
        pairs = parse_qsl(query_string.decode("ascii"), keep_blank_values=True,
                          strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("The query string cannot be read.", code="invalid_query") from None
    names = [name for name, _ in pairs]
    if set(names) - {"alt"} or len(names) > 1:
        raise InvalidRequest("The only query parameter taken is `alt`.", code="invalid_query")
    return pairs[0][1] if pairs else None


def _check_batch(requests: Any, model: str) -> None:
    if not isinstance(requests, list):
        raise InvalidRequest("`requests` must be a list.", code="invalid_body",
                             param="requests")
    for index, request in enumerate(requests):
        if not isinstance(request, dict):  # else dropped on the way: fewer embeddings than sent
            raise InvalidRequest(f"requests[{index}] must be an object.", code="invalid_body",
                                 param=f"requests[{index}]")
        _check_named_model(request.get("model"), model, f"requests[{index}].model")


def _check_named_model(named: Any, model: str, where: str) -> None:
    """A request inside the body may name the path's model, and no other."""
    if named is not None and named != f"models/{model}":
        raise InvalidRequest(f"{where} must be `models/{model}`, the model of the path.",
                             code="invalid_body", param=where)
