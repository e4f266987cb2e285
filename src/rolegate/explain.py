"""`explain`: why a token or a virtual API key gets the answer it gets, step by step, for a
route and model or for an MCP server's tool, resource or prompt (`McpTarget`).

Runs the gateway's own verifiers and policy (not a re-implementation), and records each step, so
"why am I getting 403?" has an answer that matches what the gateway does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt

from rolegate.api.routes import RouteGroup, resolve
from rolegate.authn.apikeys import ApiKeyVerifier, KeyRecords, principal_of
from rolegate.authn.claims import ClaimMapping
from rolegate.authn.jwks import Fetch
from rolegate.authn.principal import Principal
from rolegate.authn.verifier import JwtVerifier, TrustedIssuer
from rolegate.authz.model import Action, McpTarget
from rolegate.authz.policy import RolePolicy
from rolegate.config.model import IssuerConfig, Settings, per_claim
from rolegate.errors import GatewayError, ModelNotFound, NotFound
from rolegate.keys.material import hint
from rolegate.keys.records import ApiKey
from rolegate.limits.quota import QuotaPlan
from rolegate.mcp.resources import accepting, mcp_resources, public_base_url, resource_url


class KeysById(Protocol):
    """Where a key's record is read by its id: `keys.store.KeyStore`."""

    async def get(self, key_id: str) -> ApiKey | None: ...


@dataclass
class RuleVerdict:
    name: str
    unmet: list[str]
    grants_route: bool
    grants_model: bool

    @property
    def is_granting(self) -> bool:
        return not self.unmet and self.grants_route and self.grants_model


@dataclass
class Explanation:
    steps: list[tuple[str, bool, str]] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)
    principal: Principal | None = None
    is_verified: bool = False
    # Claims given as they are (`explain_claims`): the decision a valid token carrying them
    # would get, though nothing was verified.
    is_assumed: bool = False
    action: Action | None = None
    rules: list[RuleVerdict] = field(default_factory=list)
    allowed: bool = False
    rule: str | None = None  # the granting rule
    status: int = 401
    summary: str = ""

    def step(self, name: str, is_ok: bool, detail: str) -> None:
        self.steps.append((name, is_ok, detail))

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (`rolegate explain --json`); never the token itself."""
        who = self.principal
        return {
            "allowed": self.allowed, "status": self.status, "summary": self.summary,
            "steps": [{"name": name, "ok": is_ok, "detail": detail}
                      for name, is_ok, detail in self.steps],
            "principal": None if who is None else {
                "verified": self.is_verified, "issuer": who.issuer, "subject": who.subject,
                "client_id": who.client_id, "tenant": who.tenant, "roles": sorted(who.roles),
                "scopes": sorted(who.scopes), "groups": sorted(who.groups),
                "end_user": who.end_user, "key_id": who.key_id},
            "action": None if self.action is None else {
                "route": str(self.action.route), "path": self.action.path,
                "model": self.action.model, **_mcp_dict(self.action.mcp)},
            "rules": [{"name": rule.name, "unmet": rule.unmet, "grants_route": rule.grants_route,
                       "grants_model": rule.grants_model, "grants": rule.is_granting}
                      for rule in self.rules],
        }


def _mcp_dict(target: McpTarget | None) -> dict[str, Any]:
    """The MCP part of an action, for an action naming an MCP server (else nothing)."""
    if target is None:
        return {}
    return {"mcp": {"server": target.server, "kind": target.kind, "name": target.name,
                    "arguments": None if target.arguments is None else dict(target.arguments)}}


async def explain(settings: Settings, issuers: list[IssuerConfig], token: str, route: str,
                  model: str | None, fetch: Fetch,
                  clock: Callable[[], float] = time.time, *,
                  mcp: McpTarget | None = None) -> Explanation:
    """With `mcp`, the request is one to that MCP server naming that tool (or resource or
    prompt), and its token must name the server's resource as audience, as the gateway asks."""
    report = Explanation()
    report.action = _action(route, model, mcp)
    if not _read_token(report, token):
        return report
    resources = mcp_resources(settings)
    trusted = [TrustedIssuer.build(accepting(config, resources), fetch, clock,
                                   settings.claim_paths) for config in issuers]
    issuer = _matching_issuer(report, trusted)
    try:
        report.principal = await JwtVerifier(trusted, clock).verify(token)
        report.is_verified = True
        report.step("verification", True, "signature, issuer, audience, time and tenant hold")
    except GatewayError as error:
        report.step("verification", False, f"{error.code}: {error.message}"
                    + _audience_detail(error, report.claims, issuer))
        report.status, report.summary = error.status, f"{error.status}: {error.message}"
        if issuer is not None:
            report.principal = ClaimMapping.for_issuer(
                issuer.config, settings.claim_paths).to_principal(report.claims)
    if report.principal is not None:
        if mcp is not None:
            _check_server(report, settings, mcp)
        _decide(report, settings)
    return report


