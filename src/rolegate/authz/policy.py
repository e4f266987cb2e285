"""`RolePolicy`: the one policy engine, compiled once from the rules in the configuration.

A request is allowed when some rule matches the caller (`when`: lists are any-of, keys all-of)
and grants both its route and, when the request names one, its model. No rule, no access.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase, translate
from typing import Any

from rolegate.authn.claims import MISSING, claim_at, claim_values
from rolegate.authn.principal import Principal
from rolegate.authz.model import Action, Decision, McpTarget
from rolegate.config.model import McpGrantConfig, RuleConfig

MAX_REMEMBERED_DECISIONS = 10_000


def _globs(patterns: Iterable[str]) -> re.Pattern[str] | None:
    patterns = list(patterns)
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{translate(p)})" for p in patterns))


def _argument_globs(patterns: Iterable[str]) -> re.Pattern[str]:
    """Globs for tool argument values, which servers often read as paths: `*` and `?` stay
    within one segment (`acme/*` is `acme/site`, never `acme/site/x`; `/` and `\\` separate
    segments), `**` spans segments, every other character is itself. No pattern: none holds."""
    alternatives = [_segment_glob(pattern) for pattern in patterns] or ["(?!)"]
    return re.compile("|".join(f"(?:{alternative})" for alternative in alternatives), re.DOTALL)


_IN_SEGMENT = r"[^/\\\x00-\x1f\x7f]"  # what `*` and `?` match: no separator, no control


def _segment_glob(pattern: str) -> str:
    parts = []
    for index, run in enumerate(pattern.split("**")):
        if index:
            parts.append(".*")
        parts += [f"{_IN_SEGMENT}*" if char == "*" else _IN_SEGMENT if char == "?"
                  else re.escape(char) for char in run]
    return "".join(parts) + r"\Z"


# A value holding a `.` or `..` segment (`/` or `\\` between segments, either of them or the
# dots percent-encoded) names another place than it spells: it matches no argument glob.
_DOT_SEGMENT = re.compile(r"(?:^|[/\\]|%2f|%5c)(?:\.|%2e){1,2}(?:$|[/\\]|%2f|%5c)",
                          re.IGNORECASE)


def _argument_holds(value: object, allowed: re.Pattern[str]) -> bool:
    return (isinstance(value, str) and _DOT_SEGMENT.search(value) is None
            and allowed.match(value) is not None)


def _claim_holds(claims: Mapping[str, Any], path: str, accepted: frozenset[str]) -> bool:
    """A string equal to an accepted value, a space-delimited string or an array containing one."""
    value = claim_at(claims, path)
    if value is MISSING:
        return False
    if isinstance(value, str) and value in accepted:
        return True
    return not accepted.isdisjoint(claim_values(value, split_spaces=True))


@dataclass(frozen=True, slots=True)
class McpGrant:
    """A rule's `allow.mcp`, compiled: a glob per kind; None grants none of that kind."""

    servers: re.Pattern[str] | None
    kinds: Mapping[str, re.Pattern[str] | None]
    arguments: tuple[tuple[str, re.Pattern[str]], ...] = ()

    @classmethod
    def compile(cls, grant: McpGrantConfig) -> McpGrant:
        return cls(_globs(grant.servers), {"tool": _globs(grant.tools),
                                           "resource": _globs(grant.resources),
                                           "prompt": _globs(grant.prompts)},
                   tuple((name, _argument_globs(globs))
                         for name, globs in grant.arguments.items()))

    def grants(self, target: McpTarget) -> bool:
        if self.servers is None or self.servers.match(target.server) is None:
            return False
        if target.name is None:
            return True
        pattern = self.kinds.get(target.kind)
        if pattern is None or pattern.match(target.name) is None:
            return False
        if target.kind != "tool" or target.arguments is None:
            return True
        passed = dict(target.arguments)
        return all(_argument_holds(passed.get(name), allowed) for name, allowed in self.arguments)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    is_everyone: bool
    roles: frozenset[str]
    scopes: frozenset[str]
    groups: frozenset[str]
    clients: frozenset[str]
    subjects: frozenset[str]
    issuers: frozenset[str]
    tenants: frozenset[str]
    claims: tuple[tuple[str, frozenset[str]], ...]
    route_groups: frozenset[str]
    route_paths: re.Pattern[str] | None
    models: re.Pattern[str] | None
    config: RuleConfig
    mcp: McpGrant | None = None

    @classmethod
    def compile(cls, rule: RuleConfig) -> CompiledRule:
        when, allow = rule.when, rule.allow
        return cls(
            name=rule.name, is_everyone=when.authenticated,
            roles=frozenset(when.roles), scopes=frozenset(when.scopes),
            groups=frozenset(when.groups), clients=frozenset(when.clients),
            subjects=frozenset(when.subjects), issuers=frozenset(when.issuers),
            tenants=frozenset(when.tenants),
            claims=tuple((path, frozenset(values)) for path, values in when.claims.items()),
            route_groups=frozenset(r for r in allow.routes if not r.startswith("/")),
            route_paths=_globs(r for r in allow.routes if r.startswith("/")),
            models=_globs(allow.models), config=rule,
            mcp=McpGrant.compile(allow.mcp) if allow.mcp is not None else None,
        )

    def unmet_conditions(self, who: Principal) -> list[str]:
        """Each condition of `when` that `who` fails, in words; empty when the rule matches."""
        unmet = []
        for label, wanted, held in (
            ("roles", self.roles, who.roles), ("scopes", self.scopes, who.scopes),
            ("groups", self.groups, who.groups),
        ):
            if wanted and wanted.isdisjoint(held):
                unmet.append(f"{label} any of {sorted(wanted)}")
        for label, wanted, value in (
            ("client", self.clients, who.client_id), ("subject", self.subjects, who.subject),
            ("issuer", self.issuers, who.issuer), ("tenant", self.tenants, who.tenant),
        ):
            if wanted and value not in wanted:
                unmet.append(f"{label} one of {sorted(wanted)}")
        for path, accepted in self.claims:
            if not _claim_holds(who.claims, path, accepted):
                unmet.append(f"claim {path} containing one of {sorted(accepted)}")
        return unmet

    def matches(self, who: Principal) -> bool:
        """`unmet_conditions(who) == []`, short-circuiting and without building messages."""
        if self.roles and self.roles.isdisjoint(who.roles):
            return False
        if self.scopes and self.scopes.isdisjoint(who.scopes):
            return False
        if self.groups and self.groups.isdisjoint(who.groups):
            return False
        for wanted, value in ((self.clients, who.client_id), (self.subjects, who.subject),
                              (self.issuers, who.issuer), (self.tenants, who.tenant)):
            if wanted and value not in wanted:
                return False
        return all(_claim_holds(who.claims, path, accepted) for path, accepted in self.claims)

    def grants_route(self, action: Action) -> bool:
        if action.route in self.route_groups:
            return True
        return self.route_paths is not None and self.route_paths.match(action.path) is not None

    def grants_model(self, model: str | None) -> bool:
        return model is None or (self.models is not None and self.models.match(model) is not None)

    def grants_target(self, action: Action) -> bool:
        """The action's model, or the MCP server, tool, resource or prompt it names."""
        if action.mcp is not None:
            return self.mcp is not None and self.mcp.grants(action.mcp)
        return self.grants_model(action.model)


