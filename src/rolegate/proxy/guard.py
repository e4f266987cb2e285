"""`Guard`: asks the policy, logs and counts the decision, and raises `PermissionDenied` on a
denial."""

from __future__ import annotations

from rolegate.asgi import Request
from rolegate.authn.principal import Principal
from rolegate.authz.model import Action, Decision
from rolegate.authz.policy import RolePolicy
from rolegate.errors import PermissionDenied
from rolegate.observability.logging import DecisionLog
from rolegate.observability.metrics import GatewayMetrics


class Guard:
    def __init__(self, policy: RolePolicy, decisions: DecisionLog,
                 metrics: GatewayMetrics | None = None) -> None:
        self.policy = policy
        self._decisions = decisions
        self._metrics = metrics

    def authorize(self, request: Request, who: Principal, action: Action) -> Decision:
        decision = self._decide(request, who, action)
        if not decision.allowed:
            raise PermissionDenied(decision.reason, code=decision.code,
                                   param="model" if decision.code == "model_not_allowed" else None)
        return decision

    def decide(self, request: Request, who: Principal, action: Action) -> Decision:
        """The policy's decision on `action` (logged like any decision), without raising."""
        return self._decide(request, who, action)

    def _decide(self, request: Request, who: Principal, action: Action) -> Decision:
        decision = self.policy.decide(who, action)
        self._decisions.record(request.request_id, who, action, decision)
        if self._metrics is not None:
            self._metrics.count_decision(decision.allowed, decision.rule)
        return decision
