"""`ConsolePages`: the console's pages, and `Renderer`, which draws them with Jinja2.

The front door has authenticated the caller (session cookie or bearer credential), checked a
cookie-authenticated form's CSRF token, and authorized the route's group before any handler
here runs: `console` to look, `admin` to change. Pages are rendered with autoescaping on, so
names and claims shown are text, never markup; every page forbids framing (and the front
door adds the same headers to any other response under the console's path:
`SessionCookies.protect`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from rolegate.api.routes import Route
from rolegate.audit.log import AuditLog
from rolegate.authn.principal import Principal
from rolegate.console.session import (
    SECURITY_HEADERS, Session, SessionCookies, read_form, redirect,
)
from rolegate.errors import InvalidRequest, NotFound
from rolegate.keys.records import ApiKey
from rolegate.keys.store import KeyStore
from rolegate.server.asgi import Request, Response

HTML = b"text/html; charset=utf-8"
MAX_NAME = 200

MAX_CLAIMS = 16 * 1024


@dataclass(frozen=True, slots=True)
class Question:
    """What the Explain page asks about: one of a credential (a token or an API key), an API
    key's id or a set of claims; a route and, optionally, a model."""

    route: str
    model: str | None
    credential: str | None = None
    key_id: str | None = None
    claims: dict[str, Any] | None = None

    @classmethod
    def read(cls, form: dict[str, str]) -> Question:
        credential, key_id, claims = (form.get(name, "").strip()
                                      for name in ("credential", "key_id", "claims"))
        if sum(1 for given in (credential, key_id, claims) if given) != 1:
            raise InvalidRequest("Give one of a token or API key, an API key id and a set of "
                                 "claims to explain.", code="invalid_body")
        route = form.get("route", "").strip() or "/v1/chat/completions"
        model = form.get("model", "").strip() or None
        if not claims:
            return cls(route, model, credential=credential or None, key_id=key_id or None)
        if len(claims) > MAX_CLAIMS:
            raise InvalidRequest("The claims are too long (at most 16 KiB).",
                                 code="invalid_body", param="claims")
        try:
            document = json.loads(claims)
        except ValueError as exc:
            raise InvalidRequest(f"The claims are not JSON: {exc}", code="invalid_body",
                                 param="claims") from None
        if not isinstance(document, dict):
            raise InvalidRequest("The claims must be a JSON object.", code="invalid_body",
                                 param="claims")
        return cls(route, model, claims=document)


Explainer = Callable[[Question], Awaitable[dict[str, Any]]]
# A key's changes as the admin API's PATCH body, validated by it (`admin.schemas.key_changes`).
KeyChanges = Callable[[dict[str, Any]], dict[str, Any]]
CanChange = Callable[[Principal], bool]


