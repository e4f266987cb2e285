"""The rolegate modes. Each is one `register(...)` call: a name, a config, a token factory.

Every mode but `limits+usage` and `production` turns usage accounting off
(`accounting.enabled: false`; it is on by default, writing to SQLite next to the config), so the
JWT modes measure authentication, authorization and forwarding, and `limits+usage` (SQLite) and
`production` (PostgreSQL) show what accounting plus Redis-backed rate limits add on top of
`jwt-rs256`.
"""

from __future__ import annotations

from bench.modes import CHAT_PATH, gateway_mode, register
from bench.tokens import AUDIENCE, ISSUER, api_key_token, jwt_token

MODELS = """
server:
  host: 127.0.0.1
  port: {port}
models:
  - name: echo
    provider: openai-compatible
    api_base: {upstream}
    api_key: bench-upstream-key
"""
NO_ACCOUNTING = """
accounting:
  enabled: false
"""
# Logging as shipped (INFO, one decision line per request) unless a mode says otherwise.
QUIET = """
logging:
  level: warning
  decisions: false
"""


def policy(limits: str = "") -> str:
    return f"""
policy:
  - name: bench
    when: {{roles: [bench]}}
    allow: {{routes: [inference, info], models: ["*"]{limits}}}
"""


# The same model served by an Anthropic deployment (the mock answers /v1/messages as Anthropic).
ANTHROPIC_MODELS = MODELS.replace("provider: openai-compatible", "provider: anthropic")
# And by a Gemini deployment (the mock answers /v1beta/models/<model>:generateContent).
GEMINI_MODELS = MODELS.replace("provider: openai-compatible", "provider: gemini").replace(
    "api_base: {upstream}", "api_base: {upstream_root}/v1beta")


def jwt_config(jwks_file: str, algorithm: str, *, rule_limits: str = "",
               extra: str = NO_ACCOUNTING, models: str = MODELS) -> str:
    return models + policy(rule_limits) + extra + f"""
auth:
  issuers:
    - name: bench
      issuer: {ISSUER}
      jwks_url: "{{upstream_root}}/jwks/{jwks_file}"
      audiences: [{AUDIENCE}]
      algorithms: [{algorithm}]
      claims: {{roles: [roles]}}
"""


def limits_and_usage(jwks_file: str, database: str, limits: str = "") -> str:
    """jwt-rs256 with `rpm`/`tpm` limits high enough never to refuse, counted in Redis, and
    usage accounting to `database`; `limits`: more of the `limits` section."""
    return jwt_config(jwks_file, "RS256",
                      rule_limits=", limits: {rpm: 100000000, tpm: 100000000}", extra="""
accounting:
  enabled: true
limits:
  backend: redis
  url: {redis_url}
""" + limits + database)


RS256 = jwt_config("rs256.json", "RS256")
ES256 = jwt_config("es256.json", "ES256")
# A key created with `rolegate keys create` before the gateway starts, kept in SQLite.
APIKEY = MODELS + policy() + NO_ACCOUNTING + """
keys:
  enabled: true
  pepper: bench-pepper-0123456789abcdef
database:
  url: sqlite+aiosqlite:///{workdir}/keys.db
"""
# jwt-rs256 plus request and token limits on the rule, counted in Redis, and usage records
# written to SQLite in batches: the difference is what accounting and limits cost.
LIMITS_USAGE = limits_and_usage("limits-rs256.json", """
database:
  url: sqlite+aiosqlite:///{workdir}/usage.db
""")
# The shape of a production deployment: jwt-rs256 plus the same Redis limits and usage records
# written to PostgreSQL (a throw-away schema of the local server's `test` database, migrated at
# start-up and dropped afterwards). Its ratio to jwt-rs256 is what limits and accounting cost.
POSTGRES = """
database:
  url: {postgres_url}
  schema: {postgres_schema}
  migrate_on_start: true
"""
PRODUCTION = limits_and_usage("production-rs256.json", POSTGRES)
# The same with local quota leases (`limits.lease`): blocks of 1,000 requests and 1,000,000
# tokens (about a thousand requests' default reservations) spent in the process, so about one
# request in a thousand makes a Redis round trip.
PRODUCTION_LEASE = limits_and_usage("production-lease-rs256.json", POSTGRES, """\
  lease: {requests: 1000, tokens: 1000000, ttl: 5}
""")
register("jwt-rs256", gateway_mode("jwt-rs256", RS256, jwt_token("RS256", "rs256.json")))
# The same without the decision log: the difference is what logging costs per request.
QUIET_RS256 = jwt_config("quiet-rs256.json", "RS256") + QUIET
register("jwt-rs256-quiet", gateway_mode("jwt-rs256-quiet", QUIET_RS256,
                                         jwt_token("RS256", "quiet-rs256.json")))
register("jwt-es256", gateway_mode("jwt-es256", ES256, jwt_token("ES256", "es256.json")))
register("apikey", gateway_mode("apikey", APIKEY, api_key_token()))
register("limits+usage", gateway_mode("limits+usage", LIMITS_USAGE,
                                      jwt_token("RS256", "limits-rs256.json"),
                                      is_using_redis=True))
