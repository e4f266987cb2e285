"""`build_app`: the only place that constructs the gateway's objects and wires them together.

Configuration becomes verifiers, a policy and a route table once, here; handlers only call them.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from sqlalchemy.exc import SQLAlchemyError

from rolegate.accounting.estimate import TokenEstimator
from rolegate.accounting.recorder import Recorder
from rolegate.accounting.spool import Spool
from rolegate.accounting.store import UsageStore
from rolegate.admin.keys import KeyAdmin
from rolegate.admin.openapi import openapi_document
from rolegate.admin.routes import AdminHandlers
from rolegate.admin.schemas import key_changes
from rolegate.admin.usage import UsageAdmin
from rolegate.audit.log import AuditLog
from rolegate.audit.store import AuditStore
from rolegate.api.routes import (
    DEV_AUTHORIZE, DEV_JWKS, HEALTH_LIVE, HEALTH_READY, INFERENCE_OPERATIONS, MCP_PREFIX,
    PROTECTED_RESOURCE_PREFIX, ConsolePaths, Operation, RouteGroup, Router,
)
from rolegate.authn.apikeys import ApiKeyVerifier
from rolegate.authn.authenticator import Authenticator
from rolegate.authn.dev_issuer import DevIssuer
from rolegate.authn.fetch import http_fetcher
from rolegate.authn.jwks import Fetch, JwksCache
from rolegate.authn.principal import Principal
from rolegate.authn.shared_replay import SharedReplay
from rolegate.authn.verifier import JwtVerifier, TrustedIssuer
from rolegate.authz.model import Action
from rolegate.authz.policy import RolePolicy
from rolegate.console.dev_authorize import DevAuthorizer
from rolegate.console.overview import OverviewPage
from rolegate.console.pages import ConsolePages, Explainer, Question, Renderer, static_file
from rolegate.console.session import SessionCookies
from rolegate.console.usage import UsagePages
from rolegate.console.signin import CodeExchange, OidcSignIn, TokenEndpoint
from rolegate.config.launch import LaunchOptions
from rolegate.config.defaults import DEFAULT_ADMIN_ROLE
from rolegate.config.load import read_pepper
from rolegate.config.model import (
    EgressConfig, IssuerConfig, ModelConfig, RoutingConfig, Settings,
)
from rolegate.explain import explain, explain_claims, explain_key, explain_key_id
from rolegate.keys.material import KeyHasher, is_api_key
from rolegate.keys.store import KeyStore
from rolegate.limits.leases import LeasedLimiter
from rolegate.limits.limiter import Limiter
from rolegate.mcp.credentials import ServerCredential
from rolegate.mcp.handlers import McpHandlers, McpServer
from rolegate.mcp.resources import accepting, public_base_url, resource_url
from rolegate.mcp.pins import ToolPins
from rolegate.mcp.sessions import SessionBinder
from rolegate.mcp.stdio import StdioServer
from rolegate.mcp.tool_limits import ToolLimits
from rolegate.limits.memory import MemoryLimiter
from rolegate.limits.quota import QuotaPlan
from rolegate.limits.reservation import Reserver
from rolegate.limits.redis import RedisLimiter
from rolegate.observability.collectors import KeySetCollector, UsageRecorderCollector
from rolegate.observability.logging import AccessLog, DecisionLog, configure_process_logging
from rolegate.observability.matches import RuleMatches
from rolegate.observability.metrics import EXPOSITION_TYPE, GatewayMetrics, exposition
from rolegate.observability.multiprocess import (
    MIRROR_INTERVAL, StateMirror, marking_dead, multiprocess_exposition, use_multiprocess_values,
)
from rolegate.observability.requests import RequestObserver
from rolegate.observability.upstream import MeasuredProvider
from rolegate.providers.http import HttpClient
from rolegate.providers.registry import build_provider
from rolegate.proxy.handlers import ProxyHandlers
from rolegate.proxy.metering import Metering
from rolegate.proxy.usage import UsageMeter
from rolegate.routing.deployment import Deployment
from rolegate.routing.dispatcher import Dispatcher
from rolegate.routing.select import build_selector
from rolegate.routing.table import ModelRoute, RouteTable
from rolegate.server.asgi import json_response
from rolegate.server.gateway import (
    Check, Gateway, Handler, Hook, PublicForm, PublicHandler, StartupFailed, background,
    generated, health, static_json,
)
from rolegate.server.guard import Guard
from rolegate.server.heap import freeze_startup_heap
from rolegate.storage.database import Database, SchemaBehind, first_line
from rolegate.tasks import PeriodicTask

if TYPE_CHECKING:  # the `otel` extra, imported only when tracing is on
    from rolegate.observability.tracing import Tracing
REDIS_PROBE_INTERVAL = 5.0  # seconds between pings of the limits' Redis, for readiness


def build_app(settings: Settings, *, http: HttpClient | None = None,
              clock: Callable[[], float] = time.time, fetch: Fetch | None = None,
              dev_issuer: DevIssuer | None = None,
              sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
              rng: random.Random | None = None, mcp_session_key: bytes | None = None,
              session_secret: bytes | None = None, metrics_dir: Path | None = None) -> Gateway:
    """The ASGI app for `settings`. Tests pass `clock`, `fetch`, `dev_issuer`, `sleep` (retry
    back-off) and `rng` (jitter, tie-breaks) in; the workers of one `serve`, the key binding MCP
    sessions (None: `mcp.session_secret`, or a random key of this process), the console's
    `session_secret` (None: `console.session_secret`, or a random one of this process) and
    `metrics_dir` (a worker of several, whose metrics are written there and read from there
    summed over the workers)."""
    http = http or HttpClient(settings.egress)
    fetch = fetch or http_fetcher(http)
    paths = settings.claim_paths
    mcp_servers = _mcp_servers(settings, http, clock, sleep)
    children = [server.stdio for server in mcp_servers if server.stdio is not None]
    resources = tuple(server.resource for server in mcp_servers)
    shared_replay = _build_shared_replay(settings, clock)
    replay_set = None if shared_replay is None else (
        lambda config: shared_replay.for_issuer(config.issuer))
    issuers = [TrustedIssuer.build(accepting(config, resources), fetch, clock, paths,
                                   replay_set)
               for config in settings.auth.issuers]
    public = {HEALTH_LIVE: health()}
    if settings.auth.dev_issuer.enabled:
        dev_issuer = dev_issuer or _new_dev_issuer(settings)
        issuers.append(_trusted_dev(dev_issuer, clock, paths, resources))
        public[DEV_JWKS] = static_json(dev_issuer.jwks_document())
    caches = [issuer.keys for issuer in issuers]
    stores = _build_stores(settings, clock)
    checks = {f"issuer {cache.name}": _keys_loaded(cache) for cache in caches}
    if stores.database is not None:
        checks["database"] = stores.database.check
    if stores.recorder is not None:
        checks["usage records"] = stores.recorder.readiness
    limiter = _build_limiter(settings, clock)
    if isinstance(limiter, RedisLimiter | LeasedLimiter):
        checks["rate limits"] = limiter.readiness
        probing = PeriodicTask(limiter.probe, every=REDIS_PROBE_INTERVAL)
        stores.on_startup += [background(limiter.probe), probing.start]
        stores.on_shutdown.append(probing.stop)
    public[HEALTH_READY] = health(checks)

    registry = CollectorRegistry()
    if metrics_dir is not None:
        use_multiprocess_values()
    metrics = _build_metrics(settings, registry)
    decisions = DecisionLog(is_enabled=settings.logging.decisions, clock=clock,
                            keep_denials=RECENT_DENIALS if settings.console.enabled else 0,
                            matches=RuleMatches(capacity=RECENT_MATCHES, clock=clock)
                            if settings.console.enabled else None)
    tracing = _build_tracing(settings)
    guard = Guard(RolePolicy.compile(settings.policy), decisions, metrics,
                  audit=stores.audit if settings.audit.decisions else None, tracing=tracing)
    rng = rng or random.Random()
    estimator = TokenEstimator()  # loads its vocabulary on first use only
    routes = RouteTable(_model_route(model, settings.routing, http, clock, rng, metrics,
                                     settings.egress, tracing, estimator)
                        for model in settings.models)
    dispatcher = Dispatcher(routes, settings.routing.retries, clock=clock, sleep=sleep, rng=rng)
    plan = QuotaPlan(settings.policy, stores.keys.limits_for if stores.keys else None,
                     budgets=settings.budgets)
    reserver = Reserver(settings.models,
                        default_tokens=settings.limits.default_reservation_tokens)
    metering = Metering(plan, limiter, stores.recorder, clock, settings.models, metrics,
                        reserver=reserver, usage=UsageMeter(estimator),
                        dimensions=settings.accounting.dimensions)
    proxy = ProxyHandlers(guard, routes, dispatcher, metering,
                          max_body_bytes=settings.server.max_body_bytes,
                          body_timeout=settings.server.body_timeout)
    admin = AdminHandlers(settings, [issuer.config for issuer in issuers])
    key_admin = KeyAdmin(stores.key_store, clock, audit=stores.audit)
    usage_admin = UsageAdmin(stores.usage, clock, dimensions=settings.accounting.dimensions)
    console = _build_console(settings, dev_issuer if settings.auth.dev_issuer.enabled else None,
                             fetch=fetch, http=http, clock=clock, policy=guard.policy,
                             stores=stores, decisions=decisions, secret=session_secret)
    public.update(console.public)
    handlers = _handler_table(proxy, admin, key_admin, usage_admin,
                              settings.accounting.dimensions)
    mcp = McpHandlers(mcp_servers, guard, http, recorder=stores.recorder, clock=clock,
                      issuers=[issuer.config.issuer for issuer in issuers],
                      max_body_bytes=settings.server.max_body_bytes,
                      body_timeout=settings.server.body_timeout,
                      limits=ToolLimits(plan, limiter, clock, metrics),
                      sessions=SessionBinder(_session_key(settings, mcp_session_key)),
                      pins=ToolPins(), dimensions_of=metering.dimensions_of)
    handlers[Operation.MCP] = mcp.serve
    for server in mcp_servers:
        public[PROTECTED_RESOURCE_PREFIX + MCP_PREFIX + server.config.name] = mcp.metadata(server)
    handlers.update(console.handlers)
    if metrics is not None:
        collectors: list[Collector] = [KeySetCollector(caches)]
        if stores.recorder is not None:
            collectors.append(UsageRecorderCollector(stores.recorder))
        if metrics_dir is None:
            for collector in collectors:
                registry.register(collector)
            exposed = exposition(registry)
        else:
            mirror = StateMirror(collectors)
            exposed = multiprocess_exposition(metrics_dir, mirror)
            mirroring = PeriodicTask(mirror.copy, every=MIRROR_INTERVAL)
            stores.on_startup.append(mirroring.start)
            stores.on_shutdown += [mirroring.stop, marking_dead(metrics_dir)]
        scrape = generated(exposed, EXPOSITION_TYPE)
        handlers[Operation.ADMIN_METRICS] = admin.computed(scrape)
        if settings.server.metrics.public:
            public[settings.server.metrics.path] = scrape
    observer = RequestObserver(metrics, AccessLog(is_enabled=settings.logging.access), decisions)
    authenticator = Authenticator(JwtVerifier(issuers, clock), keys=stores.keys,
                                  max_header_bytes=settings.server.max_auth_header_bytes)
    on_shutdown = [*stores.on_shutdown, *(child.stop for child in children), limiter.close,
                   http.close]
    if shared_replay is not None:
        on_shutdown.append(shared_replay.close)
    if tracing is not None:
        on_shutdown.append(_closing(tracing))
    return Gateway(authenticator=authenticator, guard=guard, handlers=handlers, public=public,
                   observer=observer, tracing=tracing, forms=console.forms,
                   sessions=console.sessions, router=Router(settings.console.path),
                   resource_metadata={MCP_PREFIX + server.config.name: server.metadata_url
                                      for server in mcp_servers},
                   resource_audiences=frozenset(resources), on_startup=[
                       *stores.on_startup, *(child.start for child in children),
                       background(*(cache.warm_until_loaded for cache in caches))],
                   on_shutdown=on_shutdown)


def _build_tracing(settings: Settings) -> Tracing | None:
    if not settings.tracing.enabled:
        return None
    # Imported here, not above: OpenTelemetry is an optional extra, needed only when tracing
    # is on, and the gateway must start without it otherwise.
    from rolegate.observability.tracing import Tracing
    return Tracing.export(settings.tracing)


def _closing(tracing: Tracing) -> Hook:
    async def close() -> None:  # the last export is a blocking HTTP request: off the loop
        await asyncio.to_thread(tracing.close)
    return close


def _handler_table(proxy: ProxyHandlers, admin: AdminHandlers, key_admin: KeyAdmin,
                   usage_admin: UsageAdmin, dimensions: tuple[str, ...]
                   ) -> dict[Operation, Handler]:
    """Route operation (`api/routes.py`) -> the handler that serves it. The gateway refuses to
    start when an operation has none."""
    handlers: dict[Operation, Handler] = {operation: proxy.inference
                                          for operation in INFERENCE_OPERATIONS}
    handlers.update({
        Operation.MODELS_LIST: proxy.list_models, Operation.MODELS_GET: proxy.get_model,
        Operation.GEMINI_MODELS_LIST: proxy.list_gemini_models,
        Operation.GEMINI_MODELS_GET: proxy.get_gemini_model,
        Operation.ADMIN_POLICY: admin.policy, Operation.ADMIN_UNKNOWN: admin.not_found,
        Operation.ADMIN_OPENAPI: admin.static(json_response(
            openapi_document(dimensions)).body),
        Operation.ADMIN_KEYS_LIST: key_admin.list_keys,
        Operation.ADMIN_KEYS_CREATE: key_admin.create, Operation.ADMIN_KEYS_GET: key_admin.get,
        Operation.ADMIN_KEYS_UPDATE: key_admin.update,
        Operation.ADMIN_KEYS_REVOKE: key_admin.revoke, Operation.ADMIN_USAGE: usage_admin.report,
        Operation.ADMIN_METRICS: admin.not_found,  # metrics off: as an unknown admin path
    })
    return handlers


@dataclass
class _Stores:
    """What lives in the database, and the hooks that open and drain it."""

    database: _DatabaseOpening | None = None
    key_store: KeyStore | None = None
    keys: ApiKeyVerifier | None = None
    usage: UsageStore | None = None
    recorder: Recorder | None = None
    audit: AuditLog | None = None
    on_startup: list[Hook] = field(default_factory=list)
    on_shutdown: list[Hook] = field(default_factory=list)


def _build_stores(settings: Settings, clock: Callable[[], float]) -> _Stores:
    stores = _Stores()
    if settings.database.url is None:
        return stores
    database = Database(settings.database)
    stores.database = _DatabaseOpening(database)
    stores.on_startup.append(stores.database.open)
    if settings.keys.enabled:
        stores.key_store = KeyStore(database.engine, KeyHasher(read_pepper(settings.keys)))
        stores.keys = ApiKeyVerifier(stores.key_store, clock, cache_ttl=settings.keys.cache_ttl)
        last_used = PeriodicTask(stores.keys.flush_last_used,
                                 every=settings.keys.last_used_interval)
        stores.on_startup.append(last_used.start)
        stores.on_shutdown.append(last_used.stop)
    stores.usage = UsageStore(database.engine)
    if settings.accounting.enabled:
        accounting = settings.accounting
        dead_letters = accounting.dead_letter_dir
        spool = None if accounting.spool_dir is None else Spool(
            Path(accounting.spool_dir), max_bytes=accounting.spool_max_bytes)
        stores.recorder = Recorder(stores.usage, flush_interval=accounting.flush_interval,
                                   batch_size=accounting.batch_size, clock=clock,
                                   dead_letter_dir=None if dead_letters is None
                                   else Path(dead_letters), spool=spool,
                                   is_write_ahead=accounting.write_ahead)
        stores.on_startup.append(stores.recorder.start)
        stores.on_shutdown.append(stores.recorder.stop)
    if settings.audit.enabled:
        audit = settings.audit
        stores.audit = AuditLog(AuditStore(database.engine), flush_interval=audit.flush_interval,
                                batch_size=audit.batch_size, clock=clock,
                                mirror=None if audit.mirror_file is None
                                else Path(audit.mirror_file))
        stores.on_startup.append(stores.audit.start)
        stores.on_shutdown.append(stores.audit.stop)
    stores.on_shutdown.append(database.close)
    return stores


class _DatabaseOpening:
    """At start-up, migrates the schema (`database.migrate_on_start`) or verifies it is current:
    a gateway on an unmigrated schema would report ready and answer every key lookup with 503.
    `check` is the readiness check."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._state: str | None = "not opened yet"

    def check(self) -> str | None:
        return self._state

    async def open(self) -> None:
        database = self._database
        try:
            if database.migrates_on_start:
                await database.upgrade()
            else:
                await database.verify_schema()
        except SchemaBehind as exc:
            await database.close()  # no shutdown follows a failed start-up
            raise StartupFailed(f"{exc}: run `rolegate db upgrade` first, or set "
                                "database.migrate_on_start: true.") from None
        except (SQLAlchemyError, OSError) as exc:
            await database.close()
            raise StartupFailed(f"The database cannot be opened: {first_line(exc)}") from None
        self._state = None


