"""A token endpoint on loopback for the tests of rolegate's credentials to upstreams: the
client credentials grant (RFC 6749 §4.4) and token exchange (RFC 8693 §2.1), each form checked
as the RFC requires, every request kept for the test to read."""

from __future__ import annotations

import urllib.parse
from typing import Any

import orjson

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"


class TokenEndpoint:
    """An ASGI token endpoint for client `rolegate` (secret `s3cret`)."""

    def __init__(self, expires_in: int = 600) -> None:
        self.forms: list[dict[str, str]] = []
        self.expires_in = expires_in

    def grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if (form.get("client_id"), form.get("client_secret")) != ("rolegate", "s3cret"):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") == "client_credentials":
            return 200, {"access_token": f"own-{len(self.forms)}", "token_type": "Bearer",
                         "expires_in": self.expires_in}
        if form.get("grant_type") != EXCHANGE:
            return 400, {"error": "unsupported_grant_type"}
        if not form.get("subject_token") or form.get("subject_token_type") != ACCESS_TOKEN:
            return 400, {"error": "invalid_request"}  # RFC 8693 §2.1: both REQUIRED
        return 200, {"access_token": f"acting-{len(self.forms)}", "token_type": "Bearer",
                     "issued_token_type": ACCESS_TOKEN, "expires_in": self.expires_in}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        form = dict(urllib.parse.parse_qsl(body.decode()))
        self.forms.append(form)
        status, answer = self.grant(form)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": orjson.dumps(answer)})
