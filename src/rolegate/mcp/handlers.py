"""`McpHandlers`: `/mcp/{server}`, a Streamable HTTP MCP endpoint in front of a configured
server, and its RFC 9728 Protected Resource Metadata.

One request, after the front door authenticated the caller and granted route group `mcp`:

1. the server must be configured (404), and the token's audience must be this server's
   resource URL (RFC 8707): a token minted for the LLM API or another server is refused (401,
   the challenge naming the resource metadata);
2. the server itself must be granted (403 `insufficient_scope` with the `scope` that would);
3. the JSON-RPC message is read once (`messages.py`); headers disagreeing with it are 400;
4. a call naming a tool, resource or prompt is decided like any request (logged, counted,
   audited by the `Guard`); a denied one is answered with a JSON-RPC error and never sent on;
   a tool call over its rule's per-tool limit (`tool_limits.py`) is answered 429 with a
   JSON-RPC error and `Retry-After`, and never sent on either;
5. the message goes to the server with rolegate's own credential (never the caller's token);
   what comes back passes the caller's `Screen`: list results filtered to what the caller may
   use, marked private to caches; an SSE reply (progress, then the response) and the standing
   GET stream are relayed event by event as they arrive, each message screened (`events.py`);
6. one usage record per tool call (with the caller's `accounting.dimensions`, as a model
   call's); each tool's definition is pinned when first listed, and a
   changed one logged (and with `on_tool_change: hide` withheld, `pins.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from rolegate.accounting.recorder import Recorder
from rolegate.accounting.records import Dimensions, UsageRecord
from rolegate.api.routes import Route, RouteGroup
from rolegate.authn.principal import Principal
from rolegate.authz.model import Action, Decision, McpTarget
from rolegate.config.model import McpServerConfig
from rolegate.errors import (
    MethodNotAllowed, NotFound, PermissionDenied, RateLimited, Unauthenticated,
    UpstreamError, UpstreamTimeout,
)
from rolegate.limits.limiter import NO_LEASE, Lease
from rolegate.mcp.credentials import ServerCredential
from rolegate.mcp.pins import ToolPins
from rolegate.mcp.sessions import SessionBinder
from rolegate.mcp.events import ScreenedEvents
from rolegate.mcp.messages import Message, check_headers, error_reply, read_message
from rolegate.mcp.screen import Screen
from rolegate.mcp.stdio import StdioServer
from rolegate.mcp.tool_limits import ToolLimits
from rolegate.providers.http import HttpClient
from rolegate.server.asgi import Request, Response, json_response
from rolegate.server.guard import Guard

log = logging.getLogger("rolegate.mcp")

FORBIDDEN = -32003  # JSON-RPC error for a call the policy refuses
METHOD_NOT_FOUND = -32601
# A tool call over its limit: from JSON-RPC's server-defined range (-32000 to -32099), chosen
# to echo HTTP 429, which the response also carries.
RATE_LIMITED = -32029
# Request headers sent on to the server; nothing else of the caller's (no Authorization).
# The session id is sent on as the server's own (`sessions.py`).
FORWARDED = (b"mcp-protocol-version", b"mcp-method", b"mcp-name", b"last-event-id",
             b"traceparent", b"tracestate")
ACCEPT = {"POST": "application/json, text/event-stream", "GET": "text/event-stream",
          "DELETE": "application/json"}
SSE = b"text/event-stream"
UPSTREAM_FAILED = -32000  # a stream the server broke off: JSON-RPC's generic server error
NOT_CACHEABLE = [(b"cache-control", b"private, no-store"), (b"vary", b"authorization")]


@dataclass(frozen=True, slots=True)
class McpServer:
    config: McpServerConfig
    resource: str  # the URL clients reach it at: the audience its tokens must name
    credential: ServerCredential  # what rolegate presents to it, never the caller's token
    stdio: StdioServer | None = None  # the child process, for a server started with `command`

    @property
    def metadata_url(self) -> str:
        base, _, path = self.resource.partition("/mcp/")
        return f"{base}/.well-known/oauth-protected-resource/mcp/{path}"


class McpHandlers:
    def __init__(self, servers: list[McpServer], guard: Guard, http: HttpClient, *,
                 issuers: list[str], recorder: Recorder | None, clock: Callable[[], float],
                 max_body_bytes: int, body_timeout: float, limits: ToolLimits,
                 sessions: SessionBinder, pins: ToolPins,
                 dimensions_of: Callable[[Principal], Dimensions]) -> None:
        self._servers = {server.config.name: server for server in servers}
        self._guard = guard
        self._limits = limits
        self._http = http
        self._issuers = issuers
        self._recorder = recorder
        self._clock = clock
        self._max_body_bytes = max_body_bytes
        self._body_timeout = body_timeout
        self._sessions = sessions
        self._pins = pins
        self._dimensions_of = dimensions_of  # the caller's usage dimensions, as models record

    def metadata(self, server: McpServer) -> Callable[[], Response]:
        """The server's RFC 9728 document: its resource, the issuers that mint its tokens and
        the scopes the policy asks for on it."""
        action = _server_action(server)
        scopes = self._guard.policy.scopes_granting(action)
        document = {"resource": server.resource, "authorization_servers": self._issuers,
                    "scopes_supported": scopes, "bearer_methods_supported": ["header"]}
        body = json_response(document).body

        def respond() -> Response:
            return Response(body=body)
        return respond

    async def serve(self, request: Request, route: Route, who: Principal) -> Response:
        server = self._server_for(route, who)
        self._admit(request, who, server)
        if request.method in ("GET", "DELETE") and server.stdio is None:
            # GET: the server's standing stream (2025-11-25), screened; DELETE: end a session
            session = self._session(request, who, server)
            return await self._send(request, server, who, session, b"", method=request.method)
        if request.method != "POST":
            raise MethodNotAllowed(f"{request.method} is not served on {request.path}.",
                                   allow=("POST",) if server.stdio else ("POST", "GET", "DELETE"))
        raw = await request.body(self._max_body_bytes, self._body_timeout)
        message = read_message(raw)
        check_headers(message, request.headers)
        session = self._session(request, who, server)
        decision, refusal = self._decide(request, who, server, message)
        if refusal is not None:
            return refusal
        if message.method != "tools/call" or decision is None:
            return await self._forward(request, server, who, session, message)
        try:
            lease = await self._limits.acquire(decision.rule, who, server.config.name,
                                               message.name or "")
        except RateLimited as limited:
            self._record(request, who, server, message, decision, limited.status, 0.0)
            return _limited(message, server, limited)
        started = time.perf_counter()
        response = await self._forward(request, server, who, session, message)
        self._record(request, who, server, message, decision, response.status,
                     (time.perf_counter() - started) * 1000)
        return _with_lease(response, lease)

    def _server_for(self, route: Route, who: Principal) -> McpServer:
        """The server the path names (404), if the token is for it (401, RFC 8707)."""
        server = self._servers.get(route.resource or "")
        if server is None:
            raise NotFound(f"No MCP server is named {route.resource!r}.",
                           code="unknown_mcp_server")
        if server.resource not in who.audiences:
            error = Unauthenticated(f"The token's audience is not {server.resource}; ask for a "
                                    "token for this resource (RFC 8707).",
                                    code="invalid_audience")
            error.resource_metadata = server.metadata_url
            raise error
        return server

    def _decide(self, request: Request, who: Principal, server: McpServer,
                message: Message) -> tuple[Decision | None, Response | None]:
        """The decision on what `message` names (None when it names nothing), and the
        JSON-RPC error answering it instead of the server, if any."""
        if message.method is not None and not message.is_known:
            return None, _reply(error_reply(message.id, METHOD_NOT_FOUND,
                                            f"Method {message.method!r} is not served here."))
        if message.kind is None or message.name is None:
            return None, None
        decision = self._guard.decide(request, who, Action(
            RouteGroup.MCP, request.path,
            mcp=McpTarget(server.config.name, message.kind, message.name,
                          message.arguments if message.kind == "tool" else None)))
        if not decision.allowed:
            return decision, _reply(error_reply(message.id, FORBIDDEN, decision.reason, {
                "code": decision.code, "server": server.config.name,
                message.kind: message.name}))
        if self._is_hidden(server, message):
            return decision, _reply(error_reply(message.id, FORBIDDEN, (
                f"The definition of tool {message.name!r} changed since rolegate first saw "
                "it; it is withheld until reviewed."), {
                "code": "tool_definition_changed", "server": server.config.name,
                "tool": message.name}))
        return decision, None

    async def _forward(self, request: Request, server: McpServer, who: Principal,
                       session: str | None, message: Message) -> Response:
        if server.stdio is None:
            return await self._send(request, server, who, session, message.encoded,
                                    message=message)
        if not message.is_request:  # notifications (initialized, cancelled) stop here
            return Response(status=202, headers=list(NOT_CACHEABLE))
        if message.method == "initialize":  # rolegate is the process's one client
            reply = {"jsonrpc": "2.0", "id": message.id, "result": server.stdio.initialized}
        else:
            reply = await server.stdio.request(message.body)
        screen = Screen(self._guard.policy, self._pins, server.config, who, request.path,
                        message)
        return Response(body=orjson.dumps(screen.message(reply)), headers=list(NOT_CACHEABLE))

    def _is_hidden(self, server: McpServer, message: Message) -> bool:
        return (server.config.on_tool_change == "hide" and message.kind == "tool"
                and self._pins.has_changed(server.config.name, message.name or ""))

    def _admit(self, request: Request, who: Principal, server: McpServer) -> None:
        action = _server_action(server, request.path)
        decision = self._guard.decide(request, who, action)
        if not decision.allowed:
            error = PermissionDenied(decision.reason, code="insufficient_scope")
            error.scope = " ".join(self._guard.policy.scopes_granting(action)) or None
            raise error

    def _session(self, request: Request, who: Principal, server: McpServer) -> str | None:
        """The server's id of the session (2025-11-25) the caller presents: its opener's
        only; another caller presenting it is told it does not exist (`sessions.py`)."""
        presented = request.headers.get(b"mcp-session-id")
        if presented is None:
            return None
        return self._sessions.server_id(server.config.name, who, presented.decode("latin-1"))

    async def _send(self, request: Request, server: McpServer, who: Principal,
                    session_id: str | None, body: bytes, *, method: str = "POST",
                    message: Message | None = None) -> Response:
        headers = {name.decode(): value.decode("latin-1") for name in FORWARDED
                   if (value := request.headers.get(name)) is not None}
        if session_id is not None:
            headers["mcp-session-id"] = session_id
        # rolegate's credential, never the caller's
        headers.update(await server.credential.headers(request, who))
        if method == "POST":
            headers["content-type"] = "application/json"
        headers["accept"] = ACCEPT[method]
        upstream = await self._open(server, method, body, headers)
        out: list[tuple[bytes, bytes]] = list(NOT_CACHEABLE)
        if (session := upstream.headers.get("mcp-session-id")) is not None:
            bound = self._sessions.bind(server.config.name, who, session)
            out.append((b"mcp-session-id", bound.encode("latin-1")))
        screen = Screen(self._guard.policy, self._pins, server.config, who, request.path,
                        message)
        if upstream.content_type == "text/event-stream":
            return Response(status=upstream.status, headers=out, content_type=SSE,
                            stream=SseRelay(upstream, ScreenedEvents(screen), server, message))
        try:
            payload = await upstream.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(server, exc) from None
        finally:
            upstream.release()
        if not payload or message is None:
            return Response(status=upstream.status, body=payload, headers=out)
        reply = _json_reply(payload)
        if reply is None:
            raise UpstreamError(f"MCP server {server.config.name!r} answered with no JSON-RPC "
                                "response.", code="upstream_error")
        return Response(status=upstream.status, body=orjson.dumps(screen.message(reply)),
                        headers=out)

    async def _open(self, server: McpServer, method: str, body: bytes,
                    headers: dict[str, str]) -> aiohttp.ClientResponse:
        url = server.config.url or ""  # a stdio server is never sent to (`_forward`)
        # Bounded between reads, not in total: a stream may run for as long as it delivers.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=server.config.timeout,
                                        sock_read=server.config.timeout)
        try:
            return await self._http.session.request(method, url, data=body, headers=headers,
                                                    timeout=timeout,
                                                    **self._http.egress_options(url))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(server, exc) from None

    def _record(self, request: Request, who: Principal, server: McpServer, message: Message,
                decision: Decision, status: int, latency_ms: float) -> None:
        if self._recorder is None:
            return
        self._recorder.record(UsageRecord(
            ts=self._clock(), request_id=request.request_id, issuer=who.issuer,
            subject=who.subject, client_id=who.client_id, key_id=who.key_id,
            end_user=who.end_user, rule=decision.rule, model=message.name or "",
            provider="mcp", deployment=server.config.name, operation="tools/call",
            is_stream=False, prompt_tokens=0, completion_tokens=0, total_tokens=0,
            cost_usd=0.0, status=status, latency_ms=latency_ms,
            dimensions=self._dimensions_of(who)))


def _server_action(server: McpServer, path: str | None = None) -> Action:
    return Action(RouteGroup.MCP, path or f"/mcp/{server.config.name}",
                  mcp=McpTarget(server.config.name))


def _reply(body: bytes) -> Response:
    return Response(body=body, headers=list(NOT_CACHEABLE))


def _limited(message: Message, server: McpServer, refusal: RateLimited) -> Response:
    """429 (the HTTP meaning an intermediary owes the client) carrying the JSON-RPC error the
    MCP client shows, with `Retry-After` and the `x-ratelimit-*` headers."""
    body = error_reply(message.id, RATE_LIMITED, refusal.message, {
        "code": refusal.code, "retry_after": max(1, round(refusal.retry_after)),
        "server": server.config.name, "tool": message.name})
    return Response(status=refusal.status, body=body,
                    headers=[*NOT_CACHEABLE, *refusal.headers()])


def _with_lease(response: Response, lease: Lease) -> Response:
    if lease is not NO_LEASE:
        response.headers.extend(lease.headers())
    return response


def _json_reply(payload: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _unreachable(server: McpServer, exc: BaseException) -> UpstreamError | UpstreamTimeout:
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"MCP server {server.config.name!r} did not answer within "
                               f"{server.config.timeout:g} seconds.")
    return UpstreamError(f"MCP server {server.config.name!r} cannot be reached: "
                         f"{type(exc).__name__}.", code="mcp_server_unavailable")


class SseRelay:
    """The server's SSE stream, screened, as it arrives (a `Stream`: closing it releases the
    server's connection, iterated or not). The status is sent by then, so a server failing
    mid-stream ends it with a JSON-RPC error answering the request (C6)."""

    def __init__(self, upstream: aiohttp.ClientResponse, events: ScreenedEvents,
                 server: McpServer, message: Message | None) -> None:
        self._upstream = upstream
        self._events = events
        self._server = server
        self._message = message

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._upstream.content.iter_any():
                if screened := self._events.feed(chunk):
                    yield screened
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("MCP server %r broke off a stream: %s", self._server.config.name,
                        type(exc).__name__)
            message = self._message
            if message is not None and message.is_request:
                error = _unreachable(self._server, exc)
                yield (b"data: " + error_reply(message.id, UPSTREAM_FAILED, error.message)
                       + b"\n\n")

    async def aclose(self) -> None:
        self._upstream.release()
