"""`Authenticator`: finds the credential in a request and turns it into a `Principal`."""

from __future__ import annotations

from rolegate.asgi import Request
from rolegate.authn.extract import bearer_token, has_query_token
from rolegate.authn.principal import Principal
from rolegate.authn.verifier import JwtVerifier
from rolegate.errors import Unauthenticated


class Authenticator:
    def __init__(self, verifier: JwtVerifier, *, max_header_bytes: int) -> None:
        self._verifier = verifier
        self._max_header_bytes = max_header_bytes

    async def authenticate(self, request: Request) -> Principal:
        if has_query_token(request.query_string):
            raise Unauthenticated("Credentials in the URL are refused; send them in the "
                                  "Authorization header.", code="token_in_query")
        token = bearer_token(request.headers.get(b"authorization"),
                             max_bytes=self._max_header_bytes)
        return await self._verifier.verify(token)
