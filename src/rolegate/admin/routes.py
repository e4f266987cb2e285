"""Admin handlers. The front door has authorized route group `admin` before any of them runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from rolegate.api.routes import Route
from rolegate.authn.principal import Principal
from rolegate.config.model import IssuerConfig, Settings
from rolegate.errors import NotFound
from rolegate.server.asgi import Request, Response, json_response

if TYPE_CHECKING:
    from pydantic.main import IncEx


class AdminHandlers:
    def __init__(self, settings: Settings, issuers: list[IssuerConfig]) -> None:
        self._policy_view = _policy_view(settings, issuers)

    async def policy(self, request: Request, route: Route, who: Principal) -> Response:
        return json_response(self._policy_view)

    def static(self, body: bytes) -> Callable[[Request, Route, Principal], Awaitable[Response]]:
        """A handler answering `body` (JSON)."""
        async def respond(request: Request, route: Route, who: Principal) -> Response:
            return Response(body=body)
        return respond

    def computed(self, produce: Callable[[], Response]
                 ) -> Callable[[Request, Route, Principal], Awaitable[Response]]:
        """A handler answering what `produce` makes now."""
        async def respond(request: Request, route: Route, who: Principal) -> Response:
            return produce()
        return respond

    async def not_found(self, request: Request, route: Route, who: Principal) -> Response:
        raise NotFound(f"No admin route matches {request.path}.", code="unknown_route")


_DEPLOYMENT_SECRETS: dict[str, IncEx | bool] = {"api_key": True, "auth": {"client_secret"}}
_SECRETS: IncEx = {"deployments": {"__all__": _DEPLOYMENT_SECRETS}}


def _policy_view(settings: Settings, issuers: list[IssuerConfig]) -> dict[str, Any]:
    """The effective issuers, models and rules; secrets (API keys) are left out."""
    return {
        "issuers": [issuer.model_dump(mode="json") for issuer in issuers],
        "models": [model.model_dump(mode="json", exclude=_SECRETS) for model in settings.models],
        "rules": [rule.model_dump(mode="json") for rule in settings.policy],
    }
