"""An OpenAI embeddings call served by a Bedrock embedding model through InvokeModel, whose body
is the model's own: Amazon Titan Text Embeddings (`amazon.titan-embed-text-*`, one text per
call, `dimensions` on v2) or Cohere Embed (`cohere.embed-*`, a list at once).

    embedder = embedding_model("amazon.titan-embed-text-v2:0", openai_body)
    for body in embedder.requests(): ...            # InvokeModel bodies
    reply = embedder.reply(vectors, prompt_tokens)  # OpenAI's `list` of embeddings
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from typing import Any

from rolegate.translate.untranslatable import untranslatable

_TARGET = "Amazon Bedrock InvokeModel"


class EmbeddingModel:
    """The InvokeModel bodies for one OpenAI embeddings request, and the reply they make."""

    def __init__(self, model: str, texts: list[str], dimensions: int | None,
                 is_base64: bool = False) -> None:
        self._model = model
        self._texts = texts
        self._dimensions = dimensions
        self._is_base64 = is_base64

    def requests(self) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    def vectors(self, value: dict[str, Any]) -> tuple[list[list[float]], int]:
        """The vectors in one InvokeModel reply, and the tokens it says it counted."""
        raise NotImplementedError

    def reply(self, vectors: list[list[float]], tokens: int) -> dict[str, Any]:
        return {"object": "list", "model": self._model,
                "data": [{"object": "embedding", "index": index,
                          "embedding": _base64(vector) if self._is_base64 else vector}
                         for index, vector in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


class TitanEmbeddings(EmbeddingModel):
    def requests(self) -> Iterator[dict[str, Any]]:
        for text in self._texts:
            body: dict[str, Any] = {"inputText": text}
            if self._dimensions is not None:
                body["dimensions"] = self._dimensions
            yield body

    def vectors(self, value: dict[str, Any]) -> tuple[list[list[float]], int]:
        count = value.get("inputTextTokenCount")
        return [value.get("embedding") or []], count if isinstance(count, int) else 0


class CohereEmbeddings(EmbeddingModel):
    def requests(self) -> Iterator[dict[str, Any]]:
        yield {"texts": self._texts, "input_type": "search_document"}

    def vectors(self, value: dict[str, Any]) -> tuple[list[list[float]], int]:
        found = value.get("embeddings")
        if isinstance(found, dict):  # the form asked for with `embedding_types`
            found = found.get("float")
        return list(found or []), 0


def embedding_model(model: str, body: dict[str, Any]) -> EmbeddingModel:
    """The translation for `body` on `model`: 400 naming what the model cannot take."""
    for name in body:
        if name not in ("model", "input", "encoding_format", "dimensions"):
            raise untranslatable(name, _TARGET)
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise untranslatable("encoding_format", _TARGET, "float or base64")
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise untranslatable("input", _TARGET, "a string or a list of strings")
    dimensions = body.get("dimensions")
    if model.startswith("cohere.embed"):
        if dimensions is not None:
            raise untranslatable("dimensions", _TARGET, "Cohere Embed has fixed dimensions")
        return CohereEmbeddings(model, texts, None, encoding == "base64")
    if model.startswith("amazon.titan-embed"):
        if dimensions is not None and "-v2" not in model:
            raise untranslatable("dimensions", _TARGET, "only Titan Text Embeddings V2 takes it")
        return TitanEmbeddings(model, texts, dimensions, encoding == "base64")
    raise untranslatable("model", _TARGET, f"{model!r} is not a Titan or Cohere embedding "
                         "model")


def _base64(vector: list[float]) -> str:
    """OpenAI's `encoding_format: base64`: the vector as little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
