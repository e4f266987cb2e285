"""`rolegate explain` as a subprocess, on the seed case: an Entra app token verified against a
saved key-set file (`--jwks`, so nothing is fetched) under the configuration that requires app
role `LiteLLM.Admin`. Exit status 1 and `insufficient_scope` without the role; 0 with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.calls import config_yaml, rule
from tests.support.keys import (
    ENTRA_AUDIENCE, ENTRA_V2_ISSUER, TENANT, KeyPair, entra_app_claims, jwks,
)

pytestmark = pytest.mark.e2e

KEY = KeyPair.rsa("entra-explain-key")
CONFIG = config_yaml(
    models=[{"name": "gpt-4o", "provider": "openai-compatible",
             "api_base": "http://127.0.0.1:9/v1"}],
    issuers=[{"name": "entra", "preset": "entra", "issuer": ENTRA_V2_ISSUER,
              "jwks_url": f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys",
              "audiences": [ENTRA_AUDIENCE], "tenants": [TENANT]}],
    policy=[rule("services", {"roles": ["LiteLLM.Admin"]}, ["inference", "info"], ["*"])])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("explain")
    (directory / "rolegate.yaml").write_text(CONFIG)
    (directory / "keys.json").write_bytes(jwks(KEY))
    return directory


def explain(files: Path, token: str, *extra: str, stdin: str | None = None,
            model: str = "gpt-4o") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rolegate", "explain", "--token", token,
         "--route", "/v1/chat/completions", "--model", model,
         "--config", str(files / "rolegate.yaml"), "--jwks", str(files / "keys.json"), *extra],
        input=stdin, capture_output=True, text=True, timeout=30, cwd=files)


def seed_token(**extra: Any) -> str:
    return KEY.sign(entra_app_claims(2, **extra), {"typ": "JWT"})


def test_token_without_the_role_exits_1_and_says_insufficient_scope(files: Path) -> None:
    result = explain(files, seed_token())

    assert result.returncode == 1, result.stderr
    assert "insufficient_scope" in result.stdout
    assert "LiteLLM.Admin" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_token_with_the_role_exits_0(files: Path) -> None:
    result = explain(files, seed_token(roles=["LiteLLM.Admin"]))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "ALLOW" in result.stdout
    assert "services" in result.stdout


def test_token_read_from_stdin_gets_the_same_answer(files: Path) -> None:
    result = explain(files, "-", stdin=seed_token(roles=["LiteLLM.Admin"]) + "\n")

    assert result.returncode == 0, result.stdout + result.stderr


def test_token_signed_by_another_key_exits_1_as_unverified(files: Path) -> None:
    forged = KeyPair(KEY.kid, "RS256", KeyPair.rsa("other").private_key).sign(
        entra_app_claims(2, roles=["LiteLLM.Admin"]), {"typ": "JWT"})

    result = explain(files, forged)

    assert result.returncode == 1
    assert "invalid_signature" in result.stdout
    assert "UNVERIFIED" in result.stdout


def test_garbage_token_exits_1_without_a_traceback(files: Path) -> None:
    result = explain(files, "not.a.jwt")

    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr


def test_unknown_route_and_missing_key_file_are_usage_errors_not_tracebacks(
        files: Path) -> None:
    unknown_route = subprocess.run(
        [sys.executable, "-m", "rolegate", "explain", "--token", seed_token(), "--route",
         "/v1/nothing", "--config", str(files / "rolegate.yaml")],
        capture_output=True, text=True, timeout=30, cwd=files)
    missing_keys = subprocess.run(
        [sys.executable, "-m", "rolegate", "explain", "--token", seed_token(), "--route",
         "inference", "--config", str(files / "rolegate.yaml"), "--jwks", "missing.json"],
        capture_output=True, text=True, timeout=30, cwd=files)

    assert unknown_route.returncode == 2
    assert "No route matches /v1/nothing" in unknown_route.stderr
    assert missing_keys.returncode == 2
    assert "missing.json" in missing_keys.stderr
    for result in (unknown_route, missing_keys):
        assert "Traceback" not in result.stdout + result.stderr
