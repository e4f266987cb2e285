"""`build_app`: the only place that constructs the gateway's objects and wires them together.

Configuration becomes verifiers, a policy and a route table once, here; handlers only call them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rolegate.admin.routes import AdminHandlers
from rolegate.authn.authenticator import Authenticator
from rolegate.authn.dev_issuer import DevIssuer
from rolegate.authn.fetch import http_fetcher
from rolegate.authn.jwks import Fetch
from rolegate.authn.verifier import JwtVerifier, TrustedIssuer
from rolegate.authz.policy import RolePolicy
from rolegate.config.model import Settings
from rolegate.gateway import Gateway, background, health, static_json
from rolegate.observability.logging import DecisionLog
from rolegate.providers.http import HttpClient
from rolegate.providers.registry import build_provider
from rolegate.proxy.guard import Guard
from rolegate.proxy.handlers import ProxyHandlers
from rolegate.routing.table import RouteTable

DEV_JWKS_PATH = "/dev/jwks.json"


def build_app(settings: Settings, *, http: HttpClient | None = None,
              clock: Callable[[], float] = time.time, fetch: Fetch | None = None,
              dev_issuer: DevIssuer | None = None) -> Gateway:
    """The ASGI app for `settings`. Tests pass `clock`, `fetch` and `dev_issuer` in."""
    http = http or HttpClient()
    fetch = fetch or http_fetcher(http)
    issuers = [TrustedIssuer.build(config, fetch, clock) for config in settings.auth.issuers]
    public = {"/health/live": health()}
    if settings.auth.dev_issuer.enabled:
        dev_issuer = dev_issuer or _new_dev_issuer(settings)
        issuers.append(_trusted_dev(dev_issuer, clock))
        public[DEV_JWKS_PATH] = static_json(dev_issuer.jwks_document())
    caches = [issuer.keys for issuer in issuers]
    public["/health/ready"] = health(lambda: all(cache.is_loaded for cache in caches))

    guard = Guard(RolePolicy.compile(settings.policy),
                  DecisionLog(is_enabled=settings.logging.decisions))
    routes = RouteTable(build_provider(model, http) for model in settings.models)
    proxy = ProxyHandlers(guard, routes, max_body_bytes=settings.server.max_body_bytes,
                          body_timeout=settings.server.body_timeout)
    admin = AdminHandlers(guard, settings, [issuer.config for issuer in issuers])
    handlers = {operation: proxy.inference for operation in
                ("chat/completions", "completions", "embeddings", "responses")}
    handlers.update({"models.list": proxy.list_models, "models.get": proxy.get_model,
                     "admin.policy": admin.policy, "admin.unknown": admin.not_found})
    authenticator = Authenticator(JwtVerifier(issuers, clock),
                                  max_header_bytes=settings.server.max_auth_header_bytes)
    return Gateway(authenticator=authenticator, handlers=handlers, public=public,
                   on_startup=[background(*(cache.warm_until_loaded for cache in caches))],
                   on_shutdown=[http.close])


def _trusted_dev(dev: DevIssuer, clock: Callable[[], float]) -> TrustedIssuer:
    document = dev.jwks_document()

    async def local(url: str) -> bytes:  # served from memory: no request to ourselves
        return document
    return TrustedIssuer.build(dev.issuer_config(), local, clock)


def _new_dev_issuer(settings: Settings) -> DevIssuer:
    return DevIssuer.generate(dev_issuer_url(settings), settings.auth.dev_issuer.audience,
                              settings.auth.dev_issuer.token_ttl)


def dev_issuer_url(settings: Settings) -> str:
    server = settings.server
    base = server.public_base_url or f"http://{server.host}:{server.port}"
    return f"{base.rstrip('/')}/dev"
