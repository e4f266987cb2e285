"""`OidcSignIn`: the console's sign-in, OpenID Connect's authorization code flow with PKCE.

`start` (`/console/login`) makes a fresh `state`, `nonce` and PKCE verifier (RFC 7636, S256),
keeps them in a short-lived signed cookie scoped to the callback path, and sends the browser to
the issuer's authorize endpoint. `finish` (`/console/callback`) refuses a callback whose `state`
is not that cookie's (OIDC Core §3.1.2.7; RFC 6749 §10.12), exchanges the code with the verifier,
verifies the ID token with the gateway's own key-set machinery (`JwtVerifier`, audience = the
console's client id), refuses it unless its `nonce` is the cookie's (OIDC Core §3.1.3.7), and
only then begins a new session. After sign-in the browser always goes to the console's home:
no redirect target is ever taken from the request (no open redirect).

>>> sign_in = OidcSignIn(cookies, verifier, exchange, authorization_url=..., client_id=...,
...                      redirect_uri="https://gw.example/console/callback", clock=time.time)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlencode

import aiohttp

from rolegate.authn.verifier import JwtVerifier
from rolegate.console.session import SessionCookies, Signer, read_cookie, redirect
from rolegate.errors import Unauthenticated
from rolegate.providers.http import HttpClient
from rolegate.server.asgi import Request, Response

PENDING_COOKIE = "rolegate_sign_in"
PENDING_TTL = 600


class CodeExchange(Protocol):
    async def exchange(self, code: str, code_verifier: str, redirect_uri: str) -> str:
        """The ID token the issuer returns for `code`; `Unauthenticated` if it refuses."""


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 §4.2, S256."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class OidcSignIn:
    def __init__(self, cookies: SessionCookies, verifier: JwtVerifier, exchange: CodeExchange,
                 *, authorization_url: str, client_id: str, redirect_uri: str,
                 secret: bytes, clock: Callable[[], float]) -> None:
        self._cookies = cookies
        self._verifier = verifier
        self._exchange = exchange
        self._authorization_url = authorization_url
        self._client_id = client_id
        self._redirect_uri = redirect_uri
        self._signer = Signer(secret, "sign-in")
        self._clock = clock
        self._callback_path = f"{cookies.prefix}/callback"

    async def start(self, request: Request) -> Response:
        pending = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
                   "verifier": secrets.token_urlsafe(48), "at": self._clock()}
        query = urlencode({
            "response_type": "code", "client_id": self._client_id,
            "redirect_uri": self._redirect_uri, "scope": "openid profile",
            "state": pending["state"], "nonce": pending["nonce"],
            "code_challenge": pkce_challenge(str(pending["verifier"])),
            "code_challenge_method": "S256"})
        cookie = self._cookies.cookie(PENDING_COOKIE, self._signer.sign(pending),
                                      max_age=PENDING_TTL, path=self._callback_path)
        separator = "&" if "?" in self._authorization_url else "?"
        return redirect(f"{self._authorization_url}{separator}{query}", cookie)

    async def finish(self, request: Request) -> Response:
        pending = self._pending(request)
        if request.query_param("error") is not None:
            raise Unauthenticated("The issuer refused the sign-in.", code="sign_in_refused")
        state = request.query_param("state") or ""
        if not hmac.compare_digest(state.encode(), str(pending.get("state")).encode()):
            raise Unauthenticated("The sign-in's state does not match this browser's; start "
                                  "again.", code="invalid_state")
        code = request.query_param("code")
        if not code:
            raise Unauthenticated("The callback carries no authorization code.",
                                  code="missing_code")
        id_token = await self._exchange.exchange(code, str(pending.get("verifier")),
                                                 self._redirect_uri)
        who = await self._verifier.verify(id_token)
        nonce = who.claims.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(
                nonce.encode(), str(pending.get("nonce")).encode()):
            raise Unauthenticated("The ID token's nonce is not this sign-in's.",
                                  code="invalid_nonce")
        done = self._cookies.cookie(PENDING_COOKIE, "", max_age=0, path=self._callback_path)
        return redirect(self._cookies.prefix, self._cookies.begin(who), done)

    def _pending(self, request: Request) -> dict[str, object]:
        value = read_cookie(request, PENDING_COOKIE)
        pending = self._signer.unsign(value) if value else None
        at = pending.get("at") if pending is not None else None
        if pending is None or not isinstance(at, (int, float)) \
                or self._clock() - at >= PENDING_TTL:
            raise Unauthenticated("No sign-in is under way in this browser (or it took too "
                                  "long); start again.", code="sign_in_expired")
        return pending


class TokenEndpoint:
    """Exchanges a code at an issuer's token endpoint (RFC 6749 §4.1.3, client_secret_post)."""

    def __init__(self, http: HttpClient, url: str, client_id: str,
                 client_secret: str | None) -> None:
        self._http = http
        self._url = url
        self._client_id = client_id
        self._client_secret = client_secret

    async def exchange(self, code: str, code_verifier: str, redirect_uri: str) -> str:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "client_id": self._client_id, "code_verifier": code_verifier}
        if self._client_secret is not None:
            form["client_secret"] = self._client_secret
        try:
            async with self._http.session.post(
                    self._url, data=form, timeout=aiohttp.ClientTimeout(total=10),
                    **self._http.egress_options(self._url)) as reply:
                document = await reply.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise Unauthenticated("The issuer's token endpoint could not be reached.",
                                  code="token_endpoint_failed") from None
        token = document.get("id_token") if isinstance(document, dict) else None
        if not isinstance(token, str):
            raise Unauthenticated("The issuer returned no ID token.", code="no_id_token")
        return token
