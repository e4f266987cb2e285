"""The rolegate modes. Each is one `register(...)` call: a name, a config, a token factory.

These configs follow the gateway's configuration model as drafted; sections for features
that are not settled yet (API keys, limits, usage) are marked and must be aligned with the
gateway's final schema before their numbers mean anything.
"""

from __future__ import annotations

from bench.modes import gateway_mode, register
from bench.tokens import AUDIENCE, ISSUER, jwt_token, static_token

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
# Logging as shipped (INFO, one decision line per request) unless a mode says otherwise.
QUIET = """
logging:
  level: warning
  decisions: false
"""

POLICY = """
policy:
  - name: bench
    when: {roles: [bench]}
    allow: {routes: [inference, info], models: ["*"]}
"""


def jwt_config(jwks_file: str, algorithm: str) -> str:
    return MODELS + POLICY + f"""
auth:
  issuers:
    - name: bench
      issuer: {ISSUER}
      jwks_url: "{{upstream_root}}/jwks/{jwks_file}"
      audiences: [{AUDIENCE}]
      algorithms: [{algorithm}]
      claims: {{roles: [roles]}}
"""


RS256 = jwt_config("rs256.json", "RS256")
ES256 = jwt_config("es256.json", "ES256")
# Draft: the API key and limits/usage sections follow no settled schema yet.
APIKEY = MODELS + POLICY + """
auth:
  api_keys:
    - key: rg-bench-key
      subject: bench-user
      roles: [bench]
"""
LIMITS_USAGE = jwt_config("limits-rs256.json", "RS256") + """
limits:
  - name: bench
    when: {roles: [bench]}
    requests_per_minute: 100000000
    tokens_per_minute: 100000000
usage:
  enabled: true
"""

register("jwt-rs256", gateway_mode("jwt-rs256", RS256, jwt_token("RS256", "rs256.json")))
# The same without the decision log: the difference is what logging costs per request.
QUIET_RS256 = jwt_config("quiet-rs256.json", "RS256") + QUIET
register("jwt-rs256-quiet", gateway_mode("jwt-rs256-quiet", QUIET_RS256,
                                         jwt_token("RS256", "quiet-rs256.json")))
register("jwt-es256", gateway_mode("jwt-es256", ES256, jwt_token("ES256", "es256.json")))
register("apikey", gateway_mode("apikey", APIKEY, static_token("Bearer rg-bench-key"),
                                draft="virtual API keys (auth.api_keys)"))
register("limits+usage", gateway_mode("limits+usage", LIMITS_USAGE,
                                      jwt_token("RS256", "limits-rs256.json"),
                                      draft="rate limits and usage accounting"))
STREAM = jwt_config("stream-rs256.json", "RS256")
register("stream", gateway_mode("stream", STREAM, jwt_token("RS256", "stream-rs256.json"),
                                 wrk_script="stream.lua", baseline="direct-stream"))
