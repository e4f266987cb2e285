"""The URLs MCP clients reach each server at (its RFC 8707 resource, the audience its tokens
name), and issuers widened to accept tokens for them."""

from __future__ import annotations

from rolegate.config.model import IssuerConfig, Settings


def public_base_url(settings: Settings) -> str:
    server = settings.server
    base = server.public_base_url or f"http://{server.host}:{server.port}"
    return base.rstrip("/")


def resource_url(base_url: str, name: str) -> str:
    return f"{base_url.rstrip('/')}/mcp/{name}"


def mcp_resources(settings: Settings) -> tuple[str, ...]:
    base = public_base_url(settings)
    return tuple(resource_url(base, server.name) for server in settings.mcp.servers)


def accepting(config: IssuerConfig, resources: tuple[str, ...]) -> IssuerConfig:
    """An issuer also accepted for the MCP servers' resources (RFC 8707): such a token is
    good on its server only (the gateway refuses it elsewhere, the handler on other servers)."""
    if not resources:
        return config
    return config.model_copy(update={"audiences": (*config.audiences, *resources)})
