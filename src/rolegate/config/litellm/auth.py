"""LiteLLM's `general_settings` (JWT auth, master key) and the `JWT_PUBLIC_KEY_URL` /
`JWT_AUDIENCE` variables as rolegate `auth.issuers` and `policy` rules.

Only what LiteLLM grants by name is granted: the admin scope gets exactly `admin_allowed_routes`,
`user_allowed_roles` get the OpenAI routes. Every other caller, whatever LiteLLM would have let
through by default (a valid token with no role, a team it looks up in its database), gets no
rule, so rolegate refuses it (403).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from rolegate.config.litellm.report import Report, plain

# LiteLLM's route groups, as rolegate's route groups or path patterns.
ROUTES = {"openai_routes": ["inference"], "llm_api_routes": ["inference"],
          "anthropic_routes": ["inference"], "info_routes": ["info"],
          "management_routes": ["admin"], "spend_tracking_routes": ["admin"],
          "global_spend_tracking_routes": ["admin"], "mcp_routes": ["mcp"]}
ENTRA_KEYS = re.compile(r"^https://login\.microsoftonline\.com/([^/]+)/discovery/"
                        r"(v2\.0/)?keys$")
KEYCLOAK_CERTS = re.compile(r"^(https?://.+/realms/[^/]+)/protocol/openid-connect/certs$")
OKTA_KEYS = re.compile(r"^(https://[^/]+\.okta\.com/oauth2/[^/]+)/v1/keys$")
_JWT_KEYS = ("admin_jwt_scope", "admin_allowed_routes", "team_id_jwt_field",
             "user_roles_jwt_field", "user_allowed_roles", "end_user_id_jwt_field",
             "public_key_ttl")


def import_auth(general: dict[str, Any], variables: dict[str, str], has_models: bool,
                report: Report) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The `auth` section and the policy rules for `general_settings`."""
    for key in general:
        if key not in ("enable_jwt_auth", "litellm_jwtauth", "master_key"):
            report.unmapped(f"general_settings.{key}", "no rolegate equivalent")
    if "master_key" in general:
        report.unmapped("general_settings.master_key", "a shared key with every right has no "
                        "rolegate equivalent; create virtual API keys with explicit grants "
                        "(`rolegate keys create`) instead")
    if general.get("enable_jwt_auth") is not True:
        report.unmapped("general_settings.enable_jwt_auth", "JWT auth is off: no issuer was "
                        "written, so no caller is authenticated until auth.issuers is filled")
        return {"issuers": []}, []
    jwt = general.get("litellm_jwtauth")
    jwt = jwt if isinstance(jwt, dict) else {}
    for key in jwt:
        if key not in _JWT_KEYS:
            report.unmapped(f"general_settings.litellm_jwtauth.{key}", "no rolegate equivalent")
    issuers = _issuers(jwt, variables, report)
    report.mapped("general_settings.enable_jwt_auth", f"{len(issuers)} issuer(s) in "
                  "auth.issuers; tokens are verified for signature, iss, aud and exp")
    rules = _admin_rules(jwt, has_models, report) + _user_rules(jwt, has_models, report)
    if "team_id_jwt_field" in jwt:
        report.unmapped("general_settings.litellm_jwtauth.team_id_jwt_field",
                        "teams and their models live in LiteLLM's database; grant a team with "
                        f"a rule `when: {{claims: {{{jwt['team_id_jwt_field']}: [<team id>]}}}}`")
    report.note("policy", f"{len(rules)} rule(s); any caller no rule matches is refused "
                "(403): what LiteLLM allowed by default is not granted")
    return {"issuers": issuers}, rules


def _issuers(jwt: dict[str, Any], variables: dict[str, str],
             report: Report) -> list[dict[str, Any]]:
    urls = [url.strip() for url in variables.get("JWT_PUBLIC_KEY_URL", "").split(",")
            if url.strip()]
    audience = variables.get("JWT_AUDIENCE")
    if not urls:
        report.unmapped("JWT_PUBLIC_KEY_URL", "not set (environment_variables or the "
                        "environment): no issuer could be written")
        return []
    if audience is None:
        report.note("JWT_AUDIENCE", "not set: LiteLLM then accepts any audience; rolegate "
                    "needs one, so `audiences` is ${JWT_AUDIENCE}")
    issuers = []
    for index, url in enumerate(urls):
        issuer = _issuer(url, f"issuer{index + 1}" if len(urls) > 1 else "", report)
        for item in issuer:
            item["audiences"] = [audience if audience is not None else "${JWT_AUDIENCE}"]
            _claims(item, jwt)
        issuers += issuer
    if audience is not None:
        report.mapped("JWT_AUDIENCE", f"auth.issuers[*].audiences: [{audience}] (a token for "
                      "another audience is refused, 401)")
    _report_claims(jwt, issuers, report)
    return issuers