def _credential_allows(who: Principal, model: str | None) -> bool:
    if who.allowed_models is None or model is None:
        return True
    return any(fnmatchcase(model, pattern) for pattern in who.allowed_models)


class RolePolicy:
    """Decides every request.

    >>> policy = RolePolicy.compile(settings.policy)
    >>> policy.decide(principal, Action("inference", "/v1/chat/completions", "gpt-4o")).allowed

    Decisions are remembered per (principal object, action): the verifier hands out the same
    `Principal` object for every request with the same token, both are immutable, and so is the
    policy, so a repeated question gets the same answer without walking the rules again.
    """

    def __init__(self, rules: tuple[CompiledRule, ...], *,
                 max_remembered: int = MAX_REMEMBERED_DECISIONS) -> None:
        self.rules = rules
        self._max_remembered = max_remembered
        # (id(principal), action) -> (principal, decision). Holding the principal keeps its id
        # from being reused by another object while the entry exists.
        self._decided: dict[tuple[int, Action], tuple[Principal, Decision]] = {}

    @classmethod
    def compile(cls, rules: Iterable[RuleConfig]) -> RolePolicy:
        return cls(tuple(CompiledRule.compile(rule) for rule in rules))

    def decide(self, who: Principal, action: Action) -> Decision:
        key = (id(who), action)
        remembered = self._decided.get(key)
        if remembered is not None and remembered[0] is who:
            return remembered[1]
        decision = self._evaluate(who, action)
        if len(self._decided) >= self._max_remembered:
            del self._decided[next(iter(self._decided))]  # the oldest entry
        self._decided[key] = (who, decision)
        return decision

    def _evaluate(self, who: Principal, action: Action) -> Decision:
        if not _credential_allows(who, action.model):
            return Decision(False, None, f"This credential is limited to models "
                            f"{list(who.allowed_models or ())}; {action.describe()} is not "
                            "among them.", "model_not_allowed")
        matching = [rule for rule in self.rules if rule.matches(who)]
        for rule in matching:
            if rule.grants_route(action) and rule.grants_target(action):
                return Decision(True, rule.name, f"granted by rule {rule.name!r}")
        route_granted = any(rule.grants_route(action) for rule in matching)
        code = "insufficient_scope"
        if route_granted:
            code = "model_not_allowed" if action.mcp is None else "mcp_not_allowed"
        return Decision(False, None, self._denial(who, action), code)

    def allowed_models(self, who: Principal, route: str, path: str,
                       models: Iterable[str]) -> list[str]:
        return [m for m in models if self.decide(who, Action(route, path, m)).allowed]

    def scopes_granting(self, action: Action) -> list[str]:
        """The scopes a rule granting `action` asks for (RFC 6750 `scope` of a 403)."""
        found: dict[str, None] = {}
        for rule in self.rules:
            if rule.grants_route(action) and rule.grants_target(action):
                found.update(dict.fromkeys(sorted(rule.scopes)))
        return list(found)

    def _denial(self, who: Principal, action: Action) -> str:
        granting = [rule for rule in self.rules
                    if rule.grants_route(action) and rule.grants_target(action)]
        hints = [f"rule {rule.name!r} needs " + "; ".join(rule.unmet_conditions(who))
                 for rule in granting[:3]]
        held = who.describe()
        would = (" It would be granted by: " + " | ".join(hints) + ".") if hints else \
            " No rule grants it to anyone."
        return f"Access to {action.describe()} is not granted to this caller ({held}).{would}"
