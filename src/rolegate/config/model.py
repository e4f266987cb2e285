"""The typed configuration tree: frozen pydantic models, validated before anything serves.

`Settings` is the root. Each object that needs configuration receives its own slice in its
constructor; nothing reads a global settings object.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, Field, SecretStr, field_validator, model_validator,
)

from rolegate.config.egress import DIRECT, parse_proxy

ASYMMETRIC_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)
PRESETS = ("entra", "keycloak", "okta", "auth0", "generic")
TENANT_PLACEHOLDER = "{tenantid}"


def _as_tuple(value: object) -> object:
    """Accept a single string where a list is expected: `roles: admin` means `[admin]`."""
    if isinstance(value, str):
        return (value,)
    return value


Strings = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]


class Frozen(BaseModel, frozen=True, extra="forbid"):
    pass


class MetricsConfig(Frozen):
    """Prometheus metrics. Administrators can always read them at `/admin/metrics`; `public`
    also serves them at `path` without a credential, as most gateways do on their own port."""

    enabled: bool = Field(True, description="Collect and serve metrics.")
    public: bool = Field(True, description="Serve them at `path` without a credential.")
    path: str = Field("/metrics", pattern=r"^/[A-Za-z0-9._/-]{1,127}$",
                      description="Where the unauthenticated metrics are served.")


class ServerConfig(Frozen):
    """Where rolegate listens and how much it accepts from one request."""

    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8080, ge=0, le=65535, description="Port to bind (0 picks a free one).")
    max_body_bytes: int = Field(8 * 1024 * 1024, gt=0, description="Larger bodies get 413.")
    max_auth_header_bytes: int = Field(16 * 1024, gt=0,
                                       description="Larger Authorization headers get 401.")
    max_header_bytes: int = Field(
        64 * 1024, ge=1024, description="Request line plus all headers; more gets 431 and the "
        "connection is closed.")
    header_timeout: float = Field(
        10.0, gt=0, description="Seconds a connection may take to send a request's headers "
        "(also bounds an idle new connection); then it is closed.")
    body_timeout: float = Field(
        30.0, gt=0, description="Seconds a client may take to send a request body; then 408.")
    keep_alive_timeout: float = Field(
        5.0, gt=0, description="Seconds an idle keep-alive connection stays open.")
    public_base_url: str | None = Field(
        None, description="URL callers use to reach rolegate; names the development issuer.")
    metrics: MetricsConfig = MetricsConfig()


PROVIDERS = ("openai", "azure", "openai-compatible", "mock")
STRATEGIES = ("weighted-round-robin", "least-in-flight", "latency")
_DEPLOYMENT_KEYS = ("id", "provider", "api_base", "api_key", "auth", "model", "deployment",
                    "api_version", "weight", "rpm", "tpm", "timeout", "connect_timeout",
                    "first_byte_timeout", "stream_idle_timeout", "include_stream_usage",
                    "proxy", "ca_bundle_file", "client_cert_file", "client_key_file",
                    "project", "location", "credentials_file", "region",
                    "aws_profile", "aws_access_key_id", "aws_secret_access_key",
                    "aws_session_token")


def _proxy_url(value: str | None) -> str | None:
    if value is not None and value != DIRECT:
        parse_proxy(value)
    return value


ProxyUrl = Annotated[str | None, AfterValidator(_proxy_url)]


class EgressConfig(Frozen):
    """How upstream connections go out: a forward proxy and the CA bundle that verifies
    upstreams (for a TLS-intercepting proxy, its CA). Unset proxy keys are taken from the
    standard variables `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`."""

    https_proxy: ProxyUrl = Field(None, description="Proxy for https upstreams (CONNECT "
                                  "tunnel): http://[user:password@]host:port.")
    http_proxy: ProxyUrl = Field(None, description="Proxy for plain-http upstreams.")
    no_proxy: str | None = Field(None, description="Hosts, domains (`.example.com`) and networks "
                                 "(`10.0.0.0/8`) reached directly; `*` for all.")
    ca_bundle_file: str | None = Field(
        None, description="PEM file of the CAs that verify upstreams, instead of the system's.")


class UpstreamAuthConfig(Frozen):
    """How the gateway itself signs in to an upstream with a token instead of an API key:
    OAuth 2.0 client credentials (RFC 6749 §4.4) at `token_url`, cached until shortly before
    it expires."""

    type: Literal["entra_client_credentials"]
    token_url: str = Field(min_length=1, description="The token endpoint.")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr = Field(description="Use ${ENV}.")
    scope: str = Field("https://cognitiveservices.azure.com/.default",
                       description="The scope asked for.")


class DeploymentConfig(Frozen):
    """One upstream that serves a model: a provider, where it is, and how much it takes."""

    id: str | None = Field(None, min_length=1, max_length=128,
                           description="Name shown in `x-rolegate-deployment`; defaults to "
                           "`<model>` or `<model>-<n>`. Never a URL or key.")
    provider: Literal["openai", "azure", "openai-compatible", "anthropic", "gemini", "vertex",
                      "bedrock", "mock"]
    api_base: str | None = Field(None, description="Upstream base URL (openai, anthropic: up "
                                 "to /v1; gemini: up to /v1beta, its default Google's; vertex: "
                                 "up to /v1, default `https://{location}-aiplatform."
                                 "googleapis.com/v1`; bedrock: default "
                                 "https://bedrock-runtime.<region>.amazonaws.com).")
    api_key: SecretStr | None = Field(None, description="Upstream credential; use ${ENV}.")
    auth: UpstreamAuthConfig | None = Field(None, description="Token-based upstream sign-in.")
    model: str | None = Field(None, description="Upstream model name; defaults to the model's.")
    deployment: str | None = Field(None, description="Azure deployment name.")
    api_version: str | None = Field(None, description="Azure `api-version` query parameter.")
    project: str | None = Field(None, min_length=1, description="Vertex AI: the Google Cloud "
                                "project id.")
    location: str | None = Field(None, pattern=r"^[a-z0-9-]+$", description="Vertex AI: the "
                                 "region (`us-central1`), or `global`.")
    credentials_file: str | None = Field(
        None, description="Vertex AI: a service-account JSON key file; default: Google's "
        "application default credentials.")
    weight: float = Field(1.0, gt=0, description="Share of traffic under weighted round-robin.")
    rpm: int | None = Field(None, gt=0, description="Requests per minute this deployment takes.")
    tpm: int | None = Field(None, gt=0, description="Tokens per minute this deployment takes.")
    timeout: float = Field(600.0, gt=0, description="Seconds for the whole upstream call (504).")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to open the connection.")
    first_byte_timeout: float = Field(
        120.0, gt=0, description="Seconds until the first byte of the reply (then retried).")
    stream_idle_timeout: float = Field(
        60.0, gt=0, description="Seconds a started stream may go without a chunk before it is "
        "cut with an SSE error event.")
    include_stream_usage: bool = Field(
        True, description="Ask for `stream_options.include_usage` upstream even when the caller "
        "did not (the usage chunk is then kept from that caller).")
    proxy: ProxyUrl = Field(None, description="This deployment's proxy URL, or `direct`; "
                            "default: `egress`'s proxy for the upstream's scheme.")
    ca_bundle_file: str | None = Field(
        None, description="PEM file of the CAs that verify this upstream (default: "
        "`egress.ca_bundle_file`, else the system's).")
    client_cert_file: str | None = Field(
        None, description="PEM client certificate (mTLS), with its key unless `client_key_file`.")
    client_key_file: str | None = Field(None, description="PEM private key of `client_cert_file`.")
    region: str | None = Field(None, pattern=r"^[a-z0-9-]+$", description="bedrock: the AWS "
                               "region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's).")
    aws_profile: str | None = Field(None, min_length=1, description="bedrock: the profile of "
                                    "the shared AWS config and credentials files to sign with "
                                    "(default: the standard credential chain).")
    aws_access_key_id: SecretStr | None = Field(None, description="bedrock: a static access "
                                                "key instead of the credential chain; use ${ENV}.")
    aws_secret_access_key: SecretStr | None = Field(None, description="bedrock: its secret; "
                                                    "use ${ENV}.")
    aws_session_token: SecretStr | None = Field(None, description="bedrock: the session token "
                                                "of temporary static credentials; use ${ENV}.")

    @model_validator(mode="after")
    def _provider_fields(self) -> DeploymentConfig:
        problems = []
        if self.provider in ("openai", "openai-compatible", "azure", "anthropic") \
                and not self.api_base:
            problems.append(f"provider {self.provider} needs api_base")
        if self.provider == "azure" and not (self.deployment and self.api_version):
            problems.append("provider azure needs deployment and api_version")
        if self.provider == "anthropic" and self.auth is not None:
            problems.append("provider anthropic signs in with api_key, not auth")
        problems += self._google_problems()
        if self.provider == "bedrock" and (self.api_key is not None or self.auth is not None):
            problems.append("provider bedrock signs its requests with AWS credentials (SigV4, "
                            "the standard credential chain or aws_profile), not api_key or auth")
        aws = ("region", "aws_profile", "aws_access_key_id", "aws_secret_access_key",
               "aws_session_token")
        if self.provider != "bedrock" and any(getattr(self, name) for name in aws):
            problems.append(f"{', '.join(aws)} are for provider bedrock")
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            problems.append("give aws_access_key_id and aws_secret_access_key together")
        if self.aws_session_token is not None and self.aws_access_key_id is None:
            problems.append("aws_session_token needs aws_access_key_id")
        if self.aws_access_key_id is not None and self.aws_profile is not None:
            problems.append("give aws_profile or static AWS keys, not both")
        if self.api_key is not None and self.auth is not None:
            problems.append("give api_key or auth, not both")
        if self.client_key_file is not None and self.client_cert_file is None:
            problems.append("client_key_file needs client_cert_file")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _google_problems(self) -> list[str]:
        if self.provider == "gemini" and (self.api_key is None or self.auth is not None):
            return ["provider gemini signs in with api_key (Google AI Studio's key), not auth"]
        if self.provider == "vertex":
            problems = [] if self.project and self.location else [
                "provider vertex needs project and location"]
            if self.api_key is not None or self.auth is not None:
                problems.append("provider vertex signs in with Google credentials "
                                "(credentials_file, or application default credentials), "
                                "not api_key or auth")
            return problems
        if self.project or self.location or self.credentials_file:
            return ["project, location and credentials_file are for provider vertex"]
        return []


class ModelConfig(Frozen):
    """A model name callers use, the deployments that serve it, and where to go when they fail.

    A single deployment may be written inline (`provider`, `api_base`, … next to `name`);
    several go under `deployments:`.
    """

    name: str = Field(min_length=1, description="The public model name callers send.")
    deployments: tuple[DeploymentConfig, ...] = Field(
        (), description="The upstreams serving this model (or one written inline).")
    strategy: Literal["weighted-round-robin", "least-in-flight", "latency"] = Field(
        "weighted-round-robin", description="How a deployment is picked for each attempt.")
    fallbacks: Strings = Field((), description="Models tried in order when every deployment "
                               "failed; skipped when the caller's policy does not grant them.")
    context_window_fallbacks: Strings = Field(
        (), description="Models tried in order when the upstream says the prompt is too long "
        "(`context_length_exceeded`).")
    input_cost_per_1k: float = Field(0.0, ge=0, description="USD per 1,000 prompt tokens.")
    output_cost_per_1k: float = Field(0.0, ge=0, description="USD per 1,000 completion tokens.")

    @model_validator(mode="before")
    @classmethod
    def _inline_deployment(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        inline = {key: data[key] for key in _DEPLOYMENT_KEYS if key in data}
        if not inline:
            return data
        if "deployments" in data:
            raise ValueError(f"give the deployment inline or under `deployments`, not both "
                             f"(inline keys: {', '.join(inline)})")
        rest = {key: value for key, value in data.items() if key not in inline}
        return {**rest, "deployments": [inline]}

    @model_validator(mode="after")
    def _has_deployment(self) -> ModelConfig:
        if not self.deployments:
            raise ValueError("a model needs a provider (inline) or a `deployments` list")
        return self

    def deployment_id(self, index: int) -> str:
        configured = self.deployments[index].id
        if configured is not None:
            return configured
        return self.name if len(self.deployments) == 1 else f"{self.name}-{index + 1}"

    def upstream_model(self, index: int) -> str:
        return self.deployments[index].model or self.name


class RetryConfig(Frozen):
    """Retries of failed upstream attempts (connect errors, timeouts before the first byte,
    429, 500/502/503/504), on another deployment when there is one."""

    max_attempts: int = Field(3, ge=1, le=20, description="Attempts per model, first included.")
    backoff_initial: float = Field(0.2, ge=0, description="Seconds before the first retry.")
    backoff_max: float = Field(5.0, ge=0, description="Cap on one back-off wait.")
    max_retry_after: float = Field(
        10.0, ge=0, description="Longest upstream `Retry-After` waited for; longer ones move on.")
    deadline: float = Field(120.0, gt=0, description="Seconds for all attempts and fallbacks.")


class HealthConfig(Frozen):
    """The circuit breaker: a deployment failing `failures` times in a row cools down."""

    failures: int = Field(3, ge=1, description="Consecutive failures that open the circuit.")
    cooldown: float = Field(30.0, gt=0, description="Seconds before one probe request is let "
                            "through again.")
    rate_limit_cooldown: float = Field(
        10.0, gt=0, description="Seconds a deployment rests after a 429 without Retry-After.")


class RoutingConfig(Frozen):
    retries: RetryConfig = RetryConfig()
    health: HealthConfig = HealthConfig()


class ClaimsConfig(Frozen):
    """Where a token keeps each part of the caller's identity: dotted claim paths, first hit wins
    (for lists: every path is read and the values are joined)."""

    roles: Strings | None = None
    scopes: Strings | None = None
    groups: Strings | None = None
    client_id: Strings | None = None
    subject: Strings | None = None
    tenant: Strings | None = None


class IssuerConfig(Frozen):
    """A trusted token issuer. Tokens whose `iss` matches `issuer` are verified with its keys."""

    name: str = Field(min_length=1)
    preset: Literal["entra", "keycloak", "okta", "auth0", "generic"] = "generic"
    issuer: str = Field(min_length=1, description="Exact `iss`, or a template with {tenantid}.")
    tenants: Strings = Field((), description="Allowed tenant ids (`tid`); '*' allows any.")
    jwks_url: str | None = None
    discovery_url: str | None = Field(None, description="OIDC discovery document URL.")
    audiences: Strings = Field(min_length=1, description="Accepted `aud` values.")
    algorithms: Strings = ASYMMETRIC_ALGORITHMS
    leeway: float = Field(60.0, ge=0, le=600, description="Clock skew allowed on exp/nbf/iat.")
    jwks_ttl: float = Field(600.0, gt=0, description="Seconds a fetched key set stays fresh.")
    jwks_max_stale: float = Field(
        1800.0, ge=0, description="Seconds past the TTL cached keys serve while the IdP is "
        "unreachable; 0 fails closed at once.")
    jwks_refreshes_per_minute: int = Field(3, ge=1, le=60,
                                           description="Budget of fetches on unknown `kid`.")
    required_claims: Strings = Field((), description="Claims that must be present besides exp.")
    replay_protection: bool = Field(
        False, description="Accept each token (by `jti`) once, until it expires; tokens "
        "without `jti` are refused. For one-time tokens, not for reusable access tokens.")
    token_types: Strings | None = Field(None, description="Accepted header `typ` values.")
    claims: ClaimsConfig = ClaimsConfig()
    end_user_claim: str | None = Field(None, description="Claim forwarded upstream as `user`.")
    resource_client: str | None = Field(
        None, description="Keycloak: the client whose `resource_access` roles count.")

    @field_validator("algorithms")
    @classmethod
    def _only_asymmetric(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [alg for alg in value if alg not in ASYMMETRIC_ALGORITHMS]
        if bad:
            raise ValueError(f"algorithms {bad} are not allowed for a key-set issuer "
                             f"(allowed: {', '.join(ASYMMETRIC_ALGORITHMS)})")
        if not value:
            raise ValueError("algorithms must not be empty")
        return value

    @model_validator(mode="after")
    def _key_source_and_tenants(self) -> IssuerConfig:
        problems = []
        if bool(self.jwks_url) == bool(self.discovery_url):
            problems.append("give exactly one of jwks_url or discovery_url")
        if TENANT_PLACEHOLDER in self.issuer and not self.tenants:
            problems.append("an issuer template with {tenantid} needs a `tenants` allow-list "
                            "(use ['*'] to accept every tenant deliberately)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def is_template(self) -> bool:
        return TENANT_PLACEHOLDER in self.issuer


class DevIssuerConfig(Frozen):
    """A development issuer: a key pair made at start-up, keys served by rolegate itself."""

    enabled: bool = False
    audience: str = "rolegate"
    token_ttl: int = Field(3600, gt=0)


class ConsoleConfig(Frozen):
    """The admin console: server-rendered pages at `/console`, signed in with OpenID Connect."""

    enabled: bool = Field(True, description="Serve the console (it needs an issuer to sign in).")
    # Segments of letters, digits and `._~-`, but never `.` or `..`: a browser resolves those
    # away, so the console and its cookie's path would be somewhere other than configured.
    path: str = Field("/console", pattern=r"^(/([A-Za-z0-9_~-][A-Za-z0-9._~-]*"
                      r"|\.[A-Za-z0-9_~-][A-Za-z0-9._~-]*|\.\.[A-Za-z0-9._~-]+))+$",
                      description="Where the console is served: an absolute path without a "
                      "trailing slash or dot segments, whose first segment no other route uses "
                      "(not /v1, /admin, /mcp, ...).")
    issuer: str | None = Field(
        None, description="Name of the auth.issuers entry to sign in with; None: the "
        "development issuer, when it is on.")
    client_id: str = Field("rolegate-console", description="The console's OIDC client id.")
    client_secret: SecretStr | None = Field(None, description="Use ${env:NAME}.")
    authorization_url: str | None = Field(None, description="The issuer's authorize endpoint.")
    token_url: str | None = Field(None, description="The issuer's token endpoint.")
    session_secret: SecretStr | None = Field(
        None, description="Signs session cookies (use ${env:NAME}; at least 32 characters); "
        "None: a random one made when `serve` starts, shared with its workers through the "
        "state directory, so sessions end on restart. Set it when replicas share sessions.")
    idle_timeout: int = Field(1800, gt=0, description="Seconds a session lives unused.")
    absolute_timeout: int = Field(28800, gt=0, description="Seconds a session lives at most.")


class AuthConfig(Frozen):
    issuers: tuple[IssuerConfig, ...] = ()
    dev_issuer: DevIssuerConfig = DevIssuerConfig()


class WhenConfig(Frozen):
    """Who a rule is for. Lists are any-of; keys are all-of."""

    authenticated: bool = Field(False, description="Match every authenticated caller.")
    roles: Strings = ()
    scopes: Strings = ()
    groups: Strings = ()
    clients: Strings = ()
    subjects: Strings = ()
    issuers: Strings = Field((), description="Issuer names (from auth.issuers).")
    tenants: Strings = ()
    claims: dict[str, Strings] = Field(default_factory=dict,
                                       description="dotted.path: [accepted values]")

    @model_validator(mode="after")
    def _not_empty(self) -> WhenConfig:
        conditions = (self.roles, self.scopes, self.groups, self.clients, self.subjects,
                      self.issuers, self.tenants, self.claims)
        if not self.authenticated and not any(conditions):
            raise ValueError("a rule needs at least one condition; to grant every "
                             "authenticated caller say `authenticated: true`")
        return self


class LimitConfig(Frozen):
    """Limits on one caller (a principal; per end user with `per_end_user`). Unset: unlimited."""

    rpm: int | None = Field(None, gt=0, description="Requests in any 60-second window.")
    tpm: int | None = Field(None, gt=0, description="Tokens per clock minute.")
    daily_tokens: int | None = Field(None, gt=0, description="Tokens per UTC day.")
    monthly_budget_usd: float | None = Field(None, gt=0, description="USD per UTC month.")
    per_end_user: bool = Field(False, description="Count each end user of a principal apart.")

    @property
    def is_empty(self) -> bool:
        return (self.rpm is None and self.tpm is None and self.daily_tokens is None
                and self.monthly_budget_usd is None)


# What a rule's or budget's limits count on: `principal` (each caller), `rule` (everyone the
# rule grants, together), `budget` (everyone drawing on a budget, together), `groups` (each of the
# caller's groups) or `claims.<path>` (each value of that claim in the caller's token).
PER_PATTERN = r"^(principal|rule|budget|groups|claims\.[^\s]{1,200})$"
CLAIMS_PREFIX = "claims."


def per_claim(per: str) -> str | None:
    """The claim path a `per:` counts on (`claims.tid` -> `tid`), or None."""
    return per[len(CLAIMS_PREFIX):] if per.startswith(CLAIMS_PREFIX) else None


def refuse_budget(per: str) -> str:
    if per == "budget":
        raise ValueError("per: budget is for `budgets:`; a rule's shared counter is "
                         "`per: rule`")
    return per


class RuleLimitConfig(LimitConfig):
    """A rule's limits, counted per principal (default), per claim value, per group, or shared
    by every caller the rule grants."""

    per: str = Field("principal", pattern=PER_PATTERN,
                     description="What the limits count on: principal, rule, groups or "
                     "claims.<dotted.path> (each value its own counter).")

    @field_validator("per")
    @classmethod
    def _not_budget(cls, value: str) -> str:
        return refuse_budget(value)


class BudgetConfig(LimitConfig):
    """A named limit several rules draw on (`allow.budgets`): shared by all of them (`per:
    budget`, the default), or per principal, group or claim value across those rules."""

    name: str = Field(min_length=1, max_length=200)
    per: str = Field("budget", pattern=PER_PATTERN,
                     description="What the budget counts on: budget (shared), principal, groups "
                     "or claims.<dotted.path>.")

    @field_validator("per")
    @classmethod
    def _not_rule(cls, value: str) -> str:
        if value == "rule":
            raise ValueError("per: rule is for a rule's limits; a budget shared by every rule "
                             "drawing on it is `per: budget`")
        return value


class ToolLimitConfig(Frozen):
    """Limits on the MCP tool calls a rule grants: each tool of each server has its own
    counter, per principal by default (`per` as for a rule's limits)."""

    rpm: int = Field(gt=0, description="Calls of one tool in any 60-second window.")
    per: str = Field("principal", pattern=PER_PATTERN,
                     description="What the limit counts on: principal, rule, groups or "
                     "claims.<dotted.path>, each tool apart.")
    per_end_user: bool = Field(False, description="Count each end user of a principal apart.")

    @field_validator("per")
    @classmethod
    def _not_budget(cls, value: str) -> str:
        return refuse_budget(value)

    def as_limits(self) -> LimitConfig:
        return LimitConfig(rpm=self.rpm, per_end_user=self.per_end_user)


class McpGrantConfig(Frozen):
    """What a rule grants on MCP servers (route group `mcp`): name globs per kind."""

    servers: Strings = Field(min_length=1, description="Names of `mcp.servers` (globs).")
    tools: Strings = Field((), description="Tool names (globs) `tools/call` may name.")
    resources: Strings = Field((), description="Resource URIs (globs) `resources/read` may name.")
    prompts: Strings = Field((), description="Prompt names (globs) `prompts/get` may name.")
    arguments: dict[str, Strings] = Field(default_factory=dict, description="Argument name -> "
                                          "globs: a `tools/call` this rule grants must pass "
                                          "each as a string matching one of them.")
    limits: ToolLimitConfig | None = Field(None, description="Calls per minute of each tool "
                                           "this rule grants, counted per principal (`per`).")


class AllowConfig(Frozen):
    """What a rule grants: route groups or path patterns, and model name globs."""

    routes: Strings = Field(min_length=1)
    models: Strings = ()
    mcp: McpGrantConfig | None = Field(None, description="MCP servers, tools, resources and "
                                       "prompts granted (with route group `mcp`).")
    limits: RuleLimitConfig | None = Field(None, description="Limits on each caller this rule "
                                           "grants (see `per`).")
    budgets: Strings = Field((), description="Names of `budgets` this rule's requests also "
                             "count on.")


class RuleConfig(Frozen):
    name: str = Field(min_length=1)
    when: WhenConfig
    allow: AllowConfig


class LoggingConfig(Frozen):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = Field(
        "json", description="`json`: every line of the process is one JSON object (`time`, "
        "`level`, `logger`, then the fields, or `message`, and `exception` for a traceback). "
        "`text`: `TIME LEVEL LOGGER MESSAGE`.")
    decisions: bool = Field(True, description="Log one JSON line per authentication failure "
                            "and authorization decision (`rolegate.decision`).")
    access: bool = Field(True, description="Log one JSON line per request (`rolegate.access`).")


class DatabaseConfig(Frozen):
    """Where keys and usage are kept. Unset `url` in a config file: `rolegate.db` next to it."""

    url: str | None = Field(None, description="SQLAlchemy async URL: sqlite+aiosqlite:///F or "
                            "postgresql+asyncpg://user@host/db.")
    db_schema: str | None = Field(None, alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$",
                                  description="PostgreSQL schema to use (search_path).")
    migrate_on_start: bool | None = Field(
        None, description="Apply migrations at start-up; default: yes for SQLite, no otherwise "
        "(run `rolegate db upgrade`).")

    @property
    def is_sqlite(self) -> bool:
        return self.url is not None and self.url.startswith("sqlite")


class KeysConfig(Frozen):
    """Virtual API keys (`rg-...`), stored as HMAC-SHA-256 hashes with a server-side pepper."""

    enabled: bool = False
    pepper: SecretStr | None = Field(None, description="The HMAC pepper; use ${ENV}.")
    pepper_file: str | None = Field(None, description="A file holding the pepper.")
    cache_ttl: float = Field(3.0, ge=0, le=60, description="Seconds a key lookup is cached; "
                             "a revocation reaches every replica within this time.")
    last_used_interval: float = Field(5.0, gt=0, description="Seconds between last-used writes.")

    @model_validator(mode="after")
    def _pepper(self) -> KeysConfig:
        if self.enabled and (self.pepper is None) == (self.pepper_file is None):
            raise ValueError("keys.enabled needs exactly one of pepper or pepper_file")
        return self


class LeaseConfig(Frozen):
    """Blocks of allowance each process takes from a Redis counter and spends locally, so most
    requests are checked without a round trip; limits are then approximate (see the README's
    Rate limits). A size of 0 keeps that kind of counter exact."""

    requests: int = Field(0, ge=0, description="Requests taken from an `rpm` counter at once.")
    tokens: int = Field(0, ge=0, description="Tokens taken from a token counter at once.")
    usd: float = Field(0.0, ge=0, description="USD taken from a budget counter at once.")
    ttl: float = Field(5.0, gt=0, le=60, description="Seconds a block is spent from before its "
                       "unused part is given back.")

    def size(self, kind: str) -> float:
        return (self.requests if kind == "requests" else self.tokens if kind == "tokens"
                else self.usd if kind == "cost" else 0)


class RateLimitsConfig(Frozen):
    """Where limit counters live: this process (`memory`) or Redis, shared by every replica."""

    backend: Literal["memory", "redis"] = "memory"
    url: str | None = Field(None, description="redis://host:port/db for backend redis.")
    prefix: str = Field("rolegate", min_length=1, description="Prefix of every Redis key.")
    fail_open: bool = Field(False, description="Serve when Redis is unreachable (else 503).")
    timeout: float = Field(1.0, gt=0, description="Seconds before a Redis call counts as failed.")
    default_reservation_tokens: int = Field(
        1024, ge=0, description="Output tokens a request that names no `max_tokens` reserves "
        "on token and budget limits until its usage is known.")
    lease: LeaseConfig | None = Field(
        None, description="Off (the default): every request is checked in Redis, exactly. "
        "Set: each process spends blocks of allowance locally (backend redis only).")

    @model_validator(mode="after")
    def _redis_url(self) -> RateLimitsConfig:
        if self.backend == "redis" and not self.url:
            raise ValueError("limits.backend redis needs limits.url")
        if self.lease is not None and self.backend != "redis":
            raise ValueError("limits.lease needs limits.backend redis (memory counters are "
                             "already local)")
        return self


# The groupings of usage totals every record has (accounting/store.py GROUPINGS has their
# columns); configured dimensions add their own names.
USAGE_GROUPINGS = ("principal", "client_id", "key", "end_user", "model", "day")
DIMENSION_NAME = re.compile(r"[!-~]{1,100}")


class AccountingConfig(Frozen):
    """Usage records: one per request that reached an upstream, written in batches."""

    enabled: bool = Field(True, description="Record usage (needs a database).")
    flush_interval: float = Field(1.0, gt=0, description="Seconds between batch writes.")
    batch_size: int = Field(500, gt=0, description="Most records in one write.")
    dead_letter_dir: str | None = Field(
        None, description="Where a usage record is appended (usage-dead-letters.jsonl) when "
        "the database refuses it even in the usage_dead_letters table; unset: the error log.")
    spool_dir: str | None = Field(
        None, description="Where usage records wait on disk (fsync'd JSON lines) while the "
        "database cannot take them, replayed in order when it can, and at the next start "
        "after a crash. Each process takes its own slot under it. Unset: `usage-spool` in "
        "`rolegate serve`'s state directory; with no state directory, records wait in memory.")
    spool_max_bytes: int = Field(
        256 << 20, gt=0, description="The spool's bound: once full, paid requests get 503 "
        "`usage_unrecorded` until the database takes records again.")
    write_ahead: bool = Field(
        False, description="Append each usage record to the spool before its response ends "
        "(one file write per request, no fsync), so a process killed outright loses none; "
        "otherwise a crash loses the records of the last `flush_interval`. Needs a spool.")
    dimensions: Strings = Field(
        (), description="Claims recorded with each usage record, for `usage --by <name>`: "
        "dotted claim paths (`tid`, `department`), or `groups` (the caller's groups).")

    @field_validator("dimensions")
    @classmethod
    def _dimension_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name in USAGE_GROUPINGS:
                raise ValueError(f"dimension {name!r} is a built-in grouping of usage "
                                 f"({', '.join(USAGE_GROUPINGS)}); it needs no dimension")
            if not DIMENSION_NAME.fullmatch(name):
                raise ValueError(f"dimension {name!r}: a claim path of 1-100 printable "
                                 "characters without spaces")
        if len(set(value)) != len(value):
            raise ValueError("dimensions: a name is listed twice")
        return value


class AuditConfig(Frozen):
    """The audit log: a hash-chained record of admin changes and, optionally, of every
    authorization decision, kept in the database (`rolegate audit verify` checks it)."""

    enabled: bool = Field(False, description="Keep the audit log (needs a database).")
    decisions: bool = Field(True, description="Also record every authorization decision "
                            "(allow and deny), written in batches off the request path.")
    mirror_file: str | None = Field(None, description="Also append each entry, as one JSON "
                                    "line, to this file.")
    flush_interval: float = Field(1.0, gt=0, description="Seconds between batch writes.")
    batch_size: int = Field(500, gt=0, description="Most entries in one write.")


class TracingConfig(Frozen):
    """OpenTelemetry traces (GenAI semantic conventions), exported over OTLP/HTTP. Off by
    default; needs the `otel` extra. Unset fields are filled from the standard `OTEL_*`
    environment variables (`config/otel.py`); a value in this file wins."""

    enabled: bool = Field(False, description="Trace every request.")
    endpoint: str = Field("http://localhost:4318/v1/traces", pattern=r"^https?://",
                          description="The OTLP/HTTP traces URL (protobuf).")
    headers: dict[str, str] = Field(default_factory=dict, description="Headers sent with each "
                                    "export (e.g. an API key; use ${env:NAME}).")
    service_name: str = Field("rolegate", min_length=1, description="The `service.name`.")
    sample_ratio: float = Field(1.0, ge=0, le=1, description="Share of new traces recorded; a "
                                "caller's `traceparent` decides for the traces it continues.")
    export_timeout: float = Field(10.0, gt=0, description="Seconds one export may take.")


class McpServerAuthConfig(Frozen):
    """How rolegate signs in to an MCP server with a bearer token: as itself with OAuth 2.0
    client credentials (RFC 6749 §4.4), or acting for the caller with a token obtained by token
    exchange (RFC 8693) from the caller's validated token, which goes to `token_url` only."""

    type: Literal["client_credentials", "token_exchange"]
    token_url: str = Field(pattern=r"^https?://", description="The token endpoint.")
    client_id: str = Field(min_length=1, description="rolegate's client id there.")
    client_secret: SecretStr = Field(description="Use ${env:NAME}.")
    scope: str | None = Field(None, description="The scope asked for (space-separated).")
    audience: str | None = Field(None, description="token_exchange: the `audience` asked for, "
                                 "besides `resource` (the server's URL).")


class McpServerConfig(Frozen):
    """An MCP server proxied at `/mcp/{name}`: reached over Streamable HTTP (`url`), or run by
    rolegate as a child process speaking stdio (`command`)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    url: str | None = Field(None, pattern=r"^https?://",
                            description="The server's Streamable HTTP endpoint.")
    command: tuple[str, ...] | None = Field(
        None, min_length=1, description="argv of a stdio server rolegate starts, restarts "
        "when it exits, and stops on shutdown.")
    env: dict[str, str] = Field(default_factory=dict, description="The stdio server's "
                                "environment (values as `${env:NAME}`), besides PATH, HOME, "
                                "USER, LANG and the like.")
    headers: dict[str, str] = Field(default_factory=dict, description="Headers rolegate sends "
                                    "to the server as its own credential, values as "
                                    "`${env:NAME}`; the caller's token is never forwarded.")
    timeout: float = Field(30.0, gt=0, description="Seconds the server may take to connect, to "
                           "answer, and between two parts of a stream.")
    auth: McpServerAuthConfig | None = Field(None, description="A bearer token for the server "
                                             "from a token endpoint (its `Authorization`).")
    on_tool_change: Literal["log", "hide"] = Field(
        "log", description="When the server changes a tool's definition after rolegate first "
        "saw it: `log` a warning, or also `hide` the tool (left out of lists, calls refused) "
        "until restart.")

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.url is None) == (self.command is None):
            raise ValueError("set exactly one of url (Streamable HTTP) or command (stdio)")
        if self.command is not None and (self.headers or self.auth is not None):
            raise ValueError("headers and auth are for a server reached by url")
        if self.url is not None and self.env:
            raise ValueError("env is for a server started with command")
        if self.auth is not None and any(name.lower() == "authorization"
                                         for name in self.headers):
            raise ValueError("set headers.Authorization or auth, not both")
        return self


class McpConfig(Frozen):
    servers: tuple[McpServerConfig, ...] = ()
    session_secret: SecretStr | None = Field(
        None, description="Signs the binding of each MCP session id to the caller who opened "
        "it (use ${env:NAME}); set it when several replicas serve one client. None: a random "
        "key per `rolegate serve`, shared by its workers.")


class Settings(Frozen):
    """The root of the configuration."""

    server: ServerConfig = ServerConfig()
    models: tuple[ModelConfig, ...] = ()
    routing: RoutingConfig = RoutingConfig()
    auth: AuthConfig = AuthConfig()
    policy: tuple[RuleConfig, ...] = ()
    logging: LoggingConfig = LoggingConfig()
    database: DatabaseConfig = DatabaseConfig()
    keys: KeysConfig = KeysConfig()
    limits: RateLimitsConfig = RateLimitsConfig()
    accounting: AccountingConfig = AccountingConfig()
    audit: AuditConfig = AuditConfig()
    tracing: TracingConfig = TracingConfig()
    egress: EgressConfig = EgressConfig()
    console: ConsoleConfig = ConsoleConfig()
    budgets: tuple[BudgetConfig, ...] = Field(
        (), description="Named limits that rules draw on with `allow.budgets`.")
    mcp: McpConfig = McpConfig()

    @property
    def claim_paths(self) -> tuple[str, ...]:
        """The claim paths the limits and usage dimensions read: extracted once per token."""
        pers = [rule.allow.limits.per for rule in self.policy if rule.allow.limits is not None]
        pers += [rule.allow.mcp.limits.per for rule in self.policy
                 if rule.allow.mcp is not None and rule.allow.mcp.limits is not None]
        pers += [budget.per for budget in self.budgets]
        paths = [path for per in pers if (path := per_claim(per)) is not None]
        paths += [name for name in self.accounting.dimensions if name != "groups"]
        return tuple(dict.fromkeys(paths))
