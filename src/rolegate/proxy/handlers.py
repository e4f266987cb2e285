"""The OpenAI-compatible handlers. Thin: read what is needed, decide, select, forward."""

from __future__ import annotations

from rolegate.asgi import Request, Response, json_response
from rolegate.authn.principal import Principal
from rolegate.authz.model import Action
from rolegate.proxy import body as bodies
from rolegate.proxy.guard import Guard
from rolegate.proxy.routes import Route
from rolegate.proxy.streaming import buffered_response, streaming_response
from rolegate.providers.base import UpstreamCall
from rolegate.routing.table import RouteTable

CREATED = 1_700_000_000


class ProxyHandlers:
    def __init__(self, guard: Guard, routes: RouteTable, *, max_body_bytes: int,
                 body_timeout: float | None = None) -> None:
        self._guard = guard
        self._routes = routes
        self._max_body_bytes = max_body_bytes
        self._body_timeout = body_timeout

    async def inference(self, request: Request, route: Route, who: Principal) -> Response:
        raw = await request.body(self._max_body_bytes, self._body_timeout)
        body = bodies.parse_object(raw)
        inspected = bodies.inspect(body, route.model)
        self._guard.authorize(request, who, Action(route.group, request.path, inspected.model))
        provider = self._routes.select(inspected.model)
        request.state["model"] = inspected.model
        upstream_body, upstream_raw = bodies.rewrite(
            body, raw, upstream_model=provider.model.upstream_model, end_user=who.end_user)
        call = UpstreamCall(route.operation, upstream_body, upstream_raw, inspected.is_stream,
                            request.request_id)
        reply = await provider.open(call)
        if inspected.is_stream:
            return await streaming_response(reply)
        return await buffered_response(reply)

    async def list_models(self, request: Request, route: Route, who: Principal) -> Response:
        self._guard.authorize(request, who, Action(route.group, request.path))
        names = self._guard.policy.allowed_models(who, route.group, request.path,
                                                  self._routes.model_names)
        return json_response({"object": "list", "data": [_model_card(n) for n in names]})

    async def get_model(self, request: Request, route: Route, who: Principal) -> Response:
        assert route.model is not None
        self._guard.authorize(request, who, Action(route.group, request.path, route.model))
        self._routes.select(route.model)
        return json_response(_model_card(route.model))


def _model_card(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "rolegate"}
