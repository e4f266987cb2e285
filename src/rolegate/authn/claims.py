"""Reading claims by dotted path, and the claim mapping each identity-provider preset implies.

A path is first tried as one literal key (namespaced claims such as
`https://example.com/roles` contain dots), then split on dots.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from rolegate.authn.principal import Principal
from rolegate.config.model import IssuerConfig

log = logging.getLogger("rolegate.authn")

MISSING = object()

# Where each preset finds each part of the identity. See docs/identity-providers.md.
PRESETS: dict[str, dict[str, tuple[str, ...]]] = {
    "entra": {"roles": ("roles",), "scopes": ("scp",), "groups": ("groups",),
              "client_id": ("azp", "appid"), "subject": ("oid", "sub"), "tenant": ("tid",)},
    "keycloak": {"roles": ("realm_access.roles",), "scopes": ("scope",), "groups": ("groups",),
                 "client_id": ("azp", "client_id"), "subject": ("sub",), "tenant": ()},
    "okta": {"roles": ("roles",), "scopes": ("scp",), "groups": ("groups",),
             "client_id": ("cid",), "subject": ("sub",), "tenant": ()},
    "auth0": {"roles": (), "scopes": ("scope", "permissions"), "groups": (),
              "client_id": ("azp", "client_id"), "subject": ("sub",), "tenant": ()},
    "generic": {"roles": ("roles",), "scopes": ("scope", "scp"), "groups": ("groups",),
                "client_id": ("client_id", "azp", "appid", "cid"), "subject": ("sub",),
                "tenant": ("tid",)},
}


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at `path` in `claims`, or `MISSING`.

    At each level the longest key that matches wins, so names containing dots
    (`resource_access.com.example.app.roles`) resolve as well as plain nesting.
    """
    if path in claims:
        return claims[path]
    return _walk(claims, path.split("."))


def _walk(value: Any, parts: list[str]) -> Any:
    if not parts:
        return value
    if not isinstance(value, Mapping):
        return MISSING
    for end in range(len(parts), 0, -1):
        key = ".".join(parts[:end])
        if key in value:
            found = _walk(value[key], parts[end:])
            if found is not MISSING:
                return found
    return MISSING


def claim_values(value: Any, *, split_spaces: bool) -> list[str]:
    """A claim as a list of strings: arrays keep their string items; a string is one value,
    or a space-delimited list when `split_spaces` (RFC 8693 `scope`)."""
    if isinstance(value, str):
        return value.split() if split_spaces else [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def attribute_values(value: Any) -> tuple[str, ...]:
    """A claim read for limits and usage dimensions: its strings and integers (an array's too),
    distinct and sorted, at most MAX_ATTRIBUTE_VALUES of them."""
    items = value if isinstance(value, list) else [value]
    values = {str(item) for item in items
              if isinstance(item, str | int) and not isinstance(item, bool) and item != ""}
    return tuple(sorted(values)[:MAX_ATTRIBUTE_VALUES])


MAX_ATTRIBUTE_VALUES = 256


@dataclass(frozen=True, slots=True)
class ClaimMapping:
    """Compiled from an issuer's preset and overrides; turns verified claims into a Principal."""

    issuer_name: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    groups: tuple[str, ...]
    client_id: tuple[str, ...]
    subject: tuple[str, ...]
    tenant: tuple[str, ...]
    end_user: str | None
    attributes: tuple[str, ...] = ()  # claim paths kept on the principal (limits, dimensions)

    @classmethod
    def for_issuer(cls, config: IssuerConfig, attributes: tuple[str, ...] = ()) -> ClaimMapping:
        paths = dict(PRESETS[config.preset])
        if config.preset == "keycloak" and config.resource_client:
            paths["roles"] += (f"resource_access.{config.resource_client}.roles",)
        for part, override in config.claims.model_dump(exclude_none=True).items():
            paths[part] = tuple(override)
        return cls(issuer_name=config.name, end_user=config.end_user_claim,
                   attributes=attributes, **paths)

    def to_principal(self, claims: Mapping[str, Any]) -> Principal:
        groups = self._collect(claims, self.groups, split_spaces=False)
        claim_names = claims.get("_claim_names")
        if not groups and isinstance(claim_names, Mapping) and "groups" in claim_names:
            # Entra groups overage: the groups live elsewhere; this token grants none.
            log.warning("token of %s has a groups overage; treating it as no groups",
                        self.issuer_name)
        return Principal(
            issuer=self.issuer_name,
            subject=self._first(claims, self.subject) or "",
            client_id=self._first(claims, self.client_id),
            tenant=self._first(claims, self.tenant),
            roles=self._collect(claims, self.roles, split_spaces=False),
            scopes=self._collect(claims, self.scopes, split_spaces=True),
            groups=groups,
            audiences=frozenset(claim_values(claims.get("aud"), split_spaces=False)),
            end_user=self._first(claims, (self.end_user,)) if self.end_user else None,
            claims=MappingProxyType(dict(claims)),
            attributes=tuple((path, attribute_values(claim_at(claims, path)))
                             for path in self.attributes),
        )

    @staticmethod
    def _first(claims: Mapping[str, Any], paths: tuple[str, ...]) -> str | None:
        for path in paths:
            value = claim_at(claims, path)
            if isinstance(value, str) and value:
                return value
        return None

    @staticmethod
    def _collect(claims: Mapping[str, Any], paths: tuple[str, ...], *,
                 split_spaces: bool) -> frozenset[str]:
        values: set[str] = set()
        for path in paths:
            value = claim_at(claims, path)
            if value is not MISSING:
                values.update(claim_values(value, split_spaces=split_spaces))
        return frozenset(values)
