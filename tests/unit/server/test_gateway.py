"""The ASGI dispatch: public paths need no credential, everything else is authenticated first,
every route's group is authorized before its handler runs, the handler table must serve every
operation, and a bug in a handler is a bare 500 that shows nothing of it."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from rolegate.api.routes import Operation, Route
from rolegate.authn.principal import Principal
from rolegate.authz.policy import RolePolicy
from rolegate.observability.logging import DecisionLog
from rolegate.server.asgi import Request, Response
from rolegate.server.gateway import Gateway, health
from rolegate.server.guard import Guard
from tests.support.front_door import AcceptAnyone, every_operation, open_guard


async def failing(request: Request, route: Route, who: Principal) -> Response:
    raise RuntimeError("database password is hunter2")


def client_for_app(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test")


def gateway_with(handlers: Any, *, guard: Guard | None = None, authenticator: Any = None,
                 public: Any = None) -> Gateway:
    return Gateway(authenticator=authenticator or AcceptAnyone(), guard=guard or open_guard(),
                   handlers=handlers, public=public or {}, on_startup=[], on_shutdown=[])


async def test_a_bug_in_a_handler_is_a_500_without_details(caplog):
    gateway = gateway_with(every_operation(failing))
    async with client_for_app(gateway) as client:
        with caplog.at_level(logging.ERROR, logger="rolegate.gateway"):
            response = await client.get("/v1/models")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] in caplog.text


async def test_public_paths_answer_without_authentication():
    class RefuseEveryone:
        async def authenticate(self, headers: Any, query: bytes) -> Principal:
            raise AssertionError("public paths must not be authenticated")

    gateway = gateway_with(every_operation(failing), authenticator=RefuseEveryone(),
                           public={"/health/live": health(), "/health/ready": health(
                               {"issuer corp": lambda: "keys not fetched yet",
                                "database": lambda: None})})
    async with client_for_app(gateway) as client:
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (
        503, {"status": "unavailable", "not_ready": {"issuer corp": "keys not fetched yet"}})


async def test_every_response_has_a_distinct_request_id():
    gateway = gateway_with(every_operation(failing), public={"/health/live": health()})
    async with client_for_app(gateway) as client:
        ids = {(await client.get("/health/live")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_a_handler_table_missing_an_operation_is_refused_at_start_up():
    handlers = every_operation(failing)
    del handlers[Operation.ADMIN_USAGE]
    with pytest.raises(ValueError, match=r"admin\.usage"):
        gateway_with(handlers)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("GET", "/v1/models/m"),
    ("GET", "/admin/policy"), ("DELETE", "/admin/keys/key_1"), ("GET", "/admin/nothing"),
    ("POST", "/openai/deployments/m/embeddings"),
])
async def test_a_caller_without_the_group_never_reaches_a_handler(method, path):
    """No rule grants anything: the front door refuses every route, and no handler runs."""
    ran: list[str] = []

    async def handler(request: Request, route: Route, who: Principal) -> Response:
        ran.append(request.path)
        return Response()

    guard = Guard(RolePolicy.compile([]), DecisionLog(is_enabled=False))
    async with client_for_app(gateway_with(every_operation(handler), guard=guard)) as client:
        response = await client.request(method, path, json={"model": "m"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert ran == []


@pytest.mark.parametrize("path", ["/v1/models", "/v1/chat/completions", "/admin/anything",
                                  "/openai/deployments/m/chat/completions"])
def test_a_public_path_that_is_a_route_is_refused_at_start_up(path):
    with pytest.raises(ValueError, match="without authentication"):
        gateway_with(every_operation(failing), public={path: health()})
