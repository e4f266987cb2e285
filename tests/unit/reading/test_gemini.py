"""Reading a Gemini API call: what is refused before anything is decided or forwarded."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.errors import InvalidRequest
from rolegate.reading.gemini import gemini_operation

TEXT = {"parts": [{"text": "hi"}]}


def refused(method: str, body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        gemini_operation(method, body, "gem", b"")
    return caught.value


@pytest.mark.parametrize(("method", "body", "param"), [
    ("generateContent", {"contents": [TEXT], "cachedContent": "cachedContents/abc"},
     "cachedContent"),
    ("generateContent", {"contents": [{"parts": [
        {"text": "summarise"}, {"fileData": {"fileUri": "gs://hr/salaries.pdf",
                                             "mimeType": "application/pdf"}}]}]},
     "contents[0].parts[1].fileData"),
    ("generateContent", {"contents": [{"parts": [{"file_data": {"file_uri": "gs://b/o"}}]}]},
     "contents[0].parts[0].file_data"),
    ("generateContent", {"contents": [TEXT], "systemInstruction": {"parts": [
        {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/x"}}]}},
     "systemInstruction.parts[0].fileData"),
    ("countTokens", {"generateContentRequest": {"model": "models/gem", "contents": [TEXT],
                                                "cachedContent": "cachedContents/abc"}},
     "generateContentRequest.cachedContent"),
    ("embedContent", {"content": {"parts": [{"fileData": {"fileUri": "gs://b/o"}}]}},
     "content.parts[0].fileData"),
    ("batchEmbedContents", {"requests": [{"content": {"parts": [{"FileData": {}}]}}]},
     "requests[0].content.parts[0].FileData"),
], ids=["cached-content", "gcs-file", "snake-case-file", "files-api-in-system", "nested-count",
        "embed-file", "batch-file-other-case"])
def test_content_held_upstream_is_refused_wherever_it_is_named(method, body, param):
    """The gateway's credential would read it: another tenant's cache or upload, or on
    Vertex AI any `gs://` object its service account can read."""
    error = refused(method, body)
    assert (error.code, error.param) == ("stored_content_refused", param)


def test_names_inside_free_form_json_are_not_mistaken_for_stored_content():
    """A function's schema, its call's arguments and its response may name anything."""
    body = {"contents": [{"role": "model", "parts": [{"functionCall": {
        "name": "fetch", "args": {"fileData": "gs://b/o", "cachedContent": "x"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "fetch", "response": {
            "fileData": {"fileUri": "gs://b/o"}}}}]}],
        "tools": [{"functionDeclarations": [{"name": "fetch", "parameters": {
            "type": "OBJECT", "properties": {"fileData": {"type": "STRING"},
                                             "cachedContent": {"type": "STRING"}}}}]}]}
    assert gemini_operation("generateContent", body, "gem", b"") == ("generateContent", False)


@pytest.mark.parametrize("entries", [[1], ["x"], [None], [{"content": TEXT}, []]],
                         ids=["number", "string", "null", "list-after-object"])
def test_a_batch_entry_that_is_not_an_object_is_refused_not_dropped(entries):
    error = refused("batchEmbedContents", {"requests": entries})
    assert error.code == "invalid_body"
    assert error.param == f"requests[{len(entries) - 1}]"


def test_inline_content_and_a_batch_naming_the_paths_model_are_read():
    assert gemini_operation("generateContent", {"contents": [{"parts": [
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}]}, "gem", b"") \
        == ("generateContent", False)
    assert gemini_operation("batchEmbedContents", {"requests": [
        {"model": "models/gem", "content": TEXT}, {"content": TEXT}]}, "gem", b"") \
        == ("batchEmbedContents", False)


@pytest.mark.parametrize("named", ["models/secret", "tunedModels/secret", "gem", 5],
                         ids=["other-model", "tuned-model", "no-prefix", "not-a-string"])
def test_a_count_request_naming_another_model_inside_is_refused(named):
    error = refused("countTokens", {"generateContentRequest": {"model": named,
                                                                "contents": [TEXT]}})
    assert (error.code, error.param) == ("invalid_body", "generateContentRequest.model")
