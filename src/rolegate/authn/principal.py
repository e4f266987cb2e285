"""`Principal`: the caller, as every part of the gateway past authentication sees it.

A JWT and a virtual API key both resolve to this type, so one policy governs both.
No code past authentication sees the raw token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

EMPTY: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    >>> Principal(issuer="entra", subject="oid-1", roles=frozenset({"Gateway.User"}))
    """

    issuer: str
    subject: str
    client_id: str | None = None
    tenant: str | None = None
    roles: frozenset[str] = EMPTY
    scopes: frozenset[str] = EMPTY
    groups: frozenset[str] = EMPTY
    end_user: str | None = None
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # The values of the claim paths the limits and usage dimensions read (`Settings.claim_paths`),
    # taken from the token once: (path, sorted distinct values), in configuration order.
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    key_id: str | None = None
    # The token's `aud` values (RFC 8707: an MCP server accepts only its own resource's).
    audiences: frozenset[str] = EMPTY
    # Model globs the credential itself is limited to (an API key's `models`), on top of policy.
    allowed_models: tuple[str, ...] | None = None

    def attribute(self, path: str) -> tuple[str, ...]:
        """The values of claim `path` in the caller's token (empty when absent or unread)."""
        for name, values in self.attributes:
            if name == path:
                return values
        return ()

    def describe(self) -> str:
        """A short, secret-free summary for messages: what this caller holds."""
        return (f"roles={sorted(self.roles)}, scopes={sorted(self.scopes)}, "
                f"groups={sorted(self.groups)}")
