"""`Gateway`: the ASGI application. One request, top to bottom:

1. a request id (the caller's, when it is a safe token); public paths (health, metrics, the
   development key set) answer without a credential;
2. every other request is authenticated (401 on failure) before its path is even resolved;
   under the console's prefix a browser session (`Sessions`) is tried first, its forms'
   CSRF token checked, and a request with no credential at all is sent to sign in;
3. the path resolves to a route (404/405) in the route table (`api/routes.py`), which declares
   the route's group; the group is authorized here (403), before any handler runs, so a handler
   cannot forget it. Inference handlers add only the per-model decision;
4. any `GatewayError` is rendered as JSON in the shape of the caller's API (OpenAI's, or
   Anthropic's or Google's on their paths: `_renderer`); anything else is a logged 500 that
   shows the caller nothing of it;
5. whatever the outcome, one access-log line and the request metrics (`observability/`), and,
   with tracing on, the request's span (`observability/tracing.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from time import time_ns
from typing import TYPE_CHECKING, Protocol

from rolegate.api.routes import (
    DEFAULT_ROUTER, Operation, Route, RouteGroup, Router, Surface, surface_of,
)
from rolegate.authn.authenticator import Authenticator
from rolegate.authn.extract import API_KEY_HEADERS
from rolegate.authn.principal import Principal
from rolegate.errors import (
    GatewayError, MethodNotAllowed, NotFound, Unauthenticated, anthropic_error_body, error_body,
    google_error_body, internal_error,
)
from rolegate.observability.requests import RequestObserver, accepted_request_id
from rolegate.server.asgi import (
    CLIENT_CLOSED, CLIENT_LEFT, ClientDisconnected, Receive, Request, Response, Scope, Send,
    error_response, json_response, send_stream,
)
from rolegate.server.guard import Guard

if TYPE_CHECKING:  # the `otel` extra: imported by app.py only when tracing is on
    from rolegate.observability.tracing import Tracing

log = logging.getLogger("rolegate.gateway")

Handler = Callable[[Request, Route, Principal], Awaitable[Response]]
PublicHandler = Callable[[], Response]
# A public path that reads its request: the sign-in steps before a session exists.
PublicForm = Callable[[Request], Awaitable[Response]]


class Sessions(Protocol):
    """Browser sessions (the console's signed cookie), checked before bearer credentials on the
    paths under `prefix`. A request there with neither is sent to sign in."""

    prefix: str

    async def authenticate(self, request: Request) -> Principal | None:
        """The session's principal (None: no live session); refuses a form without its CSRF
        token."""

    def sign_in(self, request: Request) -> Response:
        """Where a request with no credential at all is sent."""

    def protect(self, response: Response) -> None:
        """Adds the console's security headers (no framing, no sniffing, no caching) to any
        response under `prefix`: a refusal or a download as much as a page."""

    def refresh(self, request: Request, response: Response) -> None:
        """Renews the session's idle expiry on the response."""
Hook = Callable[[], Awaitable[None]]
Check = Callable[[], str | None]  # None when ready; otherwise why not


class StartupFailed(Exception):
    """A start-up hook found the gateway cannot serve; the message (one line) says why and
    what to do. The server logs it and exits, rather than serving errors."""


class Gateway:
    """The ASGI app. `handlers` must serve every `Operation`: a route without a handler is a
    start-up error, not a 500 on the first request that takes it. No `public` path may be a
    route's: public paths answer before authentication."""

    def __init__(self, *, authenticator: Authenticator, guard: Guard,
                 handlers: Mapping[Operation, Handler], public: dict[str, PublicHandler],
                 on_startup: list[Hook], on_shutdown: list[Hook],
                 observer: RequestObserver | None = None,
                 tracing: Tracing | None = None,
                 resource_metadata: Mapping[str, str] | None = None,
                 resource_audiences: frozenset[str] = frozenset(),
                 forms: Mapping[str, PublicForm] | None = None,
                 sessions: Sessions | None = None,
                 router: Router = DEFAULT_ROUTER) -> None:
        missing = [operation.value for operation in Operation if operation not in handlers]
        if missing:
            raise ValueError(f"No handler serves the operations {', '.join(missing)}.")
        forms = dict(forms or {})
        shadowing = [path for path in [*public, *forms] if _is_route(router, path)]
        if shadowing:
            raise ValueError(f"Public paths {', '.join(shadowing)} would answer a route's "
                             "requests without authentication.")
        self._authenticator = authenticator
        self._router = router
        self._guard = guard
        self._observer = observer
        self._tracing = tracing
        self._handlers = dict(handlers)
        self._public = public
        self._forms = forms
        self._sessions = sessions
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown
        # Protected resources (MCP servers): path -> the URL of its RFC 9728 metadata, named
        # by a 401's challenge; their resource URLs are audiences only they accept.
        self._resource_metadata = dict(resource_metadata or {})
        self._resource_audiences = resource_audiences

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._serve(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, "")
        request.request_id = accepted_request_id(request.headers.get(b"x-request-id"))
        # Observability: one access-log line and the request metrics, whatever the outcome.
        observer = self._observer
        started = observer.timer() if observer is not None else 0.0
        tracing = self._tracing
        span = tracing.start(request, request.headers) if tracing is not None else None
        status = CLIENT_CLOSED
        try:
            response = await self._answer(request)
            if response is None:
                return
            status = response.status
            response.headers.append((b"x-request-id", request.request_id.encode()))
            sessions = self._sessions
            if sessions is not None and _is_under(request.path, sessions.prefix):
                sessions.protect(response)
            if response.stream is not None:
                await send_stream(response, send, receive)
            else:
                await response.send(send)
        except asyncio.CancelledError:
            if not scope.get(CLIENT_LEFT):  # shutting down: not ours to swallow
                raise
            status = CLIENT_CLOSED  # the server cancelled the work of a caller that left
        finally:
            if observer is not None:
                observer.finish(request, status, started)
            if tracing is not None:
                tracing.finish(request, status, span)

    async def _answer(self, request: Request) -> Response | None:
        """The response, or None when the caller left before its request was read."""
        try:
            return await self._respond(request)
        except ClientDisconnected:
            return None
        except GatewayError as error:
            request.state["code"] = error.code
            if isinstance(error, Unauthenticated) and self._observer is not None:
                self._observer.refused(request, error)
            return error_response(error, _renderer(request.path))
        except Exception:  # the top-level guard: a bug must not show the caller a traceback
            log.exception("request %s failed", request.request_id)
            request.state["code"] = "internal_error"
            return error_response(internal_error(), _renderer(request.path))

    async def _respond(self, request: Request) -> Response:
        public = self._public.get(request.path)
        if public is not None:
            request.state["route_group"] = "public"
            return public()
        form = self._forms.get(request.path)
        if form is not None:
            request.state["route_group"] = "public"
            return await form(request)
        sessions = self._sessions
        who = None
        if sessions is not None and _is_under(request.path, sessions.prefix):
            who = await sessions.authenticate(request)
            if who is None and not _has_credential(request):
                return sessions.sign_in(request)
        if who is None:
            try:
                who = await self._authenticate(request)
            except Unauthenticated as error:
                error.resource_metadata = self._resource_metadata.get(request.path)
                raise
        request.state["principal"] = who
        route = self._router.resolve(request.method, request.path)
        if route.group is not RouteGroup.MCP and who.audiences \
                and who.audiences <= self._resource_audiences:
            raise Unauthenticated("The token is meant for an MCP server, not this API (`aud`).",
                                  code="invalid_audience")
        request.state["route_group"] = route.group
        self._guard.admit(request, who, route)
        response = await self._handlers[route.operation](request, route, who)
        if sessions is not None and "session" in request.state:
            sessions.refresh(request, response)
        return response

    async def _authenticate(self, request: Request) -> Principal:
        tracing = self._tracing
        if tracing is None or not tracing.is_recording(request):
            return await self._authenticator.authenticate(request.headers, request.query_string)
        started = time_ns()
        try:
            return await self._authenticator.authenticate(request.headers, request.query_string)
        finally:
            tracing.authenticated(request, started)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await _run_hooks(self._on_startup)
                except StartupFailed as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _run_hooks(self._on_shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return


_RENDERERS = {Surface.OPENAI: error_body, Surface.ANTHROPIC: anthropic_error_body,
              Surface.GEMINI: google_error_body}


def _renderer(path: str) -> Callable[[GatewayError], bytes]:
    """The one choice of error shape: by the API the path belongs to (see `surface_of`)."""
    return _RENDERERS[surface_of(path)]


def _is_under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _has_credential(request: Request) -> bool:
    headers = request.headers
    return any(name in headers for name in (b"authorization", *API_KEY_HEADERS))


def _is_route(router: Router, path: str) -> bool:
    try:
        router.resolve("GET", path)
    except MethodNotAllowed:
        return True
    except NotFound:
        return False
    return True


async def _run_hooks(hooks: list[Hook]) -> None:
    for hook in hooks:
        await hook()


def health(checks: Mapping[str, Check] | None = None) -> PublicHandler:
    """Liveness (no `checks`), or readiness: 200 when every check passes; otherwise 503 with
    each failing check's reason, so an operator sees which issuer or dependency holds it back:
    `{"status": "unavailable", "not_ready": {"issuer corp": "…"}}`."""
    def respond() -> Response:
        waiting = {name: reason for name, check in (checks or {}).items()
                   if (reason := check()) is not None}
        if not waiting:
            return json_response({"status": "ok"})
        return json_response({"status": "unavailable", "not_ready": waiting}, status=503)
    return respond


def generated(produce: Callable[[], bytes], content_type: bytes) -> PublicHandler:
    """An answer made anew each time it is asked for (the metrics page)."""
    def respond() -> Response:
        return Response(body=produce(), content_type=content_type)
    return respond


def static_json(body: bytes) -> PublicHandler:
    def respond() -> Response:
        return Response(body=body)
    return respond


def background(*hooks: Hook) -> Hook:
    """A start-up hook that runs `hooks` as background tasks, so serving starts at once."""
    tasks: set[asyncio.Task[None]] = set()

    async def start() -> None:
        for hook in hooks:
            task = asyncio.ensure_future(hook())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    return start
