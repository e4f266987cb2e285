"""`rolegate explain --mcp-server S --tool T [--arguments JSON]`: which rule grants a tool call,
or why it is denied, by the gateway's own verifier and policy."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from rolegate.cli import cli
from tests.support.keys import ENTRA_AUDIENCE, ENTRA_V2_ISSUER, KeyPair, entra_app_claims, jwks

RESOURCE = "https://gw.example/mcp/forge"


@pytest.fixture
def mcp_case(tmp_path: Path, rsa_key: KeyPair) -> tuple[Path, Path]:
    config = tmp_path / "rolegate.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"public_base_url": "https://gw.example"},
        "auth": {"issuers": [{"name": "entra", "preset": "entra", "issuer": ENTRA_V2_ISSUER,
                              "jwks_url": "https://login.microsoftonline.com/x/keys",
                              "audiences": [ENTRA_AUDIENCE]}]},
        "mcp": {"servers": [{"name": "forge", "url": "http://127.0.0.1:9/mcp"}]},
        "policy": [
            {"name": "searchers", "when": {"roles": ["searcher"]},
             "allow": {"routes": ["mcp"], "mcp": {"servers": ["forge"], "tools": ["search_*"],
                                                  "limits": {"rpm": 5}}}},
            {"name": "cleaners", "when": {"roles": ["cleaner"]},
             "allow": {"routes": ["mcp"], "mcp": {"servers": ["forge"],
                                                  "tools": ["delete_repo"],
                                                  "arguments": {"repository": ["acme/*"]}}}},
        ],
    }))
    key_file = tmp_path / "keys.json"
    key_file.write_bytes(jwks(rsa_key))
    return config, key_file


def explain_tool(case: tuple[Path, Path], token: str, *extra: str) -> tuple[int, Any]:
    config, key_file = case
    result = CliRunner().invoke(cli, ["explain", "--config", str(config), "--token", token,
                                      "--jwks", str(key_file), "--mcp-server", "forge",
                                      *extra, "--json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout.startswith("{") \
        else result.output


def mcp_token(rsa_key: KeyPair, roles: list[str], audience: str = RESOURCE) -> str:
    claims = entra_app_claims(2, roles=roles, now=time.time())
    return rsa_key.sign({**claims, "aud": audience})


def test_an_allowed_tool_names_its_rule_and_the_tool_limit_counter(mcp_case, rsa_key):
    code, report = explain_tool(mcp_case, mcp_token(rsa_key, ["searcher"]),
                                "--tool", "search_code")

    assert code == 0
    assert report["allowed"] is True and report["status"] == 200
    assert "searchers" in report["summary"]
    assert report["action"]["mcp"] == {"server": "forge", "kind": "tool", "name": "search_code",
                                       "arguments": {}}
    assert any(step["name"].startswith("limits (tool search_code") and "rpm 5" in step["detail"]
               for step in report["steps"])


def test_a_tool_no_rule_grants_is_a_403_saying_so(mcp_case, rsa_key):
    code, report = explain_tool(mcp_case, mcp_token(rsa_key, ["searcher"]),
                                "--tool", "delete_repo")

    assert code == 1
    assert report["status"] == 403
    assert "tool 'delete_repo' of MCP server 'forge'" in report["summary"]
    assert [rule["grants"] for rule in report["rules"]] == [False, False]


@pytest.mark.parametrize(("arguments", "allowed"), [
    ('{"repository": "acme/site"}', True), ('{"repository": "evil/site"}', False),
    ('{"repository": 7}', False)])
def test_argument_constraints_decide_with_the_given_arguments(mcp_case, rsa_key, arguments,
                                                              allowed):
    code, report = explain_tool(mcp_case, mcp_token(rsa_key, ["cleaner"]),
                                "--tool", "delete_repo", "--arguments", arguments)

    assert (code == 0, report["allowed"]) == (allowed, allowed)


def test_a_token_for_the_llm_api_is_explained_as_the_gateways_401(mcp_case, rsa_key):
    code, report = explain_tool(mcp_case, mcp_token(rsa_key, ["searcher"], ENTRA_AUDIENCE),
                                "--tool", "search_code")

    assert code == 1 and report["status"] == 401
    assert "invalid_audience" in report["summary"]


@pytest.mark.parametrize("extra", [["--tool", "a", "--prompt", "b"],
                                   ["--prompt", "b", "--arguments", "{}"],
                                   ["--tool", "a", "--arguments", "[1]"],
                                   ["--tool", "a", "--arguments", "{"]])
def test_options_that_describe_no_one_request_are_a_usage_error(mcp_case, rsa_key, extra):
    code, output = explain_tool(mcp_case, mcp_token(rsa_key, ["searcher"]), *extra)

    assert code == 2 and "Traceback" not in str(output)


def test_an_unknown_server_is_a_clear_error(mcp_case, rsa_key):
    config, key_file = mcp_case
    result = CliRunner().invoke(cli, ["explain", "--config", str(config), "--token",
                                      mcp_token(rsa_key, ["searcher"]), "--jwks", str(key_file),
                                      "--mcp-server", "nope", "--tool", "x"])

    assert result.exit_code == 2 and "No MCP server is named 'nope'" in result.output
