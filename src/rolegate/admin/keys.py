"""`KeyAdmin`: `/admin/keys` (list, create) and `/admin/keys/{id}` (get, update, revoke).

The front door has authorized route group `admin` before any handler runs. The plaintext of a
key appears only in the response that creates it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rolegate.admin.schemas import (
    KeyCreate, KeyUpdate, has_control_character, parse_body, read_key_query,
)
from rolegate.api.routes import Route
from rolegate.audit.log import AuditLog
from rolegate.authn.principal import Principal
from rolegate.errors import NotFound
from rolegate.keys.records import ApiKey
from rolegate.keys.store import KeyStore
from rolegate.server.asgi import Request, Response, json_response

MAX_BODY = 64 * 1024
MAX_KEY_ID = 32  # api_keys.id is String(32)
DAY = 86400.0


class KeyAdmin:
    def __init__(self, store: KeyStore | None, clock: Callable[[], float],
                 audit: AuditLog | None = None) -> None:
        self._store = store
        self._clock = clock
        self._audit = audit

    async def list_keys(self, request: Request, route: Route, who: Principal) -> Response:
        store = self._enabled()
        query = read_key_query(request.query_string)
        keys = await store.list(owner=query.owner, include_revoked=query.include_revoked == "true")
        return json_response({"object": "list", "data": [key.public_view() for key in keys]})

    async def create(self, request: Request, route: Route, who: Principal) -> Response:
        store = self._enabled()
        spec = parse_body(KeyCreate, await request.body(MAX_BODY))
        now = self._clock()
        expires_at = spec.expires_at.timestamp() if spec.expires_at is not None else None
        if spec.expires_in_days is not None:
            expires_at = now + spec.expires_in_days * DAY
        plaintext, record = await store.create(
            name=spec.name, owner=spec.owner, now=now, roles=tuple(spec.roles),
            scopes=tuple(spec.scopes), models=None if spec.models is None else tuple(spec.models),
            limits=None if spec.limits is None else spec.limits.config(), expires_at=expires_at)
        await self._audited("key.create", who, record)
        return json_response({**record.public_view(), "key": plaintext}, status=201)

    async def get(self, request: Request, route: Route, who: Principal) -> Response:
        store = self._enabled()
        return json_response(_found(await store.get(_key_id(route)), route).public_view())

    async def update(self, request: Request, route: Route, who: Principal) -> Response:
        store = self._enabled()
        spec = parse_body(KeyUpdate, await request.body(MAX_BODY))
        changes = spec.changes()
        _found(await store.get(_key_id(route)), route)
        updated = _found(await store.update(_key_id(route), changes), route)
        await self._audited("key.update", who, updated, changed=sorted(changes))
        return json_response(updated.public_view())

    async def revoke(self, request: Request, route: Route, who: Principal) -> Response:
        store = self._enabled()
        revoked = _found(await store.revoke(_key_id(route), now=self._clock()), route)
        await self._audited("key.revoke", who, revoked)
        return json_response(revoked.public_view())

    async def _audited(self, kind: str, who: Principal, key: ApiKey,
                       changed: list[str] | None = None) -> None:
        """Write the change to the audit log before answering: a response means it is there."""
        if self._audit is None:
            return
        data: dict[str, Any] = {"key": key.public_view()}
        if changed is not None:
            data["changed"] = changed
        await self._audit.commit(kind, {"issuer": who.issuer, "subject": who.subject}, data)

    def _enabled(self) -> KeyStore:
        if self._store is None:
            raise NotFound("Virtual API keys are not enabled on this gateway (keys.enabled).",
                           code="keys_disabled")
        return self._store


def _key_id(route: Route) -> str:
    """The id the path names; one no key can have (longer than the column, or with a control
    character, which PostgreSQL would refuse in the query) is not looked up at all."""
    assert route.resource is not None
    if len(route.resource) > MAX_KEY_ID or has_control_character(route.resource):
        raise NotFound(f"No API key has the id {route.resource!r}.", code="key_not_found")
    return route.resource


def _found(key: ApiKey | None, route: Route) -> ApiKey:
    if key is None:
        raise NotFound(f"No API key has the id {route.resource!r}.", code="key_not_found")
    return key
