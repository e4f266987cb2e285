"""Content the upstream holds for the gateway's credential, named in a body: refused on every
surface, where that API reads it, and only there."""

from __future__ import annotations

from typing import Any

import pytest

from rolegate.errors import InvalidRequest
from rolegate.reading.stored import refuse_stored_references, stored_reference

TEXT = {"parts": [{"text": "hi"}]}
USER = {"role": "user", "content": "hi"}


def refused(operation: str, body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        refuse_stored_references(operation, body)
    return caught.value


@pytest.mark.parametrize(("operation", "body", "param"), [
    # Gemini
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
    # OpenAI chat completions
    ("chat/completions", {"messages": [USER, {"role": "user", "content": [
        {"type": "text", "text": "summarise"},
        {"type": "file", "file": {"file_id": "file-abc"}}]}]},
     "messages[1].content[1].file.file_id"),
    # OpenAI Responses
    ("responses", {"input": "go on", "previous_response_id": "resp_abc"},
     "previous_response_id"),
    ("responses", {"input": "go on", "conversation": {"id": "conv_abc"}}, "conversation"),
    ("responses", {"input": "hi", "prompt": {"id": "pmpt_abc"}}, "prompt"),
    ("responses", {"input": [{"type": "item_reference", "id": "msg_abc"}]}, "input[0].id"),
    ("responses", {"input": [{"role": "user", "content": [
        {"type": "input_file", "file_id": "file-abc"}]}]}, "input[0].content[0].file_id"),
    ("responses", {"input": [{"role": "user", "content": [
        {"type": "input_image", "file_id": "file-abc"}]}]}, "input[0].content[0].file_id"),
    ("responses", {"input": "hr policy?", "tools": [
        {"type": "file_search", "vector_store_ids": ["vs_hr"]}]}, "tools[0].vector_store_ids"),
    ("responses", {"input": "run", "tools": [
        {"type": "code_interpreter", "container": "cntr_abc"}]}, "tools[0].container"),
    # Anthropic Messages
    ("messages", {"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "file", "file_id": "file_abc"}}]}]},
     "messages[0].content[0].source"),
    ("messages/count_tokens", {"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "file", "file_id": "file_abc"}}]}]},
     "messages[0].content[0].source"),
    ("messages", {"system": [{"type": "text", "text": "x"}, {"type": "document", "source": {
        "type": "file", "file_id": "file_abc"}}], "messages": [USER]}, "system[1].source"),
    ("messages", {"messages": [{"role": "user", "content": [
        {"type": "container_upload", "file_id": "file_abc"}]}]},
     "messages[0].content[0].file_id"),
    ("messages", {"messages": [{"role": "user", "content": [{
        "type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "image", "source": {"type": "file", "file_id": "file_abc"}}]}]}]},
     "messages[0].content[0].content[0].source"),
    ("messages", {"messages": [USER], "container": "container_abc"}, "container"),
], ids=["gemini-cached-content", "gemini-gcs-file", "gemini-snake-case-file",
        "gemini-files-api-in-system", "gemini-nested-count", "gemini-embed-file",
        "gemini-batch-file-other-case", "chat-file-id", "responses-previous",
        "responses-conversation", "responses-prompt", "responses-item-reference",
        "responses-input-file", "responses-input-image", "responses-vector-stores",
        "responses-container", "messages-file-document", "count-tokens-file-image",
        "messages-file-in-system", "messages-container-upload", "messages-file-in-tool-result",
        "messages-container"])
def test_content_held_upstream_is_refused_wherever_the_api_reads_it(operation, body, param):
    """The gateway's credential would read it: another tenant's upload, cache, vector store or
    conversation, or on Vertex AI any `gs://` object its service account can read."""
    error = refused(operation, body)
    assert (error.code, error.param) == ("stored_content_refused", param)
    assert f"`{param}`" in error.message


@pytest.mark.parametrize(("operation", "body"), [
    ("generateContent", {"contents": [{"role": "model", "parts": [{"functionCall": {
        "name": "fetch", "args": {"fileData": "gs://b/o", "cachedContent": "x"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "fetch", "response": {
            "fileData": {"fileUri": "gs://b/o"}}}}]}],
        "tools": [{"functionDeclarations": [{"name": "fetch", "parameters": {
            "type": "OBJECT", "properties": {"fileData": {"type": "STRING"},
                                             "cachedContent": {"type": "STRING"}}}}]}]}),
    ("generateContent", {"contents": [{"parts": [
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}]}),
    ("chat/completions", {"messages": [USER, {"role": "user", "content": [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA",
                                  "filename": "a.pdf"}}]}],
        "tools": [{"type": "function", "function": {"name": "read", "parameters": {
            "type": "object", "properties": {"file_id": {"type": "string"}}}}}]}),
    ("chat/completions", {"messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {
            "name": "read", "arguments": '{"file_id": "file-abc"}'}}]}]}),
    ("responses", {"input": [{"role": "user", "content": [
        {"type": "input_file", "file_data": "data:application/pdf;base64,AAAA"}]}],
        "tools": [{"type": "function", "name": "f", "parameters": {
            "type": "object", "properties": {"vector_store_ids": {"type": "array"}}}}]}),
    ("messages", {"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": "AAAA"}}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "read",
                                           "input": {"file_id": "file_abc",
                                                     "container": "c"}}]}],
        "tools": [{"name": "read", "input_schema": {"type": "object", "properties": {
            "file_id": {"type": "string"}, "container": {"type": "string"}}}}]}),
    ("embeddings", {"input": "hi", "file_id": "whatever"}),
    ("responses", {"input": "hi", "prompt": "hi"}),
], ids=["gemini-function-schema-and-args", "gemini-inline-data", "chat-inline-file-and-schema",
        "chat-tool-call-arguments", "responses-inline-file-and-schema",
        "messages-inline-document-tool-input-and-schema", "other-operation",
        "responses-prompt-as-text"])
def test_inline_content_and_names_inside_free_form_json_are_read(operation, body):
    """A function's schema, a tool call's arguments and its input may name anything."""
    assert stored_reference(operation, body) is None
