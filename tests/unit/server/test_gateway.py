"""The ASGI dispatch: public paths need no credential, everything else is authenticated first,
and a bug in a handler is a bare 500 that shows nothing of it."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from rolegate.server.asgi import Request, Response
from rolegate.authn.principal import Principal
from rolegate.server.gateway import Gateway, health
from rolegate.api.routes import Route


class AcceptAnyone:
    async def authenticate(self, request: Request) -> Principal:
        return Principal(issuer="test", subject="s")


async def failing(request: Request, route: Route, who: Principal) -> Response:
    raise RuntimeError("database password is hunter2")


def client_for_app(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test")


async def test_a_bug_in_a_handler_is_a_500_without_details(caplog):
    gateway = Gateway(authenticator=AcceptAnyone(), handlers={"models.list": failing},  # type: ignore[arg-type]
                      public={}, on_startup=[], on_shutdown=[])
    async with client_for_app(gateway) as client:
        with caplog.at_level(logging.ERROR, logger="rolegate.gateway"):
            response = await client.get("/v1/models")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] in caplog.text


async def test_public_paths_answer_without_authentication():
    class RefuseEveryone:
        async def authenticate(self, request: Request) -> Principal:
            raise AssertionError("public paths must not be authenticated")

    gateway = Gateway(authenticator=RefuseEveryone(), handlers={},  # type: ignore[arg-type]
                      public={"/health/live": health(), "/health/ready": health(lambda: False)},
                      on_startup=[], on_shutdown=[])
    async with client_for_app(gateway) as client:
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (503, {"status": "starting"})


async def test_every_response_has_a_distinct_request_id():
    gateway = Gateway(authenticator=AcceptAnyone(), handlers={},  # type: ignore[arg-type]
                      public={"/health/live": health()}, on_startup=[], on_shutdown=[])
    async with client_for_app(gateway) as client:
        ids = {(await client.get("/health/live")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5
