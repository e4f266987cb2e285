"""`Authenticator`: finds the credential in a request and turns it into a `Principal`.

`Authorization: Bearer <token>` carries a JWT or a virtual API key (`rg-...`). Clients built for
Azure OpenAI, Anthropic and Gemini send their credential as `api-key:`, `x-api-key:` or
`x-goog-api-key:` instead (never `?key=`: credentials in URLs are refused, below)
(`AzureOpenAI(api_key=token)`); that value is read the same way: a virtual API key when it has
the key's form, otherwise a JWT, verified exactly as a bearer token is (same issuers, audiences
and policy), so the header is a different envelope, never a weaker check. A request carrying
two different credentials is refused (`extract.credential`).
"""

from __future__ import annotations

from collections.abc import Mapping

from rolegate.authn.apikeys import ApiKeyVerifier
from rolegate.authn.extract import credential, has_query_token
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
        token = credential(headers, max_bytes=self._max_header_bytes)
        if is_api_key(token):
            return await self._verify_key(token)
        return await self._verifier.verify(token)

    async def _verify_key(self, key: str) -> Principal:
        if self._keys is None:
            raise Unauthenticated("API keys are not accepted by this gateway.",
                                  code="invalid_api_key")
        return await self._keys.verify(key)
