"""`KeyStore`: API key records in the database (create, find by hash, list, update, revoke)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from rolegate.config.model import LimitConfig
from rolegate.keys.material import KeyHasher, hint, new_key, new_key_id
from rolegate.keys.records import ApiKey
from rolegate.storage.tables import api_keys

EDITABLE = ("name", "owner", "roles", "scopes", "models", "limits", "expires_at")
NOT_NULL = ("name", "owner", "roles", "scopes")


class KeyStore:
    """>>> plaintext, record = await store.create(name="ci", owner="team-a", now=clock())"""

    def __init__(self, engine: AsyncEngine, hasher: KeyHasher) -> None:
        self._engine = engine
        self.hasher = hasher

    async def create(self, *, name: str, owner: str, now: float, roles: tuple[str, ...] = (),
                     scopes: tuple[str, ...] = (), models: tuple[str, ...] | None = None,
                     limits: LimitConfig | None = None,
                     expires_at: float | None = None) -> tuple[str, ApiKey]:
        """A new key: its plaintext (to show once) and its stored record."""
        plaintext = new_key()
        record = ApiKey(id=new_key_id(), key_hash=self.hasher.digest(plaintext),
                        hint=hint(plaintext), name=name, owner=owner, roles=roles,
                        scopes=scopes, models=models, limits=limits, expires_at=expires_at,
                        created_at=now)
        async with self._engine.begin() as connection:
            await connection.execute(insert(api_keys).values(**_row(record)))
        return plaintext, record

    async def find(self, plaintext: str) -> ApiKey | None:
        """The record whose hash is the hash of `plaintext`, if any."""
        digest = self.hasher.digest(plaintext)
        async with self._engine.connect() as connection:
            row = (await connection.execute(
                select(api_keys).where(api_keys.c.key_hash == digest))).mappings().first()
        if row is None or not self.hasher.matches(plaintext, row["key_hash"]):
            return None
        return _record(row)

    async def get(self, key_id: str) -> ApiKey | None:
        async with self._engine.connect() as connection:
            row = (await connection.execute(
                select(api_keys).where(api_keys.c.id == key_id))).mappings().first()
        return None if row is None else _record(row)

    async def list(self, *, owner: str | None = None,
                   include_revoked: bool = False) -> list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if owner is not None:
            query = query.where(api_keys.c.owner == owner)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [_record(row) for row in rows]

    async def update(self, key_id: str, changes: Mapping[str, Any]) -> ApiKey | None:
        """Change the `EDITABLE` fields in `changes`; ValueError for None in a field that
        cannot be empty (the admin API refuses it first, with 400)."""
        cleared = [name for name in NOT_NULL if name in changes and changes[name] is None]
        if cleared:
            raise ValueError(f"{', '.join(cleared)} cannot be null")
        values = _columns({name: changes[name] for name in EDITABLE if name in changes})
        if values:
            async with self._engine.begin() as connection:
                await connection.execute(
                    update(api_keys).where(api_keys.c.id == key_id).values(**values))
        return await self.get(key_id)

    async def revoke(self, key_id: str, *, now: float) -> ApiKey | None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(api_keys).where(api_keys.c.id == key_id,
                                       api_keys.c.revoked_at.is_(None)).values(revoked_at=now))
        return await self.get(key_id)

    async def mark_used(self, last_used: Mapping[str, float]) -> None:
        """Write many keys' last-used times in one transaction."""
        if not last_used:
            return
        async with self._engine.begin() as connection:
            for key_id, when in last_used.items():
                await connection.execute(
                    update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=when))


def _columns(values: Mapping[str, Any]) -> dict[str, Any]:
    row = dict(values)
    for name in ("roles", "scopes", "models"):
        if name in row and row[name] is not None:
            row[name] = list(row[name])
    if "limits" in row and row["limits"] is not None:
        row["limits"] = row["limits"].model_dump(exclude_none=True, exclude_defaults=True)
    return row


def _row(record: ApiKey) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in ApiKey.__slots__}
    return _columns(row)


def _record(row: RowMapping) -> ApiKey:
    # Read leniently: a row written before the admin API refused `null` for a list (JSON null
    # in a NOT NULL column) is read as an empty list, so one bad row cannot break every listing.
    models = row["models"]
    limits = row["limits"]
    return ApiKey(
        id=row["id"], key_hash=row["key_hash"], hint=row["hint"], name=row["name"],
        owner=row["owner"], roles=tuple(row["roles"] or ()), scopes=tuple(row["scopes"] or ()),
        models=None if models is None else tuple(models),
        limits=None if limits is None else LimitConfig.model_validate(limits),
        expires_at=row["expires_at"], created_at=row["created_at"],
        last_used_at=row["last_used_at"], revoked_at=row["revoked_at"])