class Renderer:
    """Renders a template of `console/templates/` into an HTML response."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._env = Environment(loader=PackageLoader("rolegate.console"),
                                autoescape=select_autoescape(default=True))
        self._env.filters["utc"] = _utc

    def page(self, template: str, *, status: int = 200, **values: Any) -> Response:
        body = self._env.get_template(template).render(prefix=self.prefix, **values)
        return Response(status=status, body=body.encode(), content_type=HTML,
                        headers=list(SECURITY_HEADERS))


def _utc(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def static_file(name: str, content_type: bytes) -> Callable[[], Response]:
    """A public handler serving `console/static/<name>` (read once, at start-up)."""
    body = files("rolegate.console").joinpath(f"static/{name}").read_bytes()

    def serve() -> Response:
        return Response(body=body, content_type=content_type,
                        headers=[(b"cache-control", b"max-age=3600"),
                                 (b"x-content-type-options", b"nosniff")])
    return serve


class ConsolePages:
    def __init__(self, renderer: Renderer, cookies: SessionCookies | None, *,
                 keys: KeyStore | None, audit: AuditLog | None, explainer: Explainer,
                 can_change: CanChange, key_changes: KeyChanges, clock: Callable[[], float],
                 denials: Iterable[dict[str, Any]] = ()) -> None:
        self._renderer = renderer
        self._cookies = cookies
        self._keys = keys
        self._audit = audit
        self._explainer = explainer
        self._can_change = can_change
        self._key_changes = key_changes
        self._clock = clock
        self._denials = denials

    def _on(self, request: Request) -> SessionCookies:
        if self._cookies is None:  # the console is off: as if it did not exist
            raise NotFound(f"No route matches {request.path}.", code="unknown_route")
        return self._cookies

    def page(self, request: Request, who: Principal, template: str, **values: Any) -> Response:
        """`template` rendered for `who` (with the session's CSRF token for its forms)."""
        self._on(request)
        session: Session | None = request.state.get("session")
        return self._renderer.page(template, who=who, csrf=session.csrf if session else "",
                                   can_change=self._can_change(who), **values)

    def shown(self, template: str, live: Callable[[], dict[str, Any]] | None = None,
              **values: Any) -> Callable[[Request, Route, Principal], Awaitable[Response]]:
        """A handler showing `template` with `values` (fixed at start-up: the policy page) and
        what `live` returns when it is shown."""
        async def respond(request: Request, route: Route, who: Principal) -> Response:
            return self.page(request, who, template, **values, **(live() if live else {}))
        return respond

    async def keys(self, request: Request, route: Route, who: Principal,
                   created: tuple[str, ApiKey] | None = None) -> Response:
        listed = await self._keys.list(include_revoked=True) if self._keys is not None else None
        return self.page(request, who, "keys.html", page="keys", keys=listed, created=created)

    async def create_key(self, request: Request, route: Route, who: Principal) -> Response:
        store = self._store(request)
        form = await read_form(request)
        name, owner = form.get("name", "").strip(), form.get("owner", "").strip()
        if not name or not owner or len(name) > MAX_NAME or len(owner) > MAX_NAME:
            raise InvalidRequest("A key needs a name and an owner (at most 200 characters).",
                                 code="invalid_body")
        models = tuple(form.get("models", "").split())
        plaintext, record = await store.create(
            name=name, owner=owner, now=self._clock(), roles=tuple(form.get("roles", "").split()),
            models=models or None)
        await self._audited("key.create", who, record)
        return await self.keys(request, route, who, created=(plaintext, record))

    async def edit_key(self, request: Request, route: Route, who: Principal) -> Response:
        """A key's models and limits, as a form (for a viewer, read-only)."""
        key = await self._key(request, route)
        return self.page(request, who, "key_edit.html", page="keys", key=key,
                         limits=key.limits.model_dump() if key.limits else {})

    async def update_key(self, request: Request, route: Route, who: Principal) -> Response:
        """Changes a key's models and limits, validated as the admin API's PATCH is."""
        key = await self._key(request, route)
        changes = self._key_changes(key_update(await read_form(request)))
        updated = await self._store(request).update(key.id, changes)
        assert updated is not None  # found just above; keys are revoked, never deleted
        await self._audited("key.update", who, updated, changed=sorted(changes))
        return redirect(f"{self._renderer.prefix}/keys/{key.id}")

    async def _key(self, request: Request, route: Route) -> ApiKey:
        assert route.resource is not None
        key = await self._store(request).get(route.resource)
        if key is None:
            raise NotFound(f"No API key has the id {route.resource!r}.", code="key_not_found")
        return key

    async def revoke_key(self, request: Request, route: Route, who: Principal) -> Response:
        store = self._store(request)
        assert route.resource is not None
        revoked = await store.revoke(route.resource, now=self._clock())
        if revoked is None:
            raise NotFound(f"No API key has the id {route.resource!r}.", code="key_not_found")
        await self._audited("key.revoke", who, revoked)
        return redirect(f"{self._renderer.prefix}/keys")

    async def explain(self, request: Request, route: Route, who: Principal) -> Response:
        if request.method == "GET":
            return self.page(request, who, "explain.html", page="explain", form={}, report=None)
        self._on(request)
        form = await read_form(request)
        question = Question.read(form)
        report = await self._explainer(question)
        shown = {name: form.get(name, "") for name in ("route", "model", "key_id", "claims")}
        return self.page(request, who, "explain.html", page="explain", form=shown,
                         report=report)

    async def decisions(self, request: Request, route: Route, who: Principal) -> Response:
        """The recent 401s and 403s, newest first; `?code=` keeps those with that code."""
        code = request.query_param("code") or ""
        shown = [denial for denial in reversed(list(self._denials))
                 if not code or denial.get("code") == code]
        codes = sorted({str(denial.get("code")) for denial in self._denials})
        return self.page(request, who, "decisions.html", page="decisions", denials=shown,
                          code=code, codes=codes)

    async def sign_out(self, request: Request, route: Route, who: Principal) -> Response:
        cookies = self._on(request)
        response = self._renderer.page("signed_out.html")
        response.headers.append((b"set-cookie", cookies.end().encode()))
        return response

    def _store(self, request: Request) -> KeyStore:
        self._on(request)
        if self._keys is None:
            raise NotFound("Virtual API keys are not enabled on this gateway (keys.enabled).",
                           code="keys_disabled")
        return self._keys

    async def _audited(self, kind: str, who: Principal, key: ApiKey,
                       changed: list[str] | None = None) -> None:
        if self._audit is None:
            return
        data: dict[str, Any] = {"key": key.public_view(), "via": "console"}
        if changed is not None:
            data["changed"] = changed
        await self._audit.commit(kind, {"issuer": who.issuer, "subject": who.subject}, data)


LIMIT_FIELDS = {"rpm": int, "tpm": int, "daily_tokens": int, "monthly_budget_usd": float}


def key_update(form: dict[str, str]) -> dict[str, Any]:
    """The edit form as the admin API's PATCH body (models, limits), to be validated by it: the
    same bounds, the same 400s. Empty models: as the policy allows; no limit set: unlimited."""
    models = form.get("models", "").split()
    limits: dict[str, Any] = {}
    for name, kind in LIMIT_FIELDS.items():
        text = form.get(name, "").strip()
        if not text:
            continue
        try:
            limits[name] = kind(text)
        except ValueError:
            raise InvalidRequest(f"{name}: {text!r} is not a number.", code="invalid_body",
                                 param=name) from None
    if limits and form.get("per_end_user") == "on":
        limits["per_end_user"] = True
    return {"models": models or None, "limits": limits or None}