# limits+usage with each usage record appended to the spool before its response ends
# (`accounting.write_ahead`): its ratio to limits+usage, run beside it, is what that costs.
WRITE_AHEAD = jwt_config("write-ahead-rs256.json", "RS256",
                         rule_limits=", limits: {rpm: 100000000, tpm: 100000000}", extra="""
accounting:
  enabled: true
  write_ahead: true
  spool_dir: {workdir}/spool
limits:
  backend: redis
  url: {redis_url}
database:
  url: sqlite+aiosqlite:///{workdir}/usage.db
""")
register("limits+usage+write-ahead", gateway_mode(
    "limits+usage+write-ahead", WRITE_AHEAD, jwt_token("RS256", "write-ahead-rs256.json"),
    is_using_redis=True, baseline="limits+usage"))
register("production", gateway_mode("production", PRODUCTION,
                                    jwt_token("RS256", "production-rs256.json"),
                                    is_using_redis=True, is_using_postgres=True))
# Each half of `production` alone: exact Redis limits with accounting off, and usage records to
# PostgreSQL with no limits. Their CPU over jwt-rs256's splits what `production` adds.
PRODUCTION_LIMITS = jwt_config("production-limits-rs256.json", "RS256",
                               rule_limits=", limits: {rpm: 100000000, tpm: 100000000}",
                               extra=NO_ACCOUNTING + """
limits:
  backend: redis
  url: {redis_url}
""")
PRODUCTION_USAGE = jwt_config("production-usage-rs256.json", "RS256", extra="""
accounting:
  enabled: true
""" + POSTGRES)
register("production-limits", gateway_mode("production-limits", PRODUCTION_LIMITS,
                                           jwt_token("RS256", "production-limits-rs256.json"),
                                           is_using_redis=True))
register("production-usage", gateway_mode("production-usage", PRODUCTION_USAGE,
                                          jwt_token("RS256", "production-usage-rs256.json"),
                                          is_using_postgres=True))
register("production-lease", gateway_mode("production-lease", PRODUCTION_LEASE,
                                          jwt_token("RS256", "production-lease-rs256.json"),
                                          is_using_redis=True, is_using_postgres=True))
# jwt-rs256 with every request traced (sampled at 1.0) and exported over OTLP/HTTP to the mock
# upstream's /v1/traces sink: its ratio to jwt-rs256, run beside it, is what tracing costs.
OTEL_RS256 = jwt_config("otel-rs256.json", "RS256") + """
tracing:
  enabled: true
  endpoint: "{upstream_root}/v1/traces"
"""
register("jwt-rs256-otel", gateway_mode("jwt-rs256-otel", OTEL_RS256,
                                        jwt_token("RS256", "otel-rs256.json"),
                                        baseline="jwt-rs256"))
# The same sampling 1% of new traces, as a busy deployment would: the other 99% only pass
# their (unsampled) context upstream.
OTEL_SAMPLED_RS256 = jwt_config("otel-sampled-rs256.json", "RS256") + """
tracing:
  enabled: true
  endpoint: "{upstream_root}/v1/traces"
  sample_ratio: 0.01
"""
register("jwt-rs256-otel-1pct", gateway_mode("jwt-rs256-otel-1pct", OTEL_SAMPLED_RS256,
                                             jwt_token("RS256", "otel-sampled-rs256.json"),
                                             baseline="jwt-rs256"))
STREAM = jwt_config("stream-rs256.json", "RS256")
register("stream", gateway_mode("stream", STREAM, jwt_token("RS256", "stream-rs256.json"),
                                 wrk_script="stream.lua", baseline="direct-stream"))

# The other API surfaces against jwt-rs256 (chat completions passed through): their ratio is
# what serving a surface costs, with or without translation. Same question, same answer text
# and token counts from the mock in every API's shape.
MESSAGES_PATH = "/v1/messages"
GEMINI_PATH = "/v1beta/models/echo:generateContent"
SURFACES = (
    # name, upstream provider's models, gateway route, wrk script
    ("messages-anthropic", ANTHROPIC_MODELS, MESSAGES_PATH, "messages.lua"),  # passed through
    ("messages-openai", MODELS, MESSAGES_PATH, "messages.lua"),     # Messages <-> chat
    ("gemini-gemini", GEMINI_MODELS, GEMINI_PATH, "gemini.lua"),    # passed through
    ("gemini-openai", MODELS, GEMINI_PATH, "gemini.lua"),           # Gemini <-> chat
    ("chat-anthropic", ANTHROPIC_MODELS, CHAT_PATH, "chat.lua"),    # chat <-> Messages
)
for name, models, path, script in SURFACES:
    register(name, gateway_mode(name, jwt_config(f"{name}.json", "RS256", models=models),
                                jwt_token("RS256", f"{name}.json"), wrk_script=script,
                                path=path, baseline="jwt-rs256"))
