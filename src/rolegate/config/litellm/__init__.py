"""Importing a LiteLLM proxy `config.yaml` as a rolegate configuration (`rolegate import
litellm`): `model_list` and `router_settings` (`models.py`), `general_settings` and the JWT
environment variables (`auth.py`). Every setting read gets one line in the `Report`: what it
became, or why it could not be mapped. The result is deny-by-default: only what LiteLLM granted
by name is granted.

    config, report = import_litellm(yaml.safe_load(text), environ=os.environ)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rolegate.config.litellm.auth import import_auth
from rolegate.config.load import ConfigError
from rolegate.config.litellm.models import import_models, import_routing
from rolegate.config.litellm.report import Report

_JWT_VARIABLES = ("JWT_PUBLIC_KEY_URL", "JWT_AUDIENCE")
_SECTIONS = ("model_list", "router_settings", "general_settings", "environment_variables",
             "litellm_settings")
# litellm_settings keys rolegate reads as router_settings keys.
_ROUTER_ALIASES = {"num_retries": "num_retries", "request_timeout": "timeout",
                   "fallbacks": "fallbacks", "context_window_fallbacks":
                   "context_window_fallbacks"}


def import_litellm(document: Any, *, environ: Mapping[str, str]) -> tuple[dict[str, Any], Report]:
    """The rolegate configuration for LiteLLM's `document`, and what became of each setting.
    `environ` is consulted for the JWT variables `environment_variables` does not set."""
    report = Report()
    if not isinstance(document, dict):
        report.unmapped("<root>", "not a YAML mapping")
        return {}, report
    for key in document:
        if key not in _SECTIONS:
            report.unmapped(key, "no rolegate equivalent")
    router = _router_settings(document, report)
    models = import_models(document.get("model_list"), router, report)
    routing = import_routing(router, models, report)
    variables = _variables(document.get("environment_variables"), environ, report)
    general = document.get("general_settings")
    auth, policy = import_auth(general if isinstance(general, dict) else {}, variables,
                               bool(models), report)
    config: dict[str, Any] = {"models": models}
    if routing:
        config["routing"] = routing
    config["auth"] = auth
    config["policy"] = policy
    return config, report


def import_litellm_file(path: Path) -> tuple[dict[str, Any], Report]:
    """`import_litellm` on a file, with the process environment for the JWT variables."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), [f"cannot read it as YAML: {exc}"]) from None
    return import_litellm(document, environ=os.environ)


def _router_settings(document: dict[str, Any], report: Report) -> dict[str, Any]:
    router = document.get("router_settings")
    router = dict(router) if isinstance(router, dict) else {}
    settings = document.get("litellm_settings")
    for key, value in (settings.items() if isinstance(settings, dict) else ()):
        alias = _ROUTER_ALIASES.get(key)
        if alias is None:
            why = ("rolegate refuses a field it cannot translate (400 naming it) instead of "
                   "dropping it" if key == "drop_params" else "no rolegate equivalent")
            report.unmapped(f"litellm_settings.{key}", why)
        elif alias not in router:
            router[alias] = value
            report.note(f"litellm_settings.{key}", f"read as router_settings.{alias}")
    return router


def _variables(section: Any, environ: Mapping[str, str], report: Report) -> dict[str, str]:
    variables: dict[str, str] = {}
    for name in _JWT_VARIABLES:
        if isinstance(section, dict) and name in section:
            variables[name] = str(section[name])
        elif name in environ:
            variables[name] = environ[name]
            report.note(name, "taken from the environment")
    for name in section if isinstance(section, dict) else ():
        if name not in _JWT_VARIABLES:
            report.unmapped(f"environment_variables.{name}", "rolegate reads secrets as ${NAME} "
                            "from its own environment; set it there")
    return variables
