"""`SessionCookies`: the console's browser session, a signed cookie, and its CSRF check.

The cookie holds the principal (issuer, subject, roles, scopes, groups, tenant), a CSRF token and
two times: when the session began (absolute expiry) and when it was last used (idle expiry). It is
HMAC-SHA256 signed with the console's session secret; it is `HttpOnly`, `SameSite=Lax`, scoped to
the console's path and `Secure` unless the console is served over plain HTTP on loopback.

A session is only ever created by a completed sign-in (`signin.py`), with a fresh CSRF token, so
a cookie planted before sign-in is never promoted (no session fixation). Every POST authenticated
by the cookie must carry the session's CSRF token in its `csrf` form field (synchronizer token),
checked here before any handler runs.

>>> cookies = SessionCookies(secret, prefix="/console", is_secure=True, clock=time.time,
...                          idle=1800, absolute=28800)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs

from rolegate.authn.principal import Principal
from rolegate.errors import PermissionDenied
from rolegate.server.asgi import Request, Response

SESSION_COOKIE = "rolegate_console"
# On every response under the console's path, pages and refusals alike: script and style only
# from our own files (no inline script, so markup that slipped into a page could not run), no
# framing (clickjacking), forms only to ourselves, nothing from elsewhere, nothing cached.
SECURITY_HEADERS = (
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; "
     b"img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
MAX_FORM = 64 * 1024
FORM_TYPE = b"application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Session:
    issuer: str
    subject: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    groups: tuple[str, ...]
    tenant: str | None
    csrf: str
    began: float
    seen: float

    def principal(self) -> Principal:
        return Principal(issuer=self.issuer, subject=self.subject, tenant=self.tenant,
                         roles=frozenset(self.roles), scopes=frozenset(self.scopes),
                         groups=frozenset(self.groups))


class Signer:
    """Signs and checks small JSON documents (`payload.signature`, both base64url)."""

    def __init__(self, secret: bytes, purpose: str) -> None:
        self._key = hmac.new(secret, purpose.encode(), hashlib.sha256).digest()

    def sign(self, document: dict[str, Any]) -> str:
        payload = _b64(json.dumps(document, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload)}"

    def unsign(self, value: str) -> dict[str, Any] | None:
        payload, _, mac = value.partition(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


class SessionCookies:
    """The console's `Sessions` (see `server/gateway.py`)."""

    def __init__(self, secret: bytes, *, prefix: str, is_secure: bool,
                 clock: Callable[[], float], idle: int, absolute: int) -> None:
        self.prefix = prefix
        self.is_secure = is_secure
        self._signer = Signer(secret, "session")
        self._clock = clock
        self._idle = idle
        self._absolute = absolute

    def begin(self, who: Principal) -> str:
        """The Set-Cookie value of a new session for `who`, just signed in."""
        now = self._clock()
        session = Session(who.issuer, who.subject, tuple(sorted(who.roles)),
                          tuple(sorted(who.scopes)), tuple(sorted(who.groups)), who.tenant,
                          secrets.token_urlsafe(24), now, now)
        return self._cookie(session)

    def end(self) -> str:
        """The Set-Cookie value that removes the session."""
        return self.cookie(SESSION_COOKIE, "", max_age=0)

    def current(self, request: Request) -> Session | None:
        """The request's live session: signed by us, neither idle nor too old."""
        value = read_cookie(request, SESSION_COOKIE)
        document = self._signer.unsign(value) if value else None
        if document is None:
            return None
        try:
            session = Session(**document)
        except TypeError:
            return None
        now = self._clock()
        if now - session.began >= self._absolute or now - session.seen >= self._idle:
            return None
        return session

    async def authenticate(self, request: Request) -> Principal | None:
        session = self.current(request)
        if session is None:
            return None
        request.state["session"] = session
        if request.method == "POST":
            form = await read_form(request)
            sent = form.get("csrf", "")
            if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                raise PermissionDenied("The form's CSRF token is missing or wrong; reload the "
                                       "page and try again.", code="csrf_failed")
        return session.principal()

    def sign_in(self, request: Request) -> Response:
        return redirect(f"{self.prefix}/login")

    def protect(self, response: Response) -> None:
        """Adds the security headers `response` does not already have."""
        present = {name for name, _ in response.headers}
        response.headers += [header for header in SECURITY_HEADERS if header[0] not in present]

    def refresh(self, request: Request, response: Response) -> None:
        session: Session = request.state["session"]
        if any(name == b"set-cookie" for name, _ in response.headers):
            return  # the handler set the cookie itself (sign-out)
        renewed = Session(**{**asdict(session), "seen": self._clock()})
        response.headers.append((b"set-cookie", self._cookie(renewed).encode()))

    def cookie(self, name: str, value: str, *, max_age: int, path: str | None = None) -> str:
        secure = "; Secure" if self.is_secure else ""
        return (f"{name}={value}; Path={path or self.prefix}; Max-Age={max_age}; HttpOnly; "
                f"SameSite=Lax{secure}")

    def _cookie(self, session: Session) -> str:
        return self.cookie(SESSION_COOKIE, self._signer.sign(asdict(session)),
                           max_age=self._absolute)


async def read_form(request: Request) -> dict[str, str]:
    """The request's urlencoded form (read once, kept in `request.state`)."""
    if "form" not in request.state:
        raw = await request.body(MAX_FORM)
        fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        request.state["form"] = {name: values[0] for name, values in fields.items()}
    form: dict[str, str] = request.state["form"]
    return form


def read_cookie(request: Request, name: str) -> str | None:
    raw = request.headers.get(b"cookie", b"").decode("latin-1")
    for part in raw.replace(",", ";").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def redirect(location: str, *cookies: str) -> Response:
    headers = [(b"location", location.encode())]
    headers += [(b"set-cookie", cookie.encode()) for cookie in cookies]
    return Response(status=303, headers=headers, content_type=b"text/plain; charset=utf-8")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