def _check_server(report: Explanation, settings: Settings, target: McpTarget) -> None:
    """The gateway's MCP steps before the policy: the server exists, and the token is for it
    (RFC 8707), not for the LLM API or another server."""
    if target.server not in {server.name for server in settings.mcp.servers}:
        raise NotFound(f"No MCP server is named {target.server!r} (configured: "
                       f"{', '.join(s.name for s in settings.mcp.servers) or 'none'}).")
    assert report.principal is not None
    resource = resource_url(public_base_url(settings), target.server)
    is_for_server = resource in report.principal.audiences
    report.step("audience", is_for_server,
                f"the token names {resource}" if is_for_server else
                f"the token's aud {sorted(report.principal.audiences)} does not name "
                f"{resource}; the gateway answers 401 invalid_audience")
    if not is_for_server and report.is_verified:
        report.is_verified = False
        report.status = 401
        report.summary = f"401 invalid_audience: the token is not for {resource}"


def _audience_detail(error: GatewayError, claims: dict[str, Any],
                     issuer: TrustedIssuer | None) -> str:
    """For a wrong audience: what the token says and what this issuer accepts."""
    if error.code != "invalid_audience" or issuer is None:
        return ""
    accepted = ", ".join(repr(audience) for audience in issuer.config.audiences)
    return f" (the token's aud: {claims.get('aud')!r}; accepted: {accepted})"


def _look_up_model(report: Explanation, settings: Settings) -> None:
    """After an allow, the gateway looks the model up: one it does not serve is a 404."""
    model = report.action.model if report.action is not None else None
    if not report.allowed or model is None or model in {m.name for m in settings.models}:
        return
    error = ModelNotFound(f"The model {model!r} does not exist.", param="model")
    report.allowed = False
    report.status = error.status
    report.summary = (f"{error.status} {error.code}: {error.message} (the policy allows it; "
                      f"configured models: {', '.join(m.name for m in settings.models)})")


async def explain_key(settings: Settings, store: KeyRecords | None, key: str, route: str,
                      model: str | None, clock: Callable[[], float] = time.time) -> Explanation:
    """As `explain`, for a virtual API key looked up in `store` (None: keys are off)."""
    report = Explanation()
    report.action = _action(route, model)
    report.step("credential", True, f"a virtual API key ({hint(key)})")
    if store is None:
        return _keys_off(report)
    try:
        report.principal = await ApiKeyVerifier(store, clock, cache_ttl=0).verify(key)
    except GatewayError as error:
        report.step("key", False, f"{error.code}: {error.message}")
        report.status, report.summary = error.status, f"{error.status}: {error.message}"
        return report
    report.is_verified = True
    report.step("key", True, _key_detail(report.principal))
    _decide(report, settings)
    return report


async def explain_key_id(settings: Settings, store: KeysById | None, key_id: str, route: str,
                         model: str | None,
                         clock: Callable[[], float] = time.time) -> Explanation:
    """As `explain_key`, for the key with id `key_id` (its plaintext is never stored)."""
    report = Explanation()
    report.action = _action(route, model)
    report.step("credential", True, f"the virtual API key with id {key_id!r}, looked up by id")
    if store is None:
        return _keys_off(report)
    record = await store.get(key_id)
    problem = ("not known" if record is None else "revoked" if record.is_revoked
               else "expired" if record.is_expired(clock()) else None)
    if record is None or problem is not None:
        report.step("key", False, f"the key is {problem}")
        report.summary = f"401: the API key is {problem}"
        return report
    report.principal = principal_of(record)
    report.is_verified = True
    report.step("key", True, _key_detail(report.principal))
    _decide(report, settings)
    return report


async def explain_claims(settings: Settings, issuers: list[IssuerConfig],
                         claims: dict[str, Any], route: str, model: str | None,
                         clock: Callable[[], float] = time.time) -> Explanation:
    """What the policy decides for a valid token of the issuer named by `claims["iss"]`
    carrying `claims`: nothing is verified (no signature, audience or time); the principal is
    read from the claims by that issuer's mapping, as for a token."""
    report = Explanation(claims=claims, is_assumed=True)
    report.action = _action(route, model)
    report.step("claims", True, "given as they are: not verified (no signature, audience "
                "or expiry checked)")

    async def unused(url: str) -> bytes:  # nothing is verified, so no key is fetched
        raise AssertionError(url)
    trusted = [TrustedIssuer.build(config, unused, clock, settings.claim_paths)
               for config in issuers]
    issuer = _matching_issuer(report, trusted)
    if issuer is None:
        report.summary = f"401: iss {claims.get('iss')!r} matches no configured issuer"
        return report
    report.principal = ClaimMapping.for_issuer(issuer.config,
                                               settings.claim_paths).to_principal(claims)
    _decide(report, settings)
    return report


