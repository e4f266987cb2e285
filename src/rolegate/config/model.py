"""The typed configuration tree: frozen pydantic models, validated before anything serves.

`Settings` is the root. Each object that needs configuration receives its own slice in its
constructor; nothing reads a global settings object.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, SecretStr, field_validator, model_validator

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


class ModelConfig(Frozen):
    """A model name callers use, and the upstream that serves it."""

    name: str = Field(min_length=1, description="The public model name callers send.")
    provider: Literal["openai", "azure", "openai-compatible", "mock"]
    api_base: str | None = Field(None, description="Upstream base URL (openai: up to /v1).")
    api_key: SecretStr | None = Field(None, description="Upstream credential; use ${ENV}.")
    model: str | None = Field(None, description="Upstream model name; defaults to `name`.")
    deployment: str | None = Field(None, description="Azure deployment name.")
    api_version: str | None = Field(None, description="Azure `api-version` query parameter.")
    timeout: float = Field(600.0, gt=0, description="Seconds before the upstream call fails (504).")

    @model_validator(mode="after")
    def _provider_fields(self) -> ModelConfig:
        problems = []
        if self.provider in ("openai", "openai-compatible", "azure") and not self.api_base:
            problems.append(f"provider {self.provider} needs api_base")
        if self.provider == "azure" and not (self.deployment and self.api_version):
            problems.append("provider azure needs deployment and api_version")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def upstream_model(self) -> str:
        return self.model or self.name


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


class AllowConfig(Frozen):
    """What a rule grants: route groups or path patterns, and model name globs."""

    routes: Strings = Field(min_length=1)
    models: Strings = ()


class RuleConfig(Frozen):
    name: str = Field(min_length=1)
    when: WhenConfig
    allow: AllowConfig


class LoggingConfig(Frozen):
    level: Literal["debug", "info", "warning", "error"] = "info"
    decisions: bool = Field(True, description="Log one JSON line per authorization decision.")


class Settings(Frozen):
    """The root of the configuration."""

    server: ServerConfig = ServerConfig()
    models: tuple[ModelConfig, ...] = ()
    auth: AuthConfig = AuthConfig()
    policy: tuple[RuleConfig, ...] = ()
    logging: LoggingConfig = LoggingConfig()