def _keys_loaded(cache: JwksCache) -> Check:
    def check() -> str | None:
        if cache.is_loaded:
            return None
        if cache.last_error is None:
            return "signing keys not fetched yet"
        return f"signing keys unavailable: {cache.last_error}"
    return check


def _build_shared_replay(settings: Settings, clock: Callable[[], float]) -> SharedReplay | None:
    """With Redis configured for the limits and an issuer with `replay_protection`, the accepted
    `jti`s are kept there, shared by every process and replica (`authn/shared_replay.py`)."""
    limits = settings.limits
    if limits.backend != "redis" or not any(issuer.replay_protection
                                            for issuer in settings.auth.issuers):
        return None
    assert limits.url is not None
    redis = Redis.from_url(limits.url, socket_connect_timeout=limits.timeout)
    return SharedReplay(redis, prefix=limits.prefix, timeout=limits.timeout,
                        is_fail_open=limits.fail_open, clock=clock)


def _build_limiter(settings: Settings, clock: Callable[[], float]) -> Limiter:
    if settings.limits.backend == "redis":
        exact = RedisLimiter(settings.limits)
        if settings.limits.lease is not None:
            return LeasedLimiter(exact, settings.limits.lease, clock)
        return exact
    return MemoryLimiter()


def create_app_from_env() -> Gateway:
    """The app of one `rolegate serve --workers N` worker process (uvicorn's app factory).

    The parent validated the configuration, wrote the development issuer's key to the state
    directory and exported its options (`config/launch.py`); every worker builds the same app,
    then freezes its start-up heap (`server/heap.py`).
    """
    options = LaunchOptions.from_environ()
    settings = options.settings()
    configure_process_logging(settings.logging.level, settings.logging.format)
    dev_issuer = None
    if settings.auth.dev_issuer.enabled:
        assert options.state_dir is not None, "from_environ always names a state directory"
        dev_issuer = DevIssuer.load(options.state_dir)
    mcp_key, console_key = options.mcp_session_key, options.console_session_key
    app = build_app(settings, dev_issuer=dev_issuer,
                    mcp_session_key=bytes.fromhex(mcp_key) if mcp_key else None,
                    session_secret=bytes.fromhex(console_key) if console_key else None,
                    metrics_dir=options.metrics_dir)
    freeze_startup_heap()  # uvicorn's worker serves with its own server class, not `serve`'s
    return app


