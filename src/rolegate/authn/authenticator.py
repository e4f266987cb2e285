"""`Authenticator`: finds the credential in a request and turns it into a `Principal`.

`Authorization: Bearer <token>` carries a JWT or a virtual API key (`rg-...`); clients built for
Azure OpenAI and Anthropic send a key as `api-key:` or `x-api-key:` instead, which is read only
when virtual API keys are enabled, and then only for them.
"""

from __future__ import annotations

from collections.abc import Mapping

from rolegate.authn.apikeys import ApiKeyVerifier
from rolegate.authn.extract import api_key_header, bearer_token, has_query_token
from rolegate.authn.principal import Principal
from rolegate.authn.verifier import JwtVerifier
from rolegate.errors import Unauthenticated
from rolegate.keys.material import is_api_key


class Authenticator:
    def __init__(self, verifier: JwtVerifier, *, max_header_bytes: int,
                 keys: ApiKeyVerifier | None = None) -> None:
        self._verifier = verifier
        self._keys = keys
        self._max_header_bytes = max_header_bytes

    async def authenticate(self, headers: Mapping[bytes, bytes],
                           query_string: bytes) -> Principal:
        """The caller of a request with these headers and query string, or `Unauthenticated`."""
        if has_query_token(query_string):
            raise Unauthenticated("Credentials in the URL are refused; send them in the "
                                  "Authorization header.", code="token_in_query")
        authorization = headers.get(b"authorization")
        if authorization is None and self._keys is not None:
            key = api_key_header(headers, max_bytes=self._max_header_bytes)
            if key is not None:
                return await self._verify_key(key)
        token = bearer_token(authorization, max_bytes=self._max_header_bytes)
        if is_api_key(token):
            return await self._verify_key(token)
        return await self._verifier.verify(token)

    async def _verify_key(self, key: str) -> Principal:
        if self._keys is None or not is_api_key(key):
            raise Unauthenticated("API keys are not accepted by this gateway.",
                                  code="invalid_api_key")
        return await self._keys.verify(key)
