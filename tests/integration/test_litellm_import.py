"""`rolegate import litellm` end to end: the Entra ID config LiteLLM users run
(tests/fixtures/litellm/entra_admin.yaml, with a model added) imported by the command, loaded,
and served in-process with tokens signed by a test key served as the tenant's JWKS. A token with
no role and no scope is refused (403) and reaches no upstream; the admin app role, or the admin
scope, gets exactly what `admin_allowed_routes` names (OpenAI routes and info routes), and
nothing else (no admin API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from rolegate.cli import cli
from rolegate.config.load import parse_settings
from tests.support.fetch import FakeKeySource
from tests.support.keys import TENANT, KeyPair, entra_app_claims, jwks

FIXTURE = Path(__file__).parents[1] / "fixtures" / "litellm" / "entra_admin.yaml"
JWKS_URL = f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def imported(tmp_path: Path, upstream: Any) -> Any:
    document = yaml.safe_load(FIXTURE.read_text().replace("{tenant}", TENANT))
    document["model_list"] = [{"model_name": "gpt-4o", "litellm_params": {
        "model": "openai/gpt-4o", "api_base": "os.environ/UPSTREAM_BASE",
        "api_key": "os.environ/UPSTREAM_KEY"}}]
    source = tmp_path / "litellm.yaml"
    source.write_text(yaml.safe_dump(document))
    written = tmp_path / "rolegate.yaml"

    result = CliRunner().invoke(cli, ["import", "litellm", str(source), "-o", str(written)])

    assert result.exit_code == 0, result.output
    environ = {"UPSTREAM_BASE": f"{upstream.url}/v1", "UPSTREAM_KEY": "sk-upstream"}
    return parse_settings(written.read_text(), source=str(written), environ=environ), \
        result.output


@pytest.fixture
def entra_keys(key_source: FakeKeySource, rsa_key: KeyPair) -> KeyPair:
    key_source.documents[JWKS_URL] = jwks(rsa_key)
    return rsa_key


def test_the_report_says_what_became_of_every_setting(imported):
    _, report = imported

    for setting in ("general_settings.enable_jwt_auth", "JWT_PUBLIC_KEY_URL", "JWT_AUDIENCE",
                    "general_settings.litellm_jwtauth.public_key_ttl",
                    "general_settings.litellm_jwtauth.end_user_id_jwt_field",
                    "general_settings.litellm_jwtauth.admin_allowed_routes: openai_routes",
                    "general_settings.litellm_jwtauth.admin_allowed_routes: info_routes",
                    "general_settings.litellm_jwtauth.admin_jwt_scope"):
        assert f"mapped      {setting} -> " in report
    assert "app roles in `roles`, never `scp`" in report
    assert "schema: valid" in report


@pytest.mark.parametrize("version", [1, 2], ids=["entra-v1", "entra-v2"])
async def test_a_token_with_no_role_and_no_scope_is_refused_everywhere(
        imported, entra_keys, client_for, upstream, version):
    settings, _ = imported
    client = client_for(settings)
    token = entra_keys.sign(entra_app_claims(version), {"typ": "JWT"})
    headers = {"Authorization": f"Bearer {token}"}

    chat = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    models = await client.get("/v1/models", headers=headers)

    assert (chat.status_code, models.status_code) == (403, 403)
    assert chat.json()["error"]["type"] == "permission_error"
    assert upstream.requests == []


@pytest.mark.parametrize(("version", "grant"), [
    (1, {"roles": ["LiteLLM.Admin"]}), (2, {"roles": ["LiteLLM.Admin"]}),
    (2, {"scp": "LiteLLM.Admin"})], ids=["v1-app-role", "v2-app-role", "v2-scope"])
async def test_the_admin_role_or_scope_gets_the_openai_and_info_routes_and_nothing_more(
        imported, entra_keys, client_for, upstream, version, grant):
    settings, _ = imported
    client = client_for(settings)
    token = entra_keys.sign(entra_app_claims(version, **grant), {"typ": "JWT"})
    headers = {"Authorization": f"Bearer {token}"}

    chat = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    models = await client.get("/v1/models", headers=headers)
    admin = await client.get("/admin/usage", headers=headers)

    assert chat.status_code == 200, chat.text
    assert models.status_code == 200 and [m["id"] for m in models.json()["data"]] == ["gpt-4o"]
    assert admin.status_code == 403
    assert [request.path for request in upstream.requests] == ["/v1/chat/completions"]
    assert upstream.requests[0].headers["Authorization"] == "Bearer sk-upstream"
    if version == 1:  # `end_user_id_jwt_field: appid` names the calling app upstream
        assert upstream.requests[0].json()["user"] == "0a1b2c3d-client-app-id"