def _build_metrics(settings: Settings, registry: CollectorRegistry) -> GatewayMetrics | None:
    if not settings.server.metrics.enabled:
        return None
    models = {model.name: [model.deployment_id(index) for index in range(len(model.deployments))]
              for model in settings.models}
    return GatewayMetrics(registry, models=models, rules=[rule.name for rule in settings.policy])


def _model_route(model: ModelConfig, routing: RoutingConfig, http: HttpClient,
                 clock: Callable[[], float], rng: random.Random,
                 metrics: GatewayMetrics | None, egress: EgressConfig,
                 tracing: Tracing | None, estimator: TokenEstimator) -> ModelRoute:
    deployments = []
    for index, config in enumerate(model.deployments):
        deployment_id = model.deployment_id(index)
        provider = build_provider(config, http, clock, estimator, egress)
        if metrics is not None:
            provider = MeasuredProvider(provider, metrics.deployment(model.name, deployment_id))
        if tracing is not None:
            provider = tracing.traced(provider, deployment_id, model.upstream_model(index))
        deployments.append(Deployment(deployment_id, model.upstream_model(index), provider,
                                      routing.health))
    return ModelRoute(model, deployments, build_selector(model.strategy, rng))


def _trusted_dev(dev: DevIssuer, clock: Callable[[], float],
                 paths: tuple[str, ...], resources: tuple[str, ...] = (),
                 audience: str | None = None) -> TrustedIssuer:
    """The development issuer, trusted for its audience and the MCP servers' `resources` (or
    for `audience` alone: the console's ID tokens)."""
    document = dev.jwks_document()

    async def local(url: str) -> bytes:  # served from memory: no request to ourselves
        return document
    config = accepting(dev.issuer_config(), resources)
    if audience is not None:
        config = config.model_copy(update={"audiences": (audience,)})
    return TrustedIssuer.build(config, local, clock, paths)


