"""The embedded default configuration: the mock model, the development issuer and a policy that
grants role `rolegate.user` inference and model listing on every model, and role
`rolegate.admin` the admin routes and the console. Nothing else."""

from __future__ import annotations

from rolegate.config.load import validate_settings
from rolegate.config.model import Settings

DEFAULT_USER_ROLE = "rolegate.user"
DEFAULT_ADMIN_ROLE = "rolegate.admin"


def embedded_settings(*, host: str = "127.0.0.1", port: int = 8080) -> Settings:
    return validate_settings({
        "server": {"host": host, "port": port},
        "models": [{"name": "echo", "provider": "mock"}],
        "auth": {"dev_issuer": {"enabled": True}},
        "policy": [
            {"name": "users", "when": {"roles": [DEFAULT_USER_ROLE]},
             "allow": {"routes": ["inference", "info"], "models": ["*"]}},
            {"name": "admins", "when": {"roles": [DEFAULT_ADMIN_ROLE]},
             "allow": {"routes": ["admin", "console"]}},
        ],
    }, source="<embedded defaults>")
