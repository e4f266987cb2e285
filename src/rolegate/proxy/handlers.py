"""The inference handlers, OpenAI's API, Anthropic's Messages API and the Gemini API alike.
Thin: read what is needed, decide on the model, forward.

The front door has authorized the route's group before a handler runs; these add only the
decision on the model the request names."""

from __future__ import annotations

from rolegate.api.routes import ANTHROPIC_OPERATIONS, FORM_OPERATIONS, GEMINI_OPERATIONS, Route
from rolegate.authn.principal import Principal
from rolegate.authz.model import Action
from rolegate.errors import InvalidRequest
from rolegate.proxy.metering import Metering
from rolegate.proxy.streaming import response_for
from rolegate.reading import body as bodies
from rolegate.reading.gemini import gemini_operation
from rolegate.reading.hosted_tools import refuse_hosted_mcp
from rolegate.reading.stored import refuse_stored_references
from rolegate.routing.dispatcher import Dispatcher, Trail
from rolegate.routing.request import STREAM_OPERATIONS, ClientRequest
from rolegate.routing.table import RouteTable
from rolegate.server.asgi import Request, Response, json_response
from rolegate.server.guard import Guard

CREATED = 1_700_000_000


class ProxyHandlers:
    def __init__(self, guard: Guard, routes: RouteTable, dispatcher: Dispatcher,
                 metering: Metering, *, max_body_bytes: int,
                 body_timeout: float | None = None) -> None:
        self._guard = guard
        self._routes = routes
        self._dispatcher = dispatcher
        self._metering = metering
        self._max_body_bytes = max_body_bytes
        self._body_timeout = body_timeout

    async def inference(self, request: Request, route: Route, who: Principal) -> Response:
        call, is_json_array = await self._read(request, route, who)
        request.state["model"] = call.model
        decision = self._guard.authorize(request, who,
                                         Action(route.group, request.path, call.model))

        # Limits are acquired before anything is forwarded (429 here reaches no upstream); the
        # usage is recorded and the lease settled once the reply has ended.
        async with self._metering.measure(request, who, decision, call) as meter:
            async def is_allowed(model: str) -> bool:
                # A fallback is authorized, limited and recorded by the rule granting it.
                action = Action(route.group, request.path, model)
                return await meter.fall_back(self._guard.decide(request, who, action), model)
            trail = Trail()
            try:
                forwarded = await self._dispatcher.forward(call, is_allowed, trail)
            finally:  # on failure too: the access line says what was tried and why it failed
                request.state.update(deployment=trail.deployment, attempts=trail.attempts,
                                     cause=trail.cause)
                if trail.attempts:  # usage is recorded only for requests that reached upstream
                    meter.reach_upstream()
            request.state.update(served_model=forwarded.model,
                                 deployment=forwarded.deployment or trail.deployment,
                                 reply=forwarded.reply)
            return await meter.attach(forwarded, response_for(forwarded, call.operation,
                                                              is_json_array=is_json_array))

    async def _read(self, request: Request, route: Route,
                    who: Principal) -> tuple[ClientRequest, bool]:
        """The request to forward, and whether its stream goes to the caller as a JSON array
        (a Gemini stream asked for without `alt=sse`)."""
        raw = await request.body(self._max_body_bytes, self._body_timeout)
        content_type = request.headers.get(b"content-type", b"").decode("latin-1")
        is_form = bodies.is_form(content_type)
        if is_form and route.operation not in FORM_OPERATIONS:
            raise InvalidRequest(f"{route.operation} takes a JSON body.", code="invalid_body")
        body = bodies.parse_form(raw, content_type) if is_form else bodies.parse_object(raw)
        refuse_stored_references(route.operation, body)
        refuse_hosted_mcp(route.operation, body)
        inspected = bodies.inspect(body, route.model)
        if route.operation in GEMINI_OPERATIONS:
            gemini = gemini_operation(route.operation, body, inspected.model,
                                      request.query_string)
            return ClientRequest(gemini.operation, inspected.model, body, raw, gemini.is_stream,
                                 request.request_id, who.end_user), gemini.is_json_array
        is_stream = inspected.is_stream and route.operation in STREAM_OPERATIONS
        return ClientRequest(route.operation, inspected.model, body, raw, is_stream,
                             request.request_id, who.end_user,
                             content_type if is_form else bodies.JSON, is_form,
                             _api_headers(request) if route.operation in ANTHROPIC_OPERATIONS
                             else ()), False

    async def list_models(self, request: Request, route: Route, who: Principal) -> Response:
        names = self._guard.policy.allowed_models(who, route.group, request.path,
                                                  self._routes.model_names)
        return json_response({"object": "list", "data": [_model_card(n) for n in names]})

    async def list_gemini_models(self, request: Request, route: Route,
                                 who: Principal) -> Response:
        """The Gemini API's `models.list`: the models the caller is granted, in its shape
        (one page: the gateway's model list is short)."""
        names = self._guard.policy.allowed_models(who, route.group, request.path,
                                                  self._routes.model_names)
        return json_response({"models": [_gemini_model(name) for name in names]})

    async def get_model(self, request: Request, route: Route, who: Principal) -> Response:
        return json_response(_model_card(self._granted_model(request, route, who)))

    async def get_gemini_model(self, request: Request, route: Route,
                               who: Principal) -> Response:
        """The Gemini API's `models.get`, decided as `models.get` is on the OpenAI surface."""
        return json_response(_gemini_model(self._granted_model(request, route, who)))

    def _granted_model(self, request: Request, route: Route, who: Principal) -> str:
        """The path's model, once the caller is granted it and it is configured."""
        assert route.model is not None
        self._guard.authorize(request, who, Action(route.group, request.path, route.model))
        self._routes.route(route.model)
        return route.model


# The Anthropic API's version headers: sent on to an upstream that speaks that API.
_API_HEADERS = (b"anthropic-version", b"anthropic-beta")


def _api_headers(request: Request) -> tuple[tuple[str, str], ...]:
    return tuple((name.decode(), value.decode("latin-1")) for name in _API_HEADERS
                 if (value := request.headers.get(name)) is not None)


def _gemini_model(name: str) -> dict[str, object]:
    return {"name": f"models/{name}", "displayName": name,
            "supportedGenerationMethods": list(GEMINI_OPERATIONS)}


def _model_card(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "rolegate"}