def _issuer(url: str, suffix: str, report: Report) -> list[dict[str, Any]]:
    entra = ENTRA_KEYS.match(url)
    if entra is not None:
        tenant = entra.group(1)
        report.mapped("JWT_PUBLIC_KEY_URL", f"Entra ID tenant {tenant} (preset entra): issuers "
                      "entra-v2 (login.microsoftonline.com/…/v2.0) and entra-v1 "
                      "(sts.windows.net, the v1 tokens client credentials get by default)")
        if tenant in ("common", "organizations", "consumers") or "{" in tenant:
            report.note("JWT_PUBLIC_KEY_URL", f"tenant {tenant!r} is not one tenant: replace it "
                        "with your tenant id, or the issuers never match a token")
        return [{"name": f"entra-v2{suffix}", "preset": "entra",
                 "issuer": f"https://login.microsoftonline.com/{tenant}/v2.0", "jwks_url": url},
                {"name": f"entra-v1{suffix}", "preset": "entra",
                 "issuer": f"https://sts.windows.net/{tenant}/", "jwks_url": url}]
    for pattern, preset in ((KEYCLOAK_CERTS, "keycloak"), (OKTA_KEYS, "okta")):
        match = pattern.match(url)
        if match is not None:
            report.mapped("JWT_PUBLIC_KEY_URL", f"{preset} issuer {match.group(1)}")
            return [{"name": f"{preset}{suffix}", "preset": preset, "issuer": match.group(1),
                     "jwks_url": url}]
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    preset = "auth0" if parts.netloc.endswith(".auth0.com") else "generic"
    issuer = f"{origin}/" if preset == "auth0" else origin
    report.mapped("JWT_PUBLIC_KEY_URL", f"{preset} issuer {issuer}")
    report.note("JWT_PUBLIC_KEY_URL", f"LiteLLM never checks `iss`; rolegate does: check that "
                f"{issuer!r} is the `iss` of your tokens")
    return [{"name": f"{preset}{suffix}", "preset": preset, "issuer": issuer, "jwks_url": url}]


def _claims(issuer: dict[str, Any], jwt: dict[str, Any]) -> None:
    if "public_key_ttl" in jwt:
        issuer["jwks_ttl"] = plain(jwt["public_key_ttl"])
    if "end_user_id_jwt_field" in jwt:
        issuer["end_user_claim"] = jwt["end_user_id_jwt_field"]
    field = jwt.get("user_roles_jwt_field")
    if isinstance(field, str):
        default = "roles" if issuer["preset"] in ("entra", "okta", "generic") else None
        issuer["claims"] = {"roles": [field] if default in (None, field) else [field, default]}


def _report_claims(jwt: dict[str, Any], issuers: list[dict[str, Any]], report: Report) -> None:
    source = "general_settings.litellm_jwtauth"
    if "public_key_ttl" in jwt:
        report.mapped(f"{source}.public_key_ttl", "auth.issuers[*].jwks_ttl (seconds a fetched "
                      "key set stays fresh)")
    field = jwt.get("end_user_id_jwt_field")
    if field is not None:
        report.mapped(f"{source}.end_user_id_jwt_field", "auth.issuers[*].end_user_claim (sent "
                      "upstream as `user`)")
        if field == "appid" and any(item["preset"] == "entra" for item in issuers):
            report.note(f"{source}.end_user_id_jwt_field", "Entra v1 tokens carry `appid`, v2 "
                        "tokens `azp`: a v2 token has no end user unless you change it")
    if "user_roles_jwt_field" in jwt:
        report.mapped(f"{source}.user_roles_jwt_field", "auth.issuers[*].claims.roles: "
                      f"{issuers[0].get('claims', {}).get('roles') if issuers else []}")


def _routes(value: Any, report: Report) -> list[str]:
    routes: list[str] = []
    source = "general_settings.litellm_jwtauth.admin_allowed_routes"
    for item in value if isinstance(value, list) else ():
        name = str(item)
        if name.startswith("/"):
            routes.append(name)
            report.mapped(f"{source}: {name}", f"path pattern {name}")
        elif name in ROUTES:
            routes += [route for route in ROUTES[name] if route not in routes]
            report.mapped(f"{source}: {name}", f"route group {', '.join(ROUTES[name])}")
        else:
            report.unmapped(f"general_settings.litellm_jwtauth.admin_allowed_routes: {name}",
                            f"unknown route group (known: {', '.join(ROUTES)}); not granted")
    return routes


def _grant(routes: list[str], has_models: bool) -> dict[str, Any]:
    grant: dict[str, Any] = {"routes": routes}
    if has_models and "inference" in routes:
        grant["models"] = ["*"]
    return grant


def _admin_rules(jwt: dict[str, Any], has_models: bool,
                 report: Report) -> list[dict[str, Any]]:
    scope = jwt.get("admin_jwt_scope")
    source = "general_settings.litellm_jwtauth.admin_jwt_scope"
    if not isinstance(scope, str):
        return []
    allowed = jwt.get("admin_allowed_routes", ["management_routes"])
    routes = _routes(allowed, report)
    if not routes:
        report.unmapped(source, "admin_allowed_routes grants nothing rolegate knows")
        return []
    grant = _grant(routes, has_models)
    if "inference" in routes and not has_models:
        report.note(source, "model_list is empty: inference is granted on no model until "
                    "models and `allow.models` are added")
    report.mapped(source, f"rules litellm-admin-scope (scope {scope!r}) and litellm-admin-role "
                  f"(role {scope!r}): routes {routes}"
                  + (", every model" if "models" in grant else ""))
    report.note(source, "Entra client-credentials tokens carry app roles in `roles`, never "
                "`scp`: the admin scope is granted to a token holding it as a scope or as a role")
    return [{"name": "litellm-admin-scope", "when": {"scopes": [scope]}, "allow": grant},
            {"name": "litellm-admin-role", "when": {"roles": [scope]}, "allow": dict(grant)}]


def _user_rules(jwt: dict[str, Any], has_models: bool, report: Report) -> list[dict[str, Any]]:
    roles = jwt.get("user_allowed_roles")
    source = "general_settings.litellm_jwtauth.user_allowed_roles"
    if not isinstance(roles, list) or not roles:
        return []
    grant = _grant(["inference", "info"], has_models)
    report.mapped(source, f"rule litellm-users (roles {roles}): routes inference, info"
                  + (", every model" if "models" in grant else ""))
    return [{"name": "litellm-users", "when": {"roles": [str(role) for role in roles]},
             "allow": grant}]
