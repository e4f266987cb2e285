"""Embeddings between Gemini's API and OpenAI's, both ways: a Gemini `embedContent` or
`batchEmbedContents` call served by an OpenAI embeddings upstream (`embeddings_request`,
`gemini_embeddings`), and an OpenAI embeddings call served by Gemini's `batchEmbedContents`
(`batch_request`, `openai_embeddings`). Only text is embedded; Gemini's task hints
(`taskType`, `title`) have no OpenAI counterpart and are refused, not dropped.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from rolegate.translate.untranslatable import untranslatable

OPENAI = "OpenAI embeddings"
GEMINI = "Gemini"
BATCH = "batchEmbedContents"
_REQUEST_FIELDS = frozenset({"model", "content", "outputDimensionality"})


def embeddings_request(body: dict[str, Any], *, operation: str) -> dict[str, Any]:
    """The OpenAI embeddings body for a Gemini `embedContent` / `batchEmbedContents` body."""
    if operation == BATCH:
        for name in body:
            if name not in ("model", "requests"):
                raise untranslatable(name, OPENAI)
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise untranslatable("requests", OPENAI, "expected a non-empty list")
        fields = [f"requests[{index}]" for index in range(len(requests))]
    else:
        requests, fields = [body], [""]
    texts, sizes = [], set()
    for request, field in zip(requests, fields, strict=True):
        texts.append(_text(request, field))
        if isinstance(request, dict) and "outputDimensionality" in request:
            sizes.add(request["outputDimensionality"])
    openai: dict[str, Any] = {"model": body.get("model"), "input": texts}
    if len(sizes) > 1:
        raise untranslatable("requests.outputDimensionality", OPENAI, "one size per call")
    if sizes:
        openai["dimensions"] = sizes.pop()
    return openai


def _text(request: Any, field: str) -> str:
    prefix = f"{field}." if field else ""
    if not isinstance(request, dict):
        raise untranslatable(field, OPENAI, "expected an object")
    for name in request:
        if name not in _REQUEST_FIELDS:
            raise untranslatable(prefix + name, OPENAI)
    content = request.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not all(isinstance(part, dict) and set(part) == {"text"}
                                              for part in parts):
        raise untranslatable(prefix + "content", OPENAI, "only text parts")
    return "".join(str(part["text"]) for part in parts)


def gemini_embeddings(reply: dict[str, Any], *, operation: str) -> dict[str, Any]:
    """The Gemini reply for an OpenAI embeddings reply."""
    data = sorted(reply.get("data") or (), key=lambda item: item.get("index", 0))
    vectors = [{"values": item.get("embedding")} for item in data]
    if operation == BATCH:
        return {"embeddings": vectors}
    return {"embedding": vectors[0] if vectors else {"values": []}}


def batch_request(body: dict[str, Any], *, model: str) -> dict[str, Any]:
    """The `batchEmbedContents` body for an OpenAI embeddings body, on upstream `model`."""
    for name in body:
        if name not in ("model", "input", "dimensions", "encoding_format", "user"):
            raise untranslatable(name, GEMINI)
    if body.get("encoding_format", "float") not in ("float", "base64"):
        raise untranslatable("encoding_format", GEMINI, "float or base64")
    given = body.get("input")
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise untranslatable("input", GEMINI, "only text, not token ids")
    requests = []
    for text in texts:
        request: dict[str, Any] = {"model": f"models/{model}",
                                   "content": {"parts": [{"text": text}]}}
        if "dimensions" in body:
            request["outputDimensionality"] = body["dimensions"]
        requests.append(request)
    return {"requests": requests}


def openai_embeddings(reply: dict[str, Any], *, model: str,
                      encoding_format: str = "float") -> dict[str, Any]:
    """The OpenAI embeddings reply for a `batchEmbedContents` reply (Gemini reports no usage:
    the gateway estimates it); in base64 when asked, as OpenAI encodes it: little-endian
    float32s."""
    vectors = [item.get("values") or [] for item in reply.get("embeddings") or ()]
    if encoding_format == "base64":
        vectors = [base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
                   for values in vectors]
    return {"object": "list", "model": model, "data": [
        {"object": "embedding", "index": index, "embedding": vector}
        for index, vector in enumerate(vectors)]}