def _keys_off(report: Explanation) -> Explanation:
    report.step("key", False, "virtual API keys are not enabled (keys.enabled)")
    report.summary = "401: virtual API keys are not enabled"
    return report


def _decide(report: Explanation, settings: Settings) -> None:
    _evaluate(report, RolePolicy.compile(settings.policy))
    _look_up_model(report, settings)
    _count_limits(report, settings)


def _key_detail(who: Principal) -> str:
    models = who.allowed_models
    return (f"key {who.key_id} of {who.subject!r}: known, not revoked, not expired"
            + ("" if models is None else f"; limited to models {list(models)}"))


def _action(route: str, model: str | None, mcp: McpTarget | None = None) -> Action:
    if mcp is not None:
        return Action(RouteGroup.MCP, f"/mcp/{mcp.server}", mcp=mcp)
    if not route.startswith("/"):
        return Action(route, f"<{route}>", model)
    for method in ("POST", "GET"):
        try:
            resolved = resolve(method, route)
        except GatewayError:
            continue
        return Action(resolved.group, route, model or resolved.model)
    raise NotFound(f"No route matches {route}.")


def _read_token(report: Explanation, token: str) -> bool:
    try:
        report.header = jwt.get_unverified_header(token)
        report.claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        report.step("decode", False, f"not a well-formed JWT: {exc}")
        report.summary = "401: the token is not a well-formed JWT"
        return False
    report.step("decode", True, f"alg={report.header.get('alg')} kid={report.header.get('kid')} "
                f"typ={report.header.get('typ')}")
    return True


def _matching_issuer(report: Explanation, trusted: list[TrustedIssuer]) -> TrustedIssuer | None:
    iss = report.claims.get("iss")
    for issuer in trusted:
        pattern = issuer.iss_pattern
        if iss == issuer.config.issuer or (pattern is not None and pattern.fullmatch(str(iss))):
            report.step("issuer", True, f"iss {iss!r} is issuer {issuer.config.name!r} "
                        f"(preset {issuer.config.preset})")
            return issuer
    report.step("issuer", False, f"iss {iss!r} matches no configured issuer")
    return None


def _count_limits(report: Explanation, settings: Settings) -> None:
    """A step per limit or budget the granting rule counts on: what it counts on for this caller
    and the counters (as in Redis, without the prefix)."""
    if not report.allowed or report.principal is None:
        return
    who = report.principal
    plan = QuotaPlan(settings.policy, budgets=settings.budgets)
    target = report.action.mcp if report.action is not None else None
    if target is not None:
        _count_tool_limit(report, plan, who, target)
        return
    for counted in plan.counted(report.rule):
        set_limits = counted.limits.model_dump(exclude_none=True,
                                               exclude={"per", "per_end_user", "name"})
        limits = ", ".join(f"{name} {value:g}" for name, value in set_limits.items())
        kind = "rule" if counted.namespace == "r" else "budget"
        report.step(f"limits ({kind} {counted.name})", True,
                    f"{limits} per {counted.per}{_counted_values(counted.per, who)}; counters "
                    + ", ".join(counted.bases(who)))


def _count_tool_limit(report: Explanation, plan: QuotaPlan, who: Principal,
                      target: McpTarget) -> None:
    if target.kind != "tool" or target.name is None:
        return
    counted = plan.tool_counted(report.rule, target.server, target.name)
    if counted is not None:
        report.step(f"limits (tool {target.name} by rule {report.rule})", True,
                    f"rpm {counted.limits.rpm} per {counted.per}"
                    f"{_counted_values(counted.per, who)}; counters "
                    + ", ".join(counted.bases(who)))


def _counted_values(per: str, who: Principal) -> str:
    if per == "principal":
        return f" ({who.issuer}/{who.subject})"
    if per == "groups":
        values: tuple[str, ...] = tuple(sorted(who.groups))
    elif (path := per_claim(per)) is not None:
        values = who.attribute(path)
    else:
        return ""
    return f" = {', '.join(values)}" if values else " (none: shared by callers without one)"


def _evaluate(report: Explanation, policy: RolePolicy) -> None:
    assert report.principal is not None and report.action is not None
    for rule in policy.rules:
        report.rules.append(RuleVerdict(rule.name, rule.unmet_conditions(report.principal),
                                        rule.grants_route(report.action),
                                        rule.grants_target(report.action)))
    decision = policy.decide(report.principal, report.action)
    if not report.is_verified and not report.is_assumed:
        report.summary += " (the policy below was evaluated on unverified claims)"
        return
    report.allowed = decision.allowed
    report.rule = decision.rule
    report.status = 200 if decision.allowed else 403
    report.summary = (f"ALLOW: {decision.reason}" if decision.allowed
                      else f"403 {decision.code}: {decision.reason}")
    if report.is_assumed:
        report.summary += " (for a valid token carrying these claims; none was verified)"
