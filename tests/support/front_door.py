"""Pieces for a `Gateway` built by hand in unit tests: a caller accepted whatever it sends, a
guard granting every route group, and a handler table serving every operation."""

from __future__ import annotations

from typing import Any

from collections.abc import Mapping

from rolegate.api.routes import Operation, RouteGroup
from rolegate.authn.principal import Principal
from rolegate.authz.policy import RolePolicy
from rolegate.config.model import RuleConfig
from rolegate.observability.logging import DecisionLog
from rolegate.server.guard import Guard


class AcceptAnyone:
    async def authenticate(self, headers: Mapping[bytes, bytes], query: bytes) -> Principal:
        return Principal(issuer="test", subject="s")


def open_guard(decisions: DecisionLog | None = None) -> Guard:
    """A guard whose policy grants every group and model to every authenticated caller."""
    rule = RuleConfig.model_validate({"name": "everyone", "when": {"authenticated": True},
                                      "allow": {"routes": list(RouteGroup), "models": ["*"]}})
    return Guard(RolePolicy.compile([rule]), decisions or DecisionLog(is_enabled=False))


def every_operation(handler: Any, **by_operation: Any) -> dict[Operation, Any]:
    """`handler` for every operation, but those named (by the enum member's name)."""
    table = dict.fromkeys(Operation, handler)
    table.update({Operation[name]: value for name, value in by_operation.items()})
    return table
