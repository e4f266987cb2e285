"""Embeddings between Gemini's API and OpenAI's, both ways: text in, vectors back in order,
the output size carried over, base64 as OpenAI encodes it; task hints, other parts and token
ids are refused naming the field."""

from __future__ import annotations

import base64
import struct

import pytest

from rolegate.errors import InvalidRequest
from rolegate.translate.gemini_embeddings import (
    batch_request, embeddings_request, gemini_embeddings, openai_embeddings,
)


def content(*texts: str) -> dict[str, object]:
    return {"parts": [{"text": text} for text in texts]}


def test_one_content_becomes_one_input_and_its_vector_comes_back():
    body = embeddings_request({"model": "m", "content": content("hello ", "there"),
                               "outputDimensionality": 8}, operation="embedContent")
    reply = gemini_embeddings({"data": [{"index": 0, "embedding": [0.5, 0.25]}]},
                              operation="embedContent")

    assert body == {"model": "m", "input": ["hello there"], "dimensions": 8}
    assert reply == {"embedding": {"values": [0.5, 0.25]}}


def test_a_batch_becomes_one_call_and_its_vectors_come_back_in_order():
    body = embeddings_request({"model": "m", "requests": [
        {"model": "models/m", "content": content("a")}, {"content": content("b")}]},
        operation="batchEmbedContents")
    reply = gemini_embeddings({"data": [{"index": 1, "embedding": [2.0]},
                                        {"index": 0, "embedding": [1.0]}]},
                              operation="batchEmbedContents")

    assert body == {"model": "m", "input": ["a", "b"]}
    assert reply == {"embeddings": [{"values": [1.0]}, {"values": [2.0]}]}


@pytest.mark.parametrize(("body", "operation", "field"), [
    ({"content": content("a"), "taskType": "RETRIEVAL_QUERY"}, "embedContent", "taskType"),
    ({"content": content("a"), "title": "doc"}, "embedContent", "title"),
    ({"content": {"parts": [{"inlineData": {}}]}}, "embedContent", "content"),
    ({"requests": []}, "batchEmbedContents", "requests"),
    ({"requests": [{"content": content("a")}], "extra": 1}, "batchEmbedContents", "extra"),
    ({"requests": ["a"]}, "batchEmbedContents", "requests[0]"),
    ({"requests": [{"content": content("a"), "taskType": "X"}]}, "batchEmbedContents",
     "requests[0].taskType"),
    ({"requests": [{"content": content("a"), "outputDimensionality": 8},
                   {"content": content("b"), "outputDimensionality": 16}]},
     "batchEmbedContents", "requests.outputDimensionality"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_what_openai_embeddings_cannot_express_is_a_400_naming_it(body, operation, field):
    with pytest.raises(InvalidRequest) as refused:
        embeddings_request(body, operation=operation)
    assert (refused.value.code, refused.value.param) == ("untranslatable_field", field)


def test_an_openai_call_becomes_a_batch_on_the_upstream_model():
    assert batch_request({"model": "embed", "input": ["a", "b"], "dimensions": 4,
                          "user": "alice"}, model="text-embedding-004") == {"requests": [
        {"model": "models/text-embedding-004", "content": content("a"),
         "outputDimensionality": 4},
        {"model": "models/text-embedding-004", "content": content("b"),
         "outputDimensionality": 4}]}
    assert batch_request({"input": "one"}, model="e")["requests"][0]["content"] == content("one")


@pytest.mark.parametrize(("body", "field"), [
    ({"input": [1, 2, 3]}, "input"), ({"input": [[1, 2]]}, "input"),
    ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
    ({"input": "a", "truncate": True}, "truncate"),
])
def test_what_gemini_embeddings_cannot_express_is_a_400_naming_it(body, field):
    with pytest.raises(InvalidRequest) as refused:
        batch_request(body, model="e")
    assert (refused.value.code, refused.value.param) == ("untranslatable_field", field)


def test_vectors_come_back_as_floats_or_as_base64_little_endian_float32s():
    reply = {"embeddings": [{"values": [0.5, -1.0]}, {"values": []}]}

    floats = openai_embeddings(reply, model="embed")
    encoded = openai_embeddings(reply, model="embed", encoding_format="base64")

    assert floats == {"object": "list", "model": "embed", "data": [
        {"object": "embedding", "index": 0, "embedding": [0.5, -1.0]},
        {"object": "embedding", "index": 1, "embedding": []}]}
    vector = base64.b64decode(encoded["data"][0]["embedding"])
    assert struct.unpack("<2f", vector) == (0.5, -1.0)
