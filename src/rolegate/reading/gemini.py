"""Reading a Gemini API call: the model is the path's, never the body's, and what the method and
`alt` say decides whether it streams.

The Gemini API takes its model from the URL (`/v1beta/models/{model}:generateContent`); a body
that names one too (`model`, or a `batchEmbedContents` request naming another) is refused, so
the model decided on is the model forwarded (a `countTokens` call's `generateContentRequest`
may name only the path's model too). Google's JSON parser takes a field in lowerCamelCase
and in its proto name alike (`generationConfig`, `generation_config`): top-level names with an
underscore are refused, so no two spellings of one field reach it.

A body may not point the upstream at content it holds on the gateway's own credential:
`cachedContent` (a cache made with the deployment's key, perhaps by another tenant) or a part's
`fileData` (a Files API upload, or on Vertex AI a `gs://` object the gateway's service account
can read: a caller would read it through the gateway's identity). Both are refused wherever
they are nested, in either spelling; content is sent inline (`inlineData`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from rolegate.errors import InvalidRequest

GENERATE = "generateContent"
STREAM = "streamGenerateContent"
BATCH = "batchEmbedContents"
COUNT = "countTokens"


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
    stored = _stored_reference(body)
    if stored is not None:
        raise InvalidRequest(f"`{stored}` names content the upstream holds for the gateway, "
                             "which no caller is granted; send the content inline "
                             "(`inlineData`).", code="stored_content_refused", param=stored)
    if method == BATCH:
        _check_batch(body.get("requests"), model)
    inner = body.get("generateContentRequest")
    if method == COUNT and isinstance(inner, dict):
        _check_named_model(inner.get("model"), model, "generateContentRequest.model")
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


def _stored_reference(body: dict[str, Any]) -> str | None:
    """Where the body names upstream-held content (`contents[0].parts[1].fileData`), or None.
    Only where Google reads them: a request's `cachedContent`, a Content's parts; never inside
    free-form JSON (a function's schema or arguments), which may name anything."""
    for where, request in _requests(body):
        for name, value in request.items():
            if _plain(name) == "cachedcontent":
                return where + name
            for at, content in _contents(where + name, _plain(name), value):
                parts = content.get("parts") if isinstance(content, dict) else None
                for index, part in enumerate(parts if isinstance(parts, list) else ()):
                    if isinstance(part, dict):
                        for key in part:
                            if _plain(key) == "filedata":
                                return f"{at}.parts[{index}].{key}"
    return None


def _plain(name: str) -> str:
    """A field's name as Google's parser matches it: either spelling, `file_data` or `fileData`."""
    return name.replace("_", "").lower()


def _requests(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The body and the requests it holds (countTokens' `generateContentRequest`, a batch's
    `requests`), each with the prefix naming where it is."""
    yield "", body
    for name, value in body.items():
        if _plain(name) == "generatecontentrequest" and isinstance(value, dict):
            yield f"{name}.", value
        elif _plain(name) == "requests" and isinstance(value, list):
            yield from ((f"{name}[{index}].", request) for index, request in enumerate(value)
                        if isinstance(request, dict))


def _contents(where: str, name: str, value: Any) -> Iterator[tuple[str, Any]]:
    if name == "contents" and isinstance(value, list):
        yield from ((f"{where}[{index}]", content) for index, content in enumerate(value))
    elif name in ("content", "systeminstruction"):
        yield where, value


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
