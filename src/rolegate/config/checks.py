"""Cross-references between parts of the configuration, checked before serving.

Returns a list of messages; each names the object and what would fix it.
"""

from __future__ import annotations

from collections import Counter
from fnmatch import fnmatchcase

from rolegate.api.routes import PUBLIC_PATHS, RouteGroup, resolve
from rolegate.config.model import Settings
from rolegate.errors import MethodNotAllowed, NotFound

ROUTE_GROUPS = tuple(group.value for group in RouteGroup)
API_KEY_ISSUER = "apikey"  # the issuer name of every principal a virtual API key resolves to


def cross_reference_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    model_duplicates = _duplicates("models", [model.name for model in settings.models])
    problems += model_duplicates
    problems += _duplicates("auth.issuers", [issuer.name for issuer in settings.auth.issuers])
    problems += _duplicates("policy", [rule.name for rule in settings.policy])
    model_names = [model.name for model in settings.models]
    if not model_duplicates:  # default ids repeat model names: say it once
        problems += _duplicates("models[].deployments[].id",
                                [model.deployment_id(index) for model in settings.models
                                 for index in range(len(model.deployments))])
    problems += _fallback_problems(settings)
    issuer_names = {issuer.name for issuer in settings.auth.issuers}
    if settings.auth.dev_issuer.enabled:
        issuer_names.add("dev")
    problems += _key_problems(settings, issuer_names)
    if settings.keys.enabled:
        issuer_names.add(API_KEY_ISSUER)
    for index, rule in enumerate(settings.policy):
        where = f"policy[{index}] ({rule.name})"
        for route in rule.allow.routes:
            if route not in ROUTE_GROUPS and not route.startswith("/"):
                problems.append(f"{where}.allow.routes: unknown route group {route!r} "
                                f"(known: {', '.join(ROUTE_GROUPS)}, or a path like /v1/audio/*)")
        for pattern in rule.allow.models:
            if not any(fnmatchcase(name, pattern) for name in model_names):
                problems.append(f"{where}.allow.models: {pattern!r} matches no model "
                                f"(known: {', '.join(model_names) or 'none'})")
        for name in rule.when.issuers:
            if name not in issuer_names:
                problems.append(f"{where}.when.issuers: unknown issuer {name!r} "
                                f"(known: {', '.join(sorted(issuer_names)) or 'none'})")
    problems += _metrics_path_problems(settings)
    if (not settings.auth.issuers and not settings.auth.dev_issuer.enabled
            and not settings.keys.enabled):
        problems.append("auth: no issuer is configured, so no request could ever be "
                        "authenticated (add auth.issuers or enable auth.dev_issuer)")
    return problems


def _duplicates(where: str, names: list[str]) -> list[str]:
    return [f"{where}: the name {name!r} is used {count} times (names must be unique)"
            for name, count in Counter(names).items() if count > 1]


def _key_problems(settings: Settings, issuer_names: set[str]) -> list[str]:
    problems = []
    if settings.keys.enabled and settings.database.url is None:
        problems.append("keys.enabled: virtual API keys need a database (set database.url)")
    if settings.audit.enabled and settings.database.url is None:
        problems.append("audit.enabled: the audit log needs a database (set database.url)")
    if settings.keys.enabled and API_KEY_ISSUER in issuer_names:
        problems.append(f"auth.issuers: the name {API_KEY_ISSUER!r} is reserved for virtual "
                        "API keys (rename the issuer)")
    return problems


def _fallback_problems(settings: Settings) -> list[str]:
    """A fallback must name another configured model: a dangling one is a start-up error."""
    names = [model.name for model in settings.models]
    problems = []
    for index, model in enumerate(settings.models):
        for key in ("fallbacks", "context_window_fallbacks"):
            for name in getattr(model, key):
                if name == model.name:
                    problems.append(f"models[{index}] ({model.name}).{key}: a model cannot fall "
                                    "back to itself")
                elif name not in names:
                    problems.append(f"models[{index}] ({model.name}).{key}: unknown model "
                                    f"{name!r} (known: {', '.join(names)})")
    return problems


def _metrics_path_problems(settings: Settings) -> list[str]:
    """Public paths answer before authentication, so one must never stand in for a route."""
    metrics = settings.server.metrics
    if not (metrics.enabled and metrics.public):
        return []
    try:
        resolve("GET", metrics.path)
    except NotFound:
        is_taken = metrics.path in PUBLIC_PATHS
    except MethodNotAllowed:
        is_taken = True
    else:
        is_taken = True
    if not is_taken:
        return []
    return [f"server.metrics.path: {metrics.path!r} is a path the gateway already serves "
            "(choose another, such as /metrics)"]