def _session_key(settings: Settings, given: bytes | None) -> bytes:
    secret = settings.mcp.session_secret
    if secret is not None:
        return secret.get_secret_value().encode()
    return given or secrets.token_bytes(32)


def _mcp_servers(settings: Settings, http: HttpClient, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[None]]) -> list[McpServer]:
    base = public_base_url(settings)
    limit = settings.server.max_auth_header_bytes
    return [McpServer(server, resource_url(base, server.name),
                      ServerCredential(server, http, clock, max_header_bytes=limit),
                      StdioServer(server, sleep=sleep) if server.command else None)
            for server in settings.mcp.servers]


def _new_dev_issuer(settings: Settings) -> DevIssuer:
    return DevIssuer.generate(dev_issuer_url(settings), settings.auth.dev_issuer.audience,
                              settings.auth.dev_issuer.token_ttl)


def dev_issuer_url(settings: Settings) -> str:
    return f"{public_base_url(settings)}/dev"


RECENT_DENIALS = 500  # the console's Decisions page: the last 401s and 403s, in memory
RECENT_MATCHES = 2000  # the console's Policy page: (rule, principal) pairs last granted


@dataclass
class _Console:
    """The console's handlers, its public paths (sign-in, stylesheet) and its sessions."""

    handlers: dict[Operation, Handler]
    public: dict[str, PublicHandler]
    forms: dict[str, PublicForm]
    sessions: SessionCookies | None


