"""Refusing a body that points the upstream at content it holds for the gateway's credential.

Every caller shares the deployment's key, so whatever the upstream keeps under that key (an
upload, a vector store, a stored response or conversation, a cache, a code container; on
Vertex AI any `gs://` object the service account reads) is no caller's to name: the policy
grants a model, not the account's storage. A body naming such content is refused with 400
`stored_content_refused` naming the field, before anything is decided or forwarded, on every
surface: content is sent inline instead.

Fields are looked for only where each API reads them (a message's content blocks, a request's
top level, a tool's definition), never inside free-form JSON such as a function's schema or
arguments, which may name anything.

>>> stored_reference("chat/completions", {"messages": [{"role": "user", "content": [
...     {"type": "file", "file": {"file_id": "file-abc"}}]}]})
'messages[0].content[0].file.file_id'
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rolegate.errors import InvalidRequest

# The Responses API: a stored response or conversation continued from.
_RESPONSES_STORED = ("previous_response_id", "conversation")


def refuse_stored_references(operation: str, body: dict[str, Any]) -> None:
    """400 when `body`, a call of `operation`, names content held upstream."""
    where = stored_reference(operation, body)
    if where is not None:
        raise InvalidRequest(f"`{where}` names content the upstream holds for the gateway, "
                             "which no caller is granted; send the content inline.",
                             code="stored_content_refused", param=where)


def stored_reference(operation: str, body: dict[str, Any]) -> str | None:
    """Where `body` names content held upstream, or None."""
    if operation == "chat/completions":
        return _first(_chat(body))
    if operation == "responses":
        return _first(_responses(body))
    if operation in ("messages", "messages/count_tokens"):
        return _first(_messages(body))
    if operation in ("generateContent", "streamGenerateContent", "countTokens", "embedContent",
                     "batchEmbedContents"):
        return _first(_gemini(body))
    return None


def _first(found: Iterator[str]) -> str | None:
    return next(found, None)


def _items(value: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The objects of a list, each with where it is."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                yield f"{where}[{index}]", item


def _chat(body: dict[str, Any]) -> Iterator[str]:
    """OpenAI chat: a content part `{"type": "file", "file": {"file_id": …}}` (Files API)."""
    for at, message in _items(body.get("messages"), "messages"):
        for part_at, part in _items(message.get("content"), f"{at}.content"):
            file = part.get("file")
            if isinstance(file, dict) and "file_id" in file:
                yield f"{part_at}.file.file_id"


def _responses(body: dict[str, Any]) -> Iterator[str]:
    """OpenAI Responses: a stored response, conversation or prompt template; an item
    reference; an input file or image by `file_id`; a `file_search` tool's vector stores; a
    code interpreter's container by id."""
    yield from (name for name in _RESPONSES_STORED if body.get(name) is not None)
    if isinstance(body.get("prompt"), dict):  # a stored prompt template, by id
        yield "prompt"
    for at, item in _items(body.get("input"), "input"):
        if item.get("type") == "item_reference":
            yield f"{at}.id"
        if "file_id" in item:
            yield f"{at}.file_id"
        for part_at, part in _items(item.get("content"), f"{at}.content"):
            if "file_id" in part:
                yield f"{part_at}.file_id"
    for at, tool in _items(body.get("tools"), "tools"):
        if "vector_store_ids" in tool:
            yield f"{at}.vector_store_ids"
        if isinstance(tool.get("container"), str):
            yield f"{at}.container"


def _messages(body: dict[str, Any]) -> Iterator[str]:
    """Anthropic Messages: a code execution `container` by id; a block whose source is an
    uploaded file (`{"type": "file", "file_id": …}`) or a `container_upload`, in the system
    prompt, a message or a tool result."""
    if body.get("container") is not None:
        yield "container"
    yield from _blocks(body.get("system"), "system")
    for at, message in _items(body.get("messages"), "messages"):
        yield from _blocks(message.get("content"), f"{at}.content")


def _blocks(value: Any, where: str) -> Iterator[str]:
    for at, block in _items(value, where):
        source = block.get("source")
        if isinstance(source, dict) and (source.get("type") == "file" or "file_id" in source):
            yield f"{at}.source"
        if block.get("type") == "container_upload" or "file_id" in block:
            yield f"{at}.file_id"
        if block.get("type") == "tool_result":
            yield from _blocks(block.get("content"), f"{at}.content")


def _gemini(body: dict[str, Any]) -> Iterator[str]:
    """Gemini: a request's `cachedContent`, a part's `fileData` (a Files API upload, or a
    `gs://` object), in either spelling Google's parser takes (`file_data`)."""
    for where, request in _gemini_requests(body):
        for name, value in request.items():
            if _plain(name) == "cachedcontent":
                yield where + name
            for at, content in _gemini_contents(where + name, _plain(name), value):
                for part_at, part in _items(content.get("parts"), f"{at}.parts"):
                    yield from (f"{part_at}.{key}" for key in part if _plain(key) == "filedata")


def _plain(name: str) -> str:
    """A field's name as Google's parser matches it: `file_data` and `fileData` alike."""
    return name.replace("_", "").lower()


def _gemini_requests(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The body and the requests it holds (countTokens' `generateContentRequest`, a batch's
    `requests`), each with the prefix naming where it is."""
    yield "", body
    for name, value in body.items():
        if _plain(name) == "generatecontentrequest" and isinstance(value, dict):
            yield f"{name}.", value
        elif _plain(name) == "requests":
            yield from ((f"{at}.", request) for at, request in _items(value, name))


def _gemini_contents(where: str, name: str, value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if name == "contents":
        yield from _items(value, where)
    elif name in ("content", "systeminstruction") and isinstance(value, dict):
        yield where, value
