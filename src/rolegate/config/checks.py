"""Cross-references between parts of the configuration, checked before serving.

Returns a list of `Problem`s; each names the object, where it is, and what would fix it.
"""

from __future__ import annotations

from collections import Counter
from fnmatch import fnmatchcase
from importlib.util import find_spec

from rolegate.api.routes import (
    DEV_AUTHORIZE, HEALTH_LIVE, HEALTH_READY, DEV_JWKS, ConsolePaths, RouteGroup, Router,
    taken_segments,
)
from rolegate.config.model import Settings
from rolegate.config.problem import Problem
from rolegate.errors import MethodNotAllowed, NotFound

ROUTE_GROUPS = tuple(group.value for group in RouteGroup)
API_KEY_ISSUER = "apikey"  # the issuer name of every principal a virtual API key resolves to


def cross_reference_problems(settings: Settings) -> list[Problem]:
    problems: list[Problem] = []
    model_duplicates = _duplicates("models", [model.name for model in settings.models],
                                   ("models",))
    problems += model_duplicates
    problems += _duplicates("auth.issuers", [issuer.name for issuer in settings.auth.issuers],
                            ("auth", "issuers"))
    problems += _duplicates("policy", [rule.name for rule in settings.policy], ("policy",))
    model_names = [model.name for model in settings.models]
    if not model_duplicates:  # default ids repeat model names: say it once
        problems += _duplicates("models[].deployments[].id",
                                [model.deployment_id(index) for model in settings.models
                                 for index in range(len(model.deployments))])
    problems += _fallback_problems(settings)
    problems += _bedrock_problems(settings)
    issuer_names = {issuer.name for issuer in settings.auth.issuers}
    if settings.auth.dev_issuer.enabled:
        issuer_names.add("dev")
    problems += _key_problems(settings, issuer_names)
    if settings.keys.enabled:
        issuer_names.add(API_KEY_ISSUER)
    for index, rule in enumerate(settings.policy):
        where = f"policy[{index}] ({rule.name})"
        for item, route in enumerate(rule.allow.routes):
            if route not in ROUTE_GROUPS and not route.startswith("/"):
                problems.append(Problem(
                    ("policy", index, "allow", "routes", item),
                    f"unknown route group {route!r} "
                    f"(known: {', '.join(ROUTE_GROUPS)}, or a path like /v1/audio/*)",
                    label=f"{where}.allow.routes"))
        for item, pattern in enumerate(rule.allow.models):
            if not any(fnmatchcase(name, pattern) for name in model_names):
                problems.append(Problem(("policy", index, "allow", "models", item),
                                        f"{pattern!r} matches no model "
                                        f"(known: {', '.join(model_names) or 'none'})",
                                        label=f"{where}.allow.models"))
        mcp_names = [server.name for server in settings.mcp.servers]
        for item, pattern in enumerate(rule.allow.mcp.servers if rule.allow.mcp else ()):
            if not any(fnmatchcase(name, pattern) for name in mcp_names):
                problems.append(Problem(("policy", index, "allow", "mcp", "servers", item),
                                        f"{pattern!r} matches no MCP server "
                                        f"(known: {', '.join(mcp_names) or 'none'})",
                                        label=f"{where}.allow.mcp.servers"))
        for item, name in enumerate(rule.when.issuers):
            if name not in issuer_names:
                problems.append(Problem(("policy", index, "when", "issuers", item),
                                        f"unknown issuer {name!r} "
                                        f"(known: {', '.join(sorted(issuer_names)) or 'none'})",
                                        label=f"{where}.when.issuers"))
    problems += _budget_problems(settings)
    problems += _metrics_path_problems(settings)
    problems += _console_problems(settings)
    if (not settings.auth.issuers and not settings.auth.dev_issuer.enabled
            and not settings.keys.enabled):
        problems.append(Problem(("auth",), "no issuer is configured, so no request could ever "
                                "be authenticated (add auth.issuers or enable auth.dev_issuer)"))
    return problems


def _duplicates(where: str, names: list[str], items: tuple[str, ...] = ()) -> list[Problem]:
    """One problem per name given more than once, placed at its second use when `items` is
    the list the names come from. An empty name is the schema's problem, not this one's."""
    counts = Counter(name for name in names if name)
    return [Problem((*items, names.index(name, names.index(name) + 1), "name") if items else
                    tuple(where.replace("[]", "").split(".")),
                    f"the name {name!r} is used {count} times (names must be unique)",
                    label=where)
            for name, count in counts.items() if count > 1]