def _build_console(settings: Settings, dev: DevIssuer | None, *, fetch: Fetch,
                   http: HttpClient, clock: Callable[[], float], policy: RolePolicy,
                   stores: _Stores, decisions: DecisionLog,
                   secret: bytes | None = None) -> _Console:
    """The console, signing in with `console.issuer` or, unset, the development issuer when it
    is on; with neither (or `console.enabled: false`) its routes answer 404."""
    config = settings.console
    issuer = next((i for i in settings.auth.issuers if i.name == config.issuer), None)
    is_on = config.enabled and (issuer is not None or (config.issuer is None and dev is not None))
    paths = ConsolePaths.at(config.path)
    renderer = Renderer(paths.home)
    console = _Console({}, {}, {}, None)
    if is_on:
        console = _console_sign_in(settings, issuer, dev, renderer, fetch=fetch, http=http,
                                   clock=clock, secret=(
                                       config.session_secret.get_secret_value().encode()
                                       if config.session_secret
                                       else secret or secrets.token_bytes(32)))

    def can_change(who: Principal) -> bool:
        return policy.decide(who, Action(RouteGroup.ADMIN, f"{paths.home}/keys")).allowed

    pages = ConsolePages(renderer, console.sessions, keys=stores.key_store,
                         audit=stores.audit, explainer=_console_explainer(
                             settings, dev, stores.key_store, fetch, clock),
                         can_change=can_change, key_changes=key_changes, clock=clock,
                         denials=decisions.denials)
    usage = UsagePages(stores.usage, clock, pages.page,
                       dimensions=settings.accounting.dimensions)
    overview = OverviewPage(stores.usage, decisions.denials, clock, pages.page)
    matches = decisions.matches
    console.handlers.update({
        Operation.CONSOLE_HOME: overview.show, Operation.CONSOLE_KEYS: pages.keys,
        Operation.CONSOLE_DECISIONS: pages.decisions,
        Operation.CONSOLE_USAGE: usage.report, Operation.CONSOLE_USAGE_CSV: usage.download,
        Operation.CONSOLE_POLICY: pages.shown("policy.html", page="policy", live=lambda: {
                                              "matches": matches.by_rule() if matches else {}},
                                              issuers=[*settings.auth.issuers,
                                                       *([dev.issuer_config()] if dev else [])],
                                              models=settings.models, rules=settings.policy),
        Operation.CONSOLE_KEYS_CREATE: pages.create_key,
        Operation.CONSOLE_KEYS_EDIT: pages.edit_key,
        Operation.CONSOLE_KEYS_UPDATE: pages.update_key,
        Operation.CONSOLE_KEYS_REVOKE: pages.revoke_key, Operation.CONSOLE_EXPLAIN: pages.explain,
        Operation.CONSOLE_SIGN_OUT: pages.sign_out})
    return console


