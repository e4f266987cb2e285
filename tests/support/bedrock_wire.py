"""Amazon Bedrock Runtime as an upstream speaks it, for `RecordingUpstream` (paths `/model/…`):

- the SigV4 signature is recomputed with botocore from the known test credentials and compared;
  an absent, malformed or wrong one is refused with 403, as AWS refuses it;
- the request is validated against botocore's own `bedrock-runtime` service model
  (`ParamValidator`, and the enums it leaves to the service); an invalid one gets AWS's 400
  `ValidationException`;
- a ConverseStream reply is framed in the AWS event-stream format (`encode_frame`, checked by
  botocore's decoder in the tests), each frame written in two pieces so the gateway must decode
  across chunk boundaries.

A Converse request with a `toolConfig` is answered by a call of its first tool (`TOOL_INPUT`),
else by `TEXT`. Usage: `INPUT_TOKENS` in, `OUTPUT_TOKENS` out, `CACHE_READ` read from and
`CACHE_WRITE` written to the cache. `FAIL_MODEL` answers 400 `ValidationException`;
`THROTTLED_MODEL` streams a `throttlingException` after its first text delta.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from typing import Any
from urllib.parse import unquote
from zlib import crc32

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ParamValidationError
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.validate import validate_parameters

ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLEROLEGATE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
TEXT = "from bedrock upstream"
TOOL_INPUT = {"city": "Paris"}
INPUT_TOKENS, OUTPUT_TOKENS, CACHE_READ, CACHE_WRITE = 7, 4, 2, 1
FAIL_MODEL = "bedrock.fails-validation"
THROTTLED_MODEL = "bedrock.throttled-mid-stream"
EMBEDDING = [0.25, -0.5, 0.75]
SERVICE_MODEL = ServiceModel(Loader().load_service_model("bedrock-runtime", "service-2"),
                             "bedrock-runtime")
_OPERATIONS = {"converse": "Converse", "converse-stream": "ConverseStream",
               "invoke": "InvokeModel"}
_AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/"
                            r"aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})")


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status,
                             headers={"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/"})


def expected_signature(request: web.Request, body: bytes, signed: list[str],
                       session_token: str | None = None) -> str:
    """The signature AWS would compute for `request` with the test credentials."""
    headers = {name: request.headers[name] for name in signed if name in request.headers}
    aws = AWSRequest(method=request.method, url=f"http://{request.host}{request.raw_path}",
                     headers=headers, data=body)
    aws.context["timestamp"] = request.headers.get("x-amz-date", "")
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, session_token), "bedrock", REGION)
    return str(signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws))


def signature_refusal(request: web.Request, body: bytes) -> web.Response | None:
    match = _AUTHORIZATION.fullmatch(request.headers.get("authorization", ""))
    if match is None:
        return _error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    key, _, region, service, signed_headers, signature = match.groups()
    if key != ACCESS_KEY:
        return _error(403, "UnrecognizedClientException",
                      "The security token included in the request is invalid.")
    signed = signed_headers.split(";")
    if region != REGION or service != "bedrock" or not {"host", "x-amz-date"} <= set(signed):
        return _error(403, "InvalidSignatureException", "Credential should be scoped correctly.")
    token = request.headers.get("x-amz-security-token")
    if signature != expected_signature(request, body, signed, token):
        return _error(403, "InvalidSignatureException", "The request signature we calculated "
                      "does not match the signature you provided.")
    return None


def validation_refusal(operation: str, model_id: str, payload: dict[str, Any],
                       body: bytes) -> web.Response | None:
    shape = SERVICE_MODEL.operation_model(operation).input_shape
    params: dict[str, Any] = ({"modelId": model_id, "body": body} if operation == "InvokeModel"
                              else {"modelId": model_id, **payload})
    try:
        validate_parameters(params, shape)
        enum_problems = _enum_problems(params, shape, "input")
        if enum_problems:
            raise ParamValidationError(report="; ".join(enum_problems))
        for message in payload.get("messages") or ():  # blobs travel base64 in the JSON
            for block in message.get("content") or ():
                if "image" in block:
                    base64.b64decode(block["image"]["source"]["bytes"], validate=True)
    except (ParamValidationError, binascii.Error) as exc:
        return _error(400, "ValidationException", str(exc))
    return None


def _enum_problems(value: Any, shape: Any, path: str) -> list[str]:
    """Values outside an enum, which botocore's `ParamValidator` leaves to the service."""
    if shape.type_name == "structure" and isinstance(value, dict):
        return [problem for name, item in value.items() if name in shape.members
                for problem in _enum_problems(item, shape.members[name], f"{path}.{name}")]
    if shape.type_name == "list" and isinstance(value, list):
        return [problem for index, item in enumerate(value)
                for problem in _enum_problems(item, shape.member, f"{path}[{index}]")]
    if shape.type_name == "string" and shape.enum and value not in shape.enum:
        return [f"{path}: {value!r} is not one of {', '.join(shape.enum)}"]
    return []


