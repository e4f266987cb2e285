"""Reading a Gemini API call: what is refused before anything is decided or forwarded."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.errors import InvalidRequest
from rolegate.reading.gemini import GeminiCall, gemini_operation

TEXT = {"parts": [{"text": "hi"}]}


def refused(method: str, body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        gemini_operation(method, body, "gem", b"")
    return caught.value


@pytest.mark.parametrize("entries", [[1], ["x"], [None], [{"content": TEXT}, []]],
                         ids=["number", "string", "null", "list-after-object"])
def test_a_batch_entry_that_is_not_an_object_is_refused_not_dropped(entries):
    error = refused("batchEmbedContents", {"requests": entries})
    assert error.code == "invalid_body"
    assert error.param == f"requests[{len(entries) - 1}]"


def test_inline_content_and_a_batch_naming_the_paths_model_are_read():
    assert gemini_operation("generateContent", {"contents": [{"parts": [
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}]}, "gem", b"") \
        == GeminiCall("generateContent", is_stream=False, is_json_array=False)
    assert gemini_operation("batchEmbedContents", {"requests": [
        {"model": "models/gem", "content": TEXT}, {"content": TEXT}]}, "gem", b"") \
        == GeminiCall("batchEmbedContents", is_stream=False, is_json_array=False)


@pytest.mark.parametrize("named", ["models/secret", "tunedModels/secret", "gem", 5],
                         ids=["other-model", "tuned-model", "no-prefix", "not-a-string"])
def test_a_count_request_naming_another_model_inside_is_refused(named):
    error = refused("countTokens", {"generateContentRequest": {"model": named,
                                                                "contents": [TEXT]}})
    assert (error.code, error.param) == ("invalid_body", "generateContentRequest.model")