def _console_sign_in(settings: Settings, issuer: IssuerConfig | None, dev: DevIssuer | None,
                     renderer: Renderer, *, fetch: Fetch, http: HttpClient,
                     clock: Callable[[], float], secret: bytes) -> _Console:
    """The console's sessions, and its public paths: sign-in (with `issuer` or, None, the
    development issuer), its stylesheet and script."""
    config = settings.console
    paths = ConsolePaths.at(config.path)
    base = public_base_url(settings)
    cookies = SessionCookies(secret, prefix=paths.home, is_secure=not _is_loopback_http(base),
                             clock=clock, idle=config.idle_timeout,
                             absolute=config.absolute_timeout)
    redirect_uri = f"{base}{paths.callback}"
    forms: dict[str, PublicForm] = {}
    exchange: CodeExchange
    if issuer is not None:  # an OIDC issuer of auth.issuers; config checks its endpoints
        # An ID token: for the console's client id, and of whatever `typ` the issuer gives
        # ID tokens (`token_types` names the access tokens' type, such as at+jwt).
        trusted = TrustedIssuer.build(issuer.model_copy(
            update={"audiences": (config.client_id,), "token_types": None}), fetch, clock)
        client_secret = config.client_secret.get_secret_value() if config.client_secret \
            else None
        exchange = TokenEndpoint(http, str(config.token_url), config.client_id, client_secret)
        authorize = str(config.authorization_url)
    else:
        assert dev is not None
        trusted = _trusted_dev(dev, clock, (), audience=config.client_id)
        exchange = dev_authorizer = DevAuthorizer(
            dev, renderer, client_id=config.client_id, redirect_uri=redirect_uri,
            default_roles=(DEFAULT_ADMIN_ROLE,), secret=secret, clock=clock)
        authorize = f"{base}{DEV_AUTHORIZE}"
        forms[DEV_AUTHORIZE] = dev_authorizer.authorize
    sign_in = OidcSignIn(cookies, JwtVerifier([trusted], clock), exchange,
                         authorization_url=authorize, client_id=config.client_id,
                         redirect_uri=redirect_uri, secret=secret, clock=clock)
    forms[paths.sign_in] = sign_in.start
    forms[paths.callback] = sign_in.finish
    public: dict[str, PublicHandler] = {
        paths.style: static_file("console.css", b"text/css; charset=utf-8"),
        paths.script: static_file("console.js", b"text/javascript; charset=utf-8")}
    return _Console({}, public, forms, cookies)


