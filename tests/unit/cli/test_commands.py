"""The `rolegate` command: `check` exit codes on good and bad files, and `explain` on the seed
case with a local key set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rolegate.cli import cli
from tests.support.keys import (
    ENTRA_AUDIENCE, ENTRA_V2_ISSUER, KeyPair, entra_app_claims, jwks,
)

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.yaml"))
EXAMPLE_ENV = {"AZURE_OPENAI_API_KEY": "azure-secret", "TENANT_ID": "tenant-guid",
               "OPENAI_API_KEY": "openai-secret"}


def run_rolegate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """rolegate as users run it: a separate process with its own environment."""
    return subprocess.run([sys.executable, "-m", "rolegate", *args], capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_check_accepts_every_example_given_its_environment():
    for path in EXAMPLES:
        result = run_rolegate("check", str(path), env=EXAMPLE_ENV)
        assert result.returncode == 0, result.stderr
        assert "configuration is valid" in result.stdout
        assert "azure-secret" not in result.stdout and "openai-secret" not in result.stdout


def test_check_refuses_a_bad_file_listing_every_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({
        "models": [{"name": "m", "provider": "mock"}],
        "auth": {"issuers": [{"name": "idp", "issuer": "https://x", "audiences": ["a"],
                              "algorithms": ["HS256"], "jwks_url": "https://x/keys"}]},
        "policy": [{"name": "r", "when": {}, "allow": {"routes": ["inference"]}}],
    }))
    result = run_rolegate("check", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "2 problem(s)" in result.stderr
    assert "auth.issuers[0].algorithms" in result.stderr
    assert "policy[0].when" in result.stderr


@pytest.mark.parametrize("content", [None, b"models: [", b"\xff\xfe binary"],
                         ids=["missing", "bad-yaml", "not-utf8"])
def test_check_refuses_an_unreadable_file_without_a_traceback(content, tmp_path):
    path = tmp_path / "rolegate.yaml"
    if content is not None:
        path.write_bytes(content)
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_check_of_an_example_without_its_environment_names_the_variables():
    result = CliRunner().invoke(cli, ["check", str(EXAMPLES[0])], env={
        name: None for name in EXAMPLE_ENV})  # type: ignore[dict-item]
    assert result.exit_code == 1


@pytest.fixture
def seed_case(tmp_path: Path, rsa_key: KeyPair) -> tuple[Path, Path]:
    config = tmp_path / "entra.yaml"
    config.write_text(yaml.safe_dump({
        "models": [{"name": "gpt-4o", "provider": "mock"}],
        "auth": {"issuers": [{"name": "entra", "preset": "entra", "issuer": ENTRA_V2_ISSUER,
                              "jwks_url": "https://login.microsoftonline.com/x/keys",
                              "audiences": [ENTRA_AUDIENCE]}]},
        "policy": [{"name": "services", "when": {"roles": ["LiteLLM.Admin"]},
                    "allow": {"routes": ["inference", "info"], "models": ["*"]}}],
    }))
    key_file = tmp_path / "keys.json"
    key_file.write_bytes(jwks(rsa_key))
    return config, key_file


def explain_args(config: Path, key_file: Path, token: str, *extra: str) -> list[str]:
    return ["explain", "--config", str(config), "--token", token, "--route",
            "/v1/chat/completions", "--model", "gpt-4o", "--jwks", str(key_file), *extra]


def test_explain_of_the_seed_token_exits_1_and_says_insufficient_scope(seed_case, rsa_key):
    config, key_file = seed_case
    token = rsa_key.sign(entra_app_claims(2, now=time.time()), {"typ": "JWT"})

    result = CliRunner().invoke(cli, explain_args(config, key_file, token))

    assert result.exit_code == 1, result.output
    assert "insufficient_scope" in result.output
    assert "services" in result.output
    assert token not in result.output


def test_explain_of_a_token_with_the_role_exits_0(seed_case, rsa_key):
    config, key_file = seed_case
    token = rsa_key.sign(entra_app_claims(2, roles=["LiteLLM.Admin"], now=time.time()))

    result = CliRunner().invoke(cli, explain_args(config, key_file, token))

    assert result.exit_code == 0, result.output
    assert "ALLOW" in result.output


def test_explain_reads_the_token_from_stdin(seed_case, rsa_key):
    config, key_file = seed_case
    token = rsa_key.sign(entra_app_claims(2, now=time.time()))
    result = CliRunner().invoke(cli, explain_args(config, key_file, "-"), input=token + "\n")
    assert result.exit_code == 1 and "insufficient_scope" in result.output


def test_explain_in_a_real_process_exits_1_for_the_seed_token(seed_case, rsa_key):
    config, key_file = seed_case
    token = rsa_key.sign(entra_app_claims(2, now=time.time()), {"typ": "JWT"})
    result = run_rolegate(*explain_args(config, key_file, token))
    assert result.returncode == 1, result.stderr
    assert "insufficient_scope" in result.stdout


def test_explain_of_an_unknown_route_is_a_clear_error(seed_case, rsa_key):
    config, key_file = seed_case
    token = rsa_key.sign(entra_app_claims(2, now=time.time()))
    args = explain_args(config, key_file, token)
    args[args.index("/v1/chat/completions")] = "/v1/nothing"

    result = CliRunner().invoke(cli, args)

    assert result.exit_code not in (0, 1)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "No route matches /v1/nothing" in result.output


def test_explain_with_an_unreadable_key_file_is_a_clear_error(seed_case, rsa_key, tmp_path):
    config, _ = seed_case
    token = rsa_key.sign(entra_app_claims(2, now=time.time()))
    result = CliRunner().invoke(cli, explain_args(config, tmp_path / "absent.json", token))
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"rolegate {version('rolegate')}\n"


def test_check_takes_config_like_every_command_and_prints_json(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump({
        "models": [{"name": "m", "provider": "mock"}],
        "auth": {"dev_issuer": {"enabled": True}},
        "policy": [{"name": "r", "when": {"roles": ["user"]},
                    "allow": {"routes": ["inference"], "models": ["*"]}}],
    }))
    result = CliRunner().invoke(cli, ["check", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "source": str(path), "valid": True, "problems": [], "models": ["m"], "issuers": [],
        "policy": [{"rule": "r", "when": {"roles": ["user"]}, "routes": ["inference"],
                    "models": ["*"]}]}


def test_check_json_lists_the_problems_and_exits_1(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("models:\n  - {name: m, provider: mock}\n  - {name: m, provider: mock}\n"
                    "auth: {dev_issuer: {enabled: true}}\n")
    result = CliRunner().invoke(cli, ["check", "--config", str(path), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"source": str(path), "valid": False, "problems": [
        {"file": str(path), "line": 3, "column": 6, "path": "models",
         "message": "the name 'm' is used 2 times (names must be unique)"}]}


def test_check_without_a_file_says_how_to_give_one():
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 1
    assert "rolegate check --config FILE" in result.output


def test_explain_json_prints_the_report_and_keeps_the_exit_code(seed_case, rsa_key):
    config, key_file = seed_case
    token = rsa_key.sign(entra_app_claims(2, now=time.time()))

    result = CliRunner().invoke(cli, explain_args(config, key_file, token, "--json"))

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == 403 and report["allowed"] is False
    assert report["rules"][0]["name"] == "services"
