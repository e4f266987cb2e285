"""`ApiKey`: one key's stored record (never its plaintext)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rolegate.config.model import LimitConfig


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    key_hash: str
    hint: str
    name: str
    owner: str
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    models: tuple[str, ...] | None = None
    limits: LimitConfig | None = None
    expires_at: float | None = None
    created_at: float = 0.0
    last_used_at: float | None = None
    revoked_at: float | None = None

    def is_expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def public_view(self) -> dict[str, Any]:
        """Everything about the key an administrator may see: never the hash."""
        return {
            "id": self.id, "hint": self.hint, "name": self.name, "owner": self.owner,
            "roles": list(self.roles), "scopes": list(self.scopes),
            "models": None if self.models is None else list(self.models),
            "limits": None if self.limits is None else
            self.limits.model_dump(exclude_none=True, exclude_defaults=True),
            "expires_at": self.expires_at, "created_at": self.created_at,
            "last_used_at": self.last_used_at, "revoked_at": self.revoked_at,
        }
