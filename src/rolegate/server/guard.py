"""`Guard`: asks the policy, logs and counts the decision, and raises `PermissionDenied` on a
denial.

Two questions, asked in this order for every authenticated request:

- `admit(request, who, route)`: may this caller use the route's group at all? The front door
  (`gateway.py`) asks it before any handler runs, for every route the table knows, so no
  handler can forget it. For a route whose handler decides on a model next
  (`MODEL_OPERATIONS`), a granted group is not logged: the model's decision is the request's one.
- `authorize(request, who, action)`: the per-model decision a handler adds.

`decide(request, who, action)` asks like `authorize` without raising (a fallback model's
decision, which the handler passes on to metering).

Every decision is logged, counted and, with `audit.decisions`, queued for the audit log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rolegate.api.routes import MODEL_OPERATIONS, Route, RouteGroup
from rolegate.audit.log import AuditLog
from rolegate.authn.principal import Principal
from rolegate.authz.model import Action, Decision
from rolegate.authz.policy import RolePolicy
from rolegate.errors import PermissionDenied
from rolegate.observability.logging import DecisionLog
from rolegate.observability.metrics import GatewayMetrics
from rolegate.server.asgi import Request

if TYPE_CHECKING:  # the `otel` extra: imported by app.py only when tracing is on
    from rolegate.observability.tracing import Tracing


class Guard:
    def __init__(self, policy: RolePolicy, decisions: DecisionLog,
                 metrics: GatewayMetrics | None = None, audit: AuditLog | None = None,
                 tracing: Tracing | None = None) -> None:
        self.policy = policy
        self._decisions = decisions
        self._metrics = metrics
        self._audit = audit
        self._tracing = tracing

    def admit(self, request: Request, who: Principal, route: Route) -> None:
        """The route group's decision, taken before dispatching; raises on a denial."""
        action = Action(route.group, request.path)
        decision = self.policy.decide(who, action)
        if decision.allowed and route.operation in MODEL_OPERATIONS:
            return
        self._record(request, who, action, decision)
        if not decision.allowed:
            denied = _denied(decision)
            if route.group is RouteGroup.MCP:  # an OAuth resource: say what would grant it
                denied.scope = " ".join(self.policy.scopes_granting(action)) or None
            raise denied

    def authorize(self, request: Request, who: Principal, action: Action) -> Decision:
        decision = self.decide(request, who, action)
        if not decision.allowed:
            raise _denied(decision)
        return decision

    def decide(self, request: Request, who: Principal, action: Action) -> Decision:
        """The policy's decision on `action` (logged like any decision), without raising: a
        fallback model's, which the handler hands to metering."""
        decision = self.policy.decide(who, action)
        self._record(request, who, action, decision)
        return decision

    def _record(self, request: Request, who: Principal, action: Action,
                decision: Decision) -> None:
        self._decisions.record(request.request_id, who, action, decision)
        if self._metrics is not None:
            self._metrics.count_decision(decision.allowed, decision.rule)
        if self._tracing is not None:
            self._tracing.decided(request, who, action, decision)
        if self._audit is not None:  # queued: written in batches off the request path
            self._audit.record("authz", actor_of(who), {
                "request_id": request.request_id, "client_id": who.client_id,
                "key_id": who.key_id, "route": action.route, "model": action.model,
                "decision": "allow" if decision.allowed else "deny", "rule": decision.rule,
                "code": decision.code})


def actor_of(who: Principal) -> dict[str, str]:
    """Who an audit entry names: the principal's issuer and subject."""
    return {"issuer": who.issuer, "subject": who.subject}


def _denied(decision: Decision) -> PermissionDenied:
    return PermissionDenied(decision.reason, code=decision.code,
                            param="model" if decision.code == "model_not_allowed" else None)