async def answer(request: web.Request, body: bytes) -> web.StreamResponse:
    refused = signature_refusal(request, body)
    if refused is not None:
        return refused
    parts = request.raw_path.split("/")
    operation = _OPERATIONS.get(parts[-1]) if len(parts) == 4 else None
    if operation is None:
        return _error(404, "UnknownOperationException", "Unknown operation")
    model_id = unquote(parts[2])
    try:
        payload = json.loads(body)
    except ValueError:
        return _error(400, "SerializationException", "Could not parse the request body.")
    refused = validation_refusal(operation, model_id, payload, body)
    if refused is not None:
        return refused
    if model_id == FAIL_MODEL:
        return _error(400, "ValidationException", "The provided model identifier is invalid.")
    if operation == "InvokeModel":
        return web.json_response(_embeddings(model_id, payload))
    if operation == "ConverseStream":
        return await _stream(request, model_id, payload)
    return web.json_response(converse_reply(payload))


def _blocks(payload: dict[str, Any]) -> list[dict[str, Any]]:
    tools = (payload.get("toolConfig") or {}).get("tools") or []
    if tools:
        return [{"toolUse": {"toolUseId": "tooluse_1", "name": tools[0]["toolSpec"]["name"],
                             "input": TOOL_INPUT}}]
    return [{"text": TEXT}]


def usage() -> dict[str, int]:
    return {"inputTokens": INPUT_TOKENS, "outputTokens": OUTPUT_TOKENS,
            "totalTokens": INPUT_TOKENS + OUTPUT_TOKENS + CACHE_READ + CACHE_WRITE,
            "cacheReadInputTokens": CACHE_READ, "cacheWriteInputTokens": CACHE_WRITE}


def converse_reply(payload: dict[str, Any]) -> dict[str, Any]:
    blocks = _blocks(payload)
    return {"output": {"message": {"role": "assistant", "content": blocks}},
            "stopReason": "tool_use" if "toolUse" in blocks[0] else "end_turn",
            "usage": usage(), "metrics": {"latencyMs": 12}}


def _embeddings(model_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    if model_id.startswith("cohere."):
        return {"id": "emb-1", "response_type": "embeddings_floats", "texts": payload["texts"],
                "embeddings": [EMBEDDING for _ in payload["texts"]]}
    return {"embedding": EMBEDDING[: payload.get("dimensions", 3)],
            "inputTextTokenCount": len(payload["inputText"].split())}


def encode_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (total and header lengths, CRC32), string-typed
    headers (type 7), payload, CRC32 of all before it."""
    encoded = b"".join(struct.pack(">B", len(name)) + name.encode() + b"\x07"
                       + struct.pack(">H", len(value)) + value.encode()
                       for name, value in headers.items())
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", crc32(message))


def event(kind: str, value: dict[str, Any]) -> bytes:
    return encode_frame({":event-type": kind, ":content-type": "application/json",
                         ":message-type": "event"}, json.dumps(value).encode())


def exception(kind: str, message: str) -> bytes:
    return encode_frame({":exception-type": kind, ":content-type": "application/json",
                         ":message-type": "exception"}, json.dumps({"message": message}).encode())


def stream_frames(payload: dict[str, Any], *, is_throttled: bool = False) -> list[bytes]:
    block = _blocks(payload)[0]
    frames = [event("messageStart", {"role": "assistant"})]
    if "text" in block:
        pieces = ("from ", "bedrock ", "upstream")
        frames += [event("contentBlockDelta", {"contentBlockIndex": 0,
                                               "delta": {"text": piece}}) for piece in pieces]
        if is_throttled:
            return [*frames[:2], exception("throttlingException", "Too many requests.")]
        stop = "end_turn"
    else:
        use = block["toolUse"]
        arguments = json.dumps(use["input"])
        frames += [event("contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": {
                       "toolUseId": use["toolUseId"], "name": use["name"]}}}),
                   *[event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {
                       "toolUse": {"input": part}}}) for part in (arguments[:5], arguments[5:])]]
        stop = "tool_use"
    return [*frames, event("contentBlockStop", {"contentBlockIndex": 0}),
            event("messageStop", {"stopReason": stop}),
            event("metadata", {"usage": usage(), "metrics": {"latencyMs": 12}})]


async def _stream(request: web.Request, model_id: str,
                  payload: dict[str, Any]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "application/vnd.amazon.eventstream"})
    await response.prepare(request)
    for frame in stream_frames(payload, is_throttled=model_id == THROTTLED_MODEL):
        half = len(frame) // 2
        await response.write(frame[:half])
        await response.write(frame[half:])
    await response.write_eof()
    return response
