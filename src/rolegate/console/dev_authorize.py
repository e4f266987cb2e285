"""`DevAuthorizer`: the development issuer's authorize and token steps, for the console only.

`/dev/authorize` shows a form (subject and roles, typed in: there are no passwords, this is a
development issuer) and sends the browser back to the console's callback with a one-time code;
`exchange` turns that code into an ID token signed by the development issuer. Only the
console's own client id and callback are accepted, the PKCE verifier must match the challenge
(S256) and a code is good for a minute. It exists only while the development issuer is on.

The code is the grant itself, signed with the console's session secret, so any worker of
`serve --workers N` can redeem it; each worker redeems a code once (a copy replayed at another
worker within its minute still needs the PKCE verifier, which only the browser that started
the sign-in holds, in its signed cookie).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from rolegate.authn.dev_issuer import DevIssuer
from rolegate.console.pages import Renderer
from rolegate.console.session import Signer, read_form, redirect
from rolegate.console.signin import pkce_challenge
from rolegate.errors import InvalidRequest, Unauthenticated
from rolegate.server.asgi import Request, Response

CODE_TTL = 60.0
FIELDS = ("client_id", "redirect_uri", "state", "nonce", "code_challenge")


class DevAuthorizer:
    def __init__(self, issuer: DevIssuer, renderer: Renderer, *, client_id: str,
                 redirect_uri: str, default_roles: tuple[str, ...], secret: bytes,
                 clock: Callable[[], float]) -> None:
        self._issuer = issuer
        self._renderer = renderer
        self._client_id = client_id
        self._redirect_uri = redirect_uri
        self._default_roles = default_roles
        self._clock = clock
        self._signer = Signer(secret, "dev-authorization-code")
        self._redeemed: dict[str, float] = {}  # code -> when it expires

    async def authorize(self, request: Request) -> Response:
        if request.method == "GET":
            params = {name: request.query_param(name) or "" for name in FIELDS}
            self._check(params, request.query_param("code_challenge_method"))
            return self._renderer.page("dev_authorize.html", params=params,
                                       roles=" ".join(self._default_roles))
        if request.method != "POST":
            raise InvalidRequest("Use GET or POST.", code="method_not_allowed")
        form = await read_form(request)
        params = {name: form.get(name, "") for name in FIELDS}
        self._check(params, "S256")
        code = self._signer.sign({
            "subject": form.get("subject", "").strip() or "dev-user",
            "roles": form.get("roles", "").split(), "nonce": params["nonce"],
            "challenge": params["code_challenge"], "expires": self._clock() + CODE_TTL,
            "id": secrets.token_urlsafe(12)})
        query = urlencode({"code": code, "state": params["state"]})
        return redirect(f"{self._redirect_uri}?{query}")

    async def exchange(self, code: str, code_verifier: str, redirect_uri: str) -> str:
        now = self._clock()
        self._redeemed = {used: until for used, until in self._redeemed.items() if until > now}
        grant = self._signer.unsign(code)
        if grant is None or code in self._redeemed or not _is_grant(grant) \
                or grant["expires"] <= now:
            raise Unauthenticated("The authorization code is unknown, used or expired.",
                                  code="invalid_grant")
        self._redeemed[code] = grant["expires"]
        if not hmac.compare_digest(pkce_challenge(code_verifier), grant["challenge"]):
            raise Unauthenticated("The PKCE verifier does not match the code's challenge.",
                                  code="invalid_grant")
        return self._issuer.mint(subject=grant["subject"], roles=tuple(grant["roles"]),
                                 now=now, extra={"aud": self._client_id,
                                                 "nonce": grant["nonce"]})

    def _check(self, params: dict[str, str], method: str | None) -> None:
        if params["client_id"] != self._client_id or params["redirect_uri"] != self._redirect_uri:
            raise InvalidRequest("Unknown client or redirect URI.", code="invalid_client")
        if method != "S256" or not params["code_challenge"] or not params["state"]:
            raise InvalidRequest("PKCE (S256), state and nonce are required.",
                                 code="invalid_request")


def _is_grant(grant: dict[str, Any]) -> bool:
    """A document this class signed has these fields; checked so a change of shape between
    versions is refused rather than a KeyError."""
    return (isinstance(grant.get("subject"), str) and isinstance(grant.get("roles"), list)
            and isinstance(grant.get("nonce"), str) and isinstance(grant.get("challenge"), str)
            and isinstance(grant.get("expires"), (int, float)))