def _key_problems(settings: Settings, issuer_names: set[str]) -> list[Problem]:
    problems = []
    if settings.keys.enabled and settings.database.url is None:
        problems.append(Problem(("keys", "enabled"),
                                "virtual API keys need a database (set database.url)"))
    if settings.audit.enabled and settings.database.url is None:
        problems.append(Problem(("audit", "enabled"),
                                "the audit log needs a database (set database.url)"))
    if settings.keys.enabled and API_KEY_ISSUER in issuer_names:
        problems.append(Problem(("auth", "issuers"), f"the name {API_KEY_ISSUER!r} is reserved "
                                "for virtual API keys (rename the issuer)"))
    return problems


def _console_problems(settings: Settings) -> list[Problem]:
    """The console signs in with an issuer of auth.issuers, whose endpoints it must know."""
    console = settings.console
    segment = console.path.split("/")[1]
    if segment in taken_segments():
        return [Problem(("console", "path"), f"{console.path!r} would share /{segment} with the "
                        "gateway's own routes (choose another, such as /console)")]
    if not console.enabled or console.issuer is None:
        return []
    names = [issuer.name for issuer in settings.auth.issuers]
    if console.issuer not in names:
        return [Problem(("console", "issuer"), f"unknown issuer {console.issuer!r} "
                        f"(known: {', '.join(names) or 'none'})")]
    return [Problem(("console", field), f"signing in with {console.issuer!r} needs its "
                    f"{field} (the issuer's discovery document names it)")
            for field in ("authorization_url", "token_url") if getattr(console, field) is None]


def _fallback_problems(settings: Settings) -> list[Problem]:
    """A fallback must name another configured model: a dangling one is a start-up error."""
    names = [model.name for model in settings.models]
    problems = []
    for index, model in enumerate(settings.models):
        for key in ("fallbacks", "context_window_fallbacks"):
            label = f"models[{index}] ({model.name}).{key}"
            for item, name in enumerate(getattr(model, key)):
                if name == model.name:
                    problems.append(Problem(("models", index, key, item),
                                            "a model cannot fall back to itself", label=label))
                elif name not in names:
                    problems.append(Problem(("models", index, key, item), f"unknown model "
                                            f"{name!r} (known: {', '.join(names)})", label=label))
    return problems


def _bedrock_problems(settings: Settings) -> list[Problem]:
    """The bedrock provider signs with botocore, an optional extra: say so before serving."""
    if find_spec("botocore") is not None:
        return []
    return [Problem(("models", index, "deployments", item, "provider"),
                    "provider bedrock needs botocore: pip install 'rolegate[bedrock]'",
                    label=f"models[{index}] ({model.name}).provider")
            for index, model in enumerate(settings.models)
            for item, deployment in enumerate(model.deployments)
            if deployment.provider == "bedrock"]


def _metrics_path_problems(settings: Settings) -> list[Problem]:
    """Public paths answer before authentication, so one must never stand in for a route."""
    metrics = settings.server.metrics
    if not (metrics.enabled and metrics.public):
        return []
    public = (HEALTH_LIVE, HEALTH_READY, DEV_JWKS, DEV_AUTHORIZE,
              *ConsolePaths.at(settings.console.path).public)
    try:
        Router(settings.console.path).resolve("GET", metrics.path)
    except NotFound:
        is_taken = metrics.path in public
    except MethodNotAllowed:
        is_taken = True
    else:
        is_taken = True
    if not is_taken:
        return []
    return [Problem(("server", "metrics", "path"), f"{metrics.path!r} is a path the gateway "
                    "already serves (choose another, such as /metrics)")]


def _budget_problems(settings: Settings) -> list[Problem]:
    """A rule drawing on a budget must name a configured one; budgets need distinct names."""
    names = [budget.name for budget in settings.budgets]
    problems = _duplicates("budgets", names, ("budgets",))
    for index, budget in enumerate(settings.budgets):
        if budget.is_empty:
            problems.append(Problem(("budgets", index), "no limit is set (give rpm, tpm, "
                                    "daily_tokens or monthly_budget_usd)",
                                    label=f"budgets[{index}] ({budget.name})"))
    for index, rule in enumerate(settings.policy):
        for item, name in enumerate(rule.allow.budgets):
            if name not in names:
                problems.append(Problem(("policy", index, "allow", "budgets", item),
                                        f"unknown budget {name!r} (known: "
                                        f"{', '.join(names) or 'none'})",
                                        label=f"policy[{index}] ({rule.name}).allow.budgets"))
    return problems
