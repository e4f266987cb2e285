"""Resolving a deployment's egress: the proxy variables, NO_PROXY matching, per-deployment
overrides, proxy URLs, and where TLS files come from."""

from __future__ import annotations

import base64

import pytest

from rolegate.config.egress import (
    Egress, Proxy, egress_for, environment_egress, is_bypassed, parse_proxy,
)
from rolegate.config.load import ConfigError, parse_settings
from rolegate.config.model import DeploymentConfig, EgressConfig

YAML = """
models:
  - {name: gpt-4o, provider: openai, api_base: https://api.openai.com/v1, api_key: k}
  - {name: local, provider: openai-compatible, api_base: http://127.0.0.1:8000/v1}
  - {name: internal, provider: openai-compatible, api_base: https://llm.corp.example/v1}
auth:
  issuers: [{name: idp, issuer: https://idp.example, jwks_url: https://idp.example/k,
             audiences: [rolegate]}]
policy:
  - {name: all, when: {roles: [user]}, allow: {routes: [inference], models: ["*"]}}
"""


@pytest.mark.parametrize(("host", "port", "no_proxy", "bypassed"), [
    ("api.openai.com", 443, "", False),
    ("api.openai.com", 443, "*", True),
    ("api.openai.com", 443, "openai.com", True),
    ("api.openai.com", 443, ".openai.com", True),
    ("api.openai.com", 443, "*.openai.com", True),
    ("notopenai.com", 443, "openai.com", False),
    ("api.openai.com", 443, "openai.com:8443", False),
    ("api.openai.com", 8443, "openai.com:8443", True),
    ("10.1.2.3", 443, "example.com, 10.0.0.0/8", True),
    ("11.1.2.3", 443, "10.0.0.0/8", False),
    ("::1", 443, "::1", True),
    ("::1", 8000, "[::1]:8000", True),
    ("API.OpenAI.com", 443, "openai.com", True),
], ids=lambda value: repr(value))
def test_no_proxy_names_hosts_domains_networks_and_ports(host, port, no_proxy, bypassed):
    assert is_bypassed(host, port, no_proxy) is bypassed


def test_proxy_variables_lower_case_wins_and_loopback_is_always_direct():
    found = environment_egress({"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://low:2",
                                "NO_PROXY": ".corp.example"})
    assert found["https_proxy"] == "http://low:2"
    assert found["no_proxy"] == ".corp.example,localhost,127.0.0.0/8,::1"
    assert environment_egress({"NO_PROXY": "x"}) == {"no_proxy": "x"}


def test_the_environments_proxies_apply_unless_the_file_sets_its_own():
    environ = {"HTTPS_PROXY": "http://proxy.corp:3128", "HTTP_PROXY": "http://proxy.corp:3128",
               "NO_PROXY": ".corp.example"}
    settings = parse_settings(YAML, source="<test>", environ=environ)
    egress = [egress_for(model.deployments[0], settings.egress) for model in settings.models]
    assert egress == [Egress(proxy=Proxy("proxy.corp", 3128)), None, None]

    own = parse_settings(YAML + "egress: {https_proxy: 'http://other:8080'}\n",
                         source="<test>", environ=environ)
    assert own.egress.https_proxy == "http://other:8080"
    assert own.egress.no_proxy == ".corp.example,localhost,127.0.0.0/8,::1"


def test_a_deployments_proxy_overrides_egress_and_direct_goes_straight_out():
    egress = EgressConfig(https_proxy="http://proxy:3128", ca_bundle_file="/corp-ca.pem")
    base = {"provider": "openai", "api_base": "https://api.openai.com/v1"}
    assert egress_for(DeploymentConfig(**base, proxy="http://special:9"), egress) == Egress(
        proxy=Proxy("special", 9), ca_bundle_file="/corp-ca.pem")
    assert egress_for(DeploymentConfig(**base, proxy="direct"), egress) == Egress(
        ca_bundle_file="/corp-ca.pem")
    assert egress_for(DeploymentConfig(**base), EgressConfig()) is None


def test_proxy_urls_carry_basic_credentials_and_refuse_tls_to_the_proxy():
    proxy = parse_proxy("http://svc%40corp:p%3Ass@proxy.corp:3128")
    assert (proxy.host, proxy.port) == ("proxy.corp", 3128)
    assert proxy.authorization == "Basic " + base64.b64encode(b"svc@corp:p:ss").decode()
    assert "p:ss" not in repr(proxy)
    assert parse_proxy("proxy.corp:3128") == Proxy("proxy.corp", 3128)
    with pytest.raises(ConfigError, match=r"egress\.https_proxy: .*must start with http://"):
        parse_settings(YAML + "egress: {https_proxy: 'https://proxy:443'}\n", source="<test>",
                       environ={})
    with pytest.raises(ConfigError, match=r"models\[0\]\.proxy: .*host\[:port\]"):
        parse_settings(YAML.replace("api_key: k}", "api_key: k, proxy: 'http://p:1/path'}"),
                       source="<test>", environ={})


def test_a_client_key_without_its_certificate_is_a_configuration_error():
    with pytest.raises(ValueError, match="client_key_file needs client_cert_file"):
        DeploymentConfig(provider="openai", api_base="https://x/v1", client_key_file="k.pem")
