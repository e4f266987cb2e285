"""Reading one JSON-RPC message of the Model Context Protocol, once, and refusing what another
reader could take differently.

The gateway decides on `method` and on what it names (`params.name`, or `params.uri` for
`resources/read`). The body is forwarded as the canonical encoding of what was read
(`reading/json_body.py`), so the server sees the same method and name. The `Mcp-Method` and
`Mcp-Name` headers are a second reading of the same message: when sent, they must agree with
the body, or the request is refused before anything is decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from rolegate.errors import InvalidRequest
from rolegate.reading.fields import folded
from rolegate.reading.json_body import encode, parse_object

MAX_ID_LENGTH = 128
MAX_SAFE_INTEGER = 2**53 - 1  # larger ids lose precision in JavaScript peers
# method -> (what it names, the params field naming it)
NAMED = {"tools/call": ("tool", "name"), "resources/read": ("resource", "uri"),
         "prompts/get": ("prompt", "name")}
# list method -> (the result's list field, what each item is, the field naming it)
LISTS = {"tools/list": ("tools", "tool", "name"),
         "resources/list": ("resources", "resource", "uri"),
         "prompts/list": ("prompts", "prompt", "name")}
# Requests forwarded as they are: they name nothing the policy grants.
# The members the gateway decides on: a look-alike (`Method`, a fullwidth M) could be read as the
# member itself by a case-insensitive parser upstream.
MEMBERS = frozenset({"jsonrpc", "id", "method", "params"})
PLAIN = frozenset({"initialize", "ping", "server/discover", "resources/templates/list",
                   "completion/complete", "logging/setLevel", "resources/subscribe",
                   "resources/unsubscribe", "subscriptions/listen"})


@dataclass(frozen=True, slots=True)
class Message:
    """One JSON-RPC message: a request (`id` and `method`), a notification (`method` only) or
    a response to the server's own request (`id`, no `method`)."""

    body: dict[str, Any]
    method: str | None
    id: str | int | None
    kind: str | None = None  # "tool", "resource" or "prompt" for NAMED methods
    name: str | None = None
    arguments: tuple[tuple[str, str | None], ...] = ()  # a tools/call's, strings as they are

    @property
    def is_request(self) -> bool:
        return self.method is not None and "id" in self.body

    @property
    def encoded(self) -> bytes:
        return encode(self.body)

    @property
    def is_known(self) -> bool:
        method = self.method
        return method is None or method in NAMED or method in LISTS or method in PLAIN \
            or method.startswith("notifications/")


def read_message(raw: bytes) -> Message:
    """The message in `raw`, or 400: batches (an array), a wrong `jsonrpc`, an id that is not
    a short string or a safe integer, a `method` or name that is not a string."""
    if raw.lstrip()[:1] == b"[":
        raise InvalidRequest("JSON-RPC batches are not accepted; send one message per request.",
                             code="batch_refused")
    body = parse_object(raw)
    if any(key not in MEMBERS and folded(key) in MEMBERS for key in body):
        raise InvalidRequest("The message has a member that reads as a JSON-RPC member to "
                             "case-insensitive parsers.", code="invalid_body")
    if body.get("jsonrpc") != "2.0":
        raise InvalidRequest('A JSON-RPC message needs "jsonrpc": "2.0".', code="invalid_jsonrpc")
    identifier = body.get("id")
    if "id" in body and not _is_valid_id(identifier):
        raise InvalidRequest(f"A JSON-RPC id must be a string of at most {MAX_ID_LENGTH} "
                             f"characters or an integer within ±{MAX_SAFE_INTEGER}.",
                             code="invalid_jsonrpc", param="id")
    method = body.get("method")
    if method is None:
        if "id" not in body or not ("result" in body or "error" in body):
            raise InvalidRequest("A JSON-RPC message needs a method, or a result or error.",
                                 code="invalid_jsonrpc")
        return Message(body, None, identifier)
    if not isinstance(method, str):
        raise InvalidRequest("The JSON-RPC method must be a string.", code="invalid_jsonrpc",
                             param="method")
    named = NAMED.get(method)
    if named is None:
        return Message(body, method, identifier)
    kind, field = named
    params = body.get("params")
    if not isinstance(params, dict):
        params = {}
    name = params.get(field)
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{method} needs params.{field}, a non-empty string.",
                             code="invalid_jsonrpc", param=f"params.{field}")
    if any(key != field and folded(key) == field for key in params):
        raise InvalidRequest(f"params has a key that reads as `{field}` to case-insensitive "
                             "parsers.", code="invalid_body", param=f"params.{field}")
    arguments = params.get("arguments")
    if not isinstance(arguments, dict):
        arguments = {}
    if len({folded(key) for key in arguments}) < len(arguments):
        # A server decoding arguments case-insensitively (Go's encoding/json into a struct:
        # the last of `repository`, `Repository` or `repo\u017fitory` wins) could run with a value
        # other than the one an argument constraint allowed.
        raise InvalidRequest("params.arguments has two names a case-insensitive parser reads "
                             "as one.", code="invalid_body", param="params.arguments")
    passed = tuple((key, value if isinstance(value, str) else None)
                   for key, value in arguments.items())
    return Message(body, method, identifier, kind, name, passed)


def _is_valid_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= MAX_SAFE_INTEGER
    return isinstance(value, str) and len(value) <= MAX_ID_LENGTH


def check_headers(message: Message, headers: Mapping[bytes, bytes]) -> None:
    """400 when `Mcp-Method` or `Mcp-Name`, sent, disagree with the body."""
    method = headers.get(b"mcp-method")
    if method is not None and method.decode("latin-1") != (message.method or ""):
        raise InvalidRequest("The Mcp-Method header disagrees with the body's method.",
                             code="header_body_mismatch", param="Mcp-Method")
    name = headers.get(b"mcp-name")
    if name is not None and name.decode("latin-1") != (message.name or ""):
        raise InvalidRequest("The Mcp-Name header disagrees with the name in the body.",
                             code="header_body_mismatch", param="Mcp-Name")


def error_reply(identifier: str | int | None, code: int, message: str,
                data: dict[str, Any] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return orjson.dumps({"jsonrpc": "2.0", "id": identifier, "error": error})