def _console_explainer(settings: Settings, dev: DevIssuer | None, keys: KeyStore | None,
                       fetch: Fetch, clock: Callable[[], float]) -> Explainer:
    """The Explain page's reports: `rolegate explain`'s, from the gateway's own issuers (the
    development issuer's key set read from memory) and key store."""
    configs = list(settings.auth.issuers) + ([dev.issuer_config()] if dev else [])
    dev_fetch = _dev_fetch(dev, fetch)

    async def explainer(question: Question) -> dict[str, Any]:
        route, model = question.route, question.model
        if question.key_id is not None:
            report = await explain_key_id(settings, keys, question.key_id, route, model, clock)
        elif question.claims is not None:
            report = await explain_claims(settings, configs, question.claims, route, model,
                                          clock)
        elif is_api_key(credential := question.credential or ""):
            report = await explain_key(settings, keys, credential, route, model, clock)
        else:
            report = await explain(settings, configs, credential, route, model, dev_fetch,
                                   clock)
        return report.to_dict()
    return explainer


def _is_loopback_http(base: str) -> bool:
    """Plain HTTP on loopback (development): the one place a session cookie may lack Secure."""
    url = urlsplit(base)
    return url.scheme == "http" and url.hostname in ("127.0.0.1", "localhost", "::1")


def _dev_fetch(dev: DevIssuer | None, fetch: Fetch) -> Fetch:
    """`fetch`, except that the development issuer's key set is read from memory."""
    if dev is None:
        return fetch
    document, url = dev.jwks_document(), dev.issuer_config().jwks_url

    async def local(wanted: str) -> bytes:
        return document if wanted == url else await fetch(wanted)
    return local
