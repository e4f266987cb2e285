"""Google's Gemini API as an upstream speaks it, for `RecordingUpstream`: requests checked as
the API checks them (a credential, no `model` in the body, every field one the API defines:
validated with the `google-genai` SDK's own types, which forbid unknown fields), replies and
stream events built with those types, so what they hold is what the SDK parses.

A request with function declarations is answered by a call of the first (`TOOL_ARGS`), else by
`TEXT`, streamed in three pieces. Usage: `PROMPT_TOKENS` in, `OUTPUT_TOKENS` out, and
`THOUGHT_TOKENS` of thinking, which is billed as output.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
from aiohttp import web
from google.genai import types

TEXT = "from gemini upstream"
TOOL_ARGS = {"city": "Paris"}
PROMPT_TOKENS, OUTPUT_TOKENS, THOUGHT_TOKENS = 6, 3, 2
VECTOR = [0.5, 0.25]
# GenerateContentRequest's fields, and the SDK type each is read with.
_FIELDS: dict[str, Any] = {
    "contents": list[types.Content], "systemInstruction": types.Content,
    "generationConfig": types.GenerationConfig, "tools": list[types.Tool],
    "toolConfig": types.ToolConfig, "safetySettings": list[types.SafetySetting]}
_EMBED_FIELDS: dict[str, Any] = {"content": types.Content, "taskType": str, "title": str,
                                 "outputDimensionality": int}


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "status": code}},
                             status=status)


def method_of(path: str) -> str | None:
    """The Gemini method a request path names (`…/models/x:generateContent`), if any."""
    last = path.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def refusal(request: web.Request, payload: dict[str, Any], method: str) -> web.Response | None:
    if not (request.headers.get("x-goog-api-key") or request.headers.get("authorization")):
        return error(401, "UNAUTHENTICATED", "Method doesn't allow unregistered callers.")
    if method == "streamGenerateContent" and request.query.get("alt") != "sse":
        return error(400, "INVALID_ARGUMENT", "this mock streams with alt=sse only")
    fields = _EMBED_FIELDS if method == "embedContent" else _FIELDS
    if method == "batchEmbedContents":
        fields = {"requests": list[dict[str, Any]]}
    if method == "countTokens":
        fields = {"contents": list[types.Content],
                  "generateContentRequest": dict[str, Any]}  # its `model`, `contents`, …
    for name, value in payload.items():
        if name not in fields:
            return error(400, "INVALID_ARGUMENT",
                         f'Invalid JSON payload received. Unknown name "{name}"')
        try:
            pydantic.TypeAdapter(fields[name]).validate_python(value)
        except pydantic.ValidationError as exc:
            return error(400, "INVALID_ARGUMENT", f"{name}: {exc}")
    for item in payload.get("requests", ()):
        if not str(item.get("model", "")).startswith("models/"):
            return error(400, "INVALID_ARGUMENT", "requests[].model: models/... required")
    return None


def response(payload: dict[str, Any]) -> types.GenerateContentResponse:
    declarations = [declaration for tool in payload.get("tools", ())
                    for declaration in tool.get("functionDeclarations", ())]
    part = types.Part(function_call=types.FunctionCall(name=declarations[0]["name"],
                                                       args=TOOL_ARGS)) \
        if declarations else types.Part(text=TEXT)
    return types.GenerateContentResponse(
        candidates=[types.Candidate(content=types.Content(role="model", parts=[part]),
                                    finish_reason=types.FinishReason.STOP, index=0)],
        usage_metadata=_usage(OUTPUT_TOKENS), model_version="gemini-upstream",
        response_id="resp-upstream")


def _usage(output: int) -> types.GenerateContentResponseUsageMetadata:
    return types.GenerateContentResponseUsageMetadata(
        prompt_token_count=PROMPT_TOKENS, candidates_token_count=output,
        thoughts_token_count=THOUGHT_TOKENS,
        total_token_count=PROMPT_TOKENS + output + THOUGHT_TOKENS)


def dumped(value: pydantic.BaseModel) -> dict[str, Any]:
    data: dict[str, Any] = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


async def answer(request: web.Request, payload: dict[str, Any]) -> web.StreamResponse:
    method = method_of(request.path) or ""
    refused = refusal(request, payload, method)
    if refused is not None:
        return refused
    if method == "countTokens":
        return web.json_response(dumped(types.CountTokensResponse(total_tokens=PROMPT_TOKENS)))
    if method == "embedContent":
        return web.json_response({"embedding": {"values": VECTOR}})
    if method == "batchEmbedContents":
        return web.json_response({"embeddings": [{"values": VECTOR}
                                                 for _ in payload["requests"]]})
    whole = response(payload)
    if method == "streamGenerateContent":
        return await _stream(request, whole)
    return web.json_response(dumped(whole))


async def _stream(request: web.Request, whole: types.GenerateContentResponse
                  ) -> web.StreamResponse:
    stream = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await stream.prepare(request)
    assert whole.candidates and whole.candidates[0].content
    part = (whole.candidates[0].content.parts or [types.Part()])[0]
    pieces = [types.Part(text=piece) for piece in ("from ", "gemini ", "upstream")] \
        if part.text else [part]
    for index, piece in enumerate(pieces):
        is_last = index == len(pieces) - 1
        event = types.GenerateContentResponse(
            candidates=[types.Candidate(
                content=types.Content(role="model", parts=[piece]), index=0,
                finish_reason=types.FinishReason.STOP if is_last else None)],
            usage_metadata=_usage(OUTPUT_TOKENS if is_last else index + 1),
            model_version="gemini-upstream")
        await stream.write(f"data: {json.dumps(dumped(event))}\r\n\r\n".encode())
    await stream.write_eof()
    return stream
