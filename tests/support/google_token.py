"""Google's OAuth token endpoint for a service account, served locally, and a service-account
key file pointing at it: what a Vertex AI deployment signs in with in tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.servers import LocalServer


class TokenEndpoint(LocalServer):
    """Google's OAuth token endpoint for a service account (RFC 7523 JWT bearer grant): the
    assertion is verified with the account's public key; each grant is counted."""

    def __init__(self, expires_in: int = 3600) -> None:
        super().__init__()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.expires_in = expires_in
        self.granted: list[dict[str, Any]] = []
        self.app.router.add_post("/token", self._token)

    def service_account(self, directory: Path) -> Path:
        """A service-account key file whose token URI is this endpoint."""
        account = directory / "service-account.json"
        account.write_text(json.dumps({
            "type": "service_account", "project_id": "proj", "private_key_id": "k1",
            "private_key": self.key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()).decode(),
            "client_email": "gateway@proj.iam.gserviceaccount.com", "client_id": "1",
            "token_uri": f"{self.url}/token"}))
        return account

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        # google-auth names Google's token endpoint as the audience wherever it posts.
        claims = jwt.decode(str(form["assertion"]), self.key.public_key(), algorithms=["RS256"],
                            audience="https://oauth2.googleapis.com/token")
        self.granted.append(claims)
        return web.json_response({"access_token": f"ya29.token-{len(self.granted)}",
                                  "expires_in": self.expires_in, "token_type": "Bearer"})
