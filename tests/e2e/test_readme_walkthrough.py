"""The README's five-minute walkthrough, as a user types it: `rolegate serve` with no
configuration in an empty directory (embedded defaults: the `echo` mock model and the development
issuer), then `rolegate dev-token` from the same directory, then the calls the README shows,
sent the way `curl -d` sends them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from rolegate.authn.dev_issuer import DevIssuer
from tests.support.process import GatewayProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

HELLO = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "hello"}]})
CURL_FORM = {"content-type": "application/x-www-form-urlencoded"}  # what `curl -d` sends


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(workdir: Path) -> AsyncIterator[GatewayProcess]:
    # No --config and no --state-dir: the defaults, in the directory the user started it from.
    async with GatewayProcess(None, workdir, state_dir=None) as process:
        yield process


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        yield http


def rolegate(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rolegate", *args], cwd=workdir,
                          capture_output=True, text=True, timeout=30)


def dev_token(workdir: Path, *args: str) -> str:
    result = rolegate(workdir, "dev-token", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


async def chat_call(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/v1/chat/completions", content=HELLO,
                             headers={**CURL_FORM, **headers})


async def test_dev_token_lists_models_and_chats_with_echo(
        gateway: GatewayProcess, client: httpx.AsyncClient) -> None:
    assert (gateway.workdir / ".rolegate" / "dev-issuer.json").exists()
    token = dev_token(gateway.workdir)
    auth = {"Authorization": f"Bearer {token}"}

    models = await client.get("/v1/models", headers=auth)
    completion = await chat_call(client, auth)

    assert models.status_code == 200, models.text
    assert [card["id"] for card in models.json()["data"]] == ["echo"]
    assert completion.status_code == 200, completion.text
    assert completion.json()["choices"][0]["message"]["content"] == "echo: hello"


async def test_call_without_a_token_is_401_with_the_readme_challenge(
        client: httpx.AsyncClient) -> None:
    response = await chat_call(client, {})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="rolegate", error="invalid_token"'
    assert response.json()["error"]["code"] == "missing_token"


async def test_token_whose_roles_grant_nothing_is_403_saying_what_is_missing(
        gateway: GatewayProcess, client: httpx.AsyncClient) -> None:
    token = dev_token(gateway.workdir, "--roles", "someone.else")

    response = await chat_call(client, {"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["type"] == "permission_error"
    assert error["code"] == "insufficient_scope"
    assert "roles=['someone.else']" in error["message"]
    assert "It would be granted by: rule 'users' needs roles any of ['rolegate.user']" in \
        error["message"]


async def test_explain_tells_why_from_the_same_directory(gateway: GatewayProcess) -> None:
    nobody = dev_token(gateway.workdir, "--roles", "reporting.reader")
    user = dev_token(gateway.workdir)

    refused = rolegate(gateway.workdir, "explain", "--token", nobody,
                       "--route", "/v1/chat/completions", "--model", "echo")
    allowed = rolegate(gateway.workdir, "explain", "--token", user,
                       "--route", "/v1/chat/completions", "--model", "echo")

    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "insufficient_scope" in refused.stdout
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr


async def test_admin_routes_need_the_admin_role(gateway: GatewayProcess,
                                                client: httpx.AsyncClient) -> None:
    issuer = DevIssuer.load(gateway.workdir / ".rolegate")  # what `dev-token` mints with
    user, admin = issuer.mint(), issuer.mint(roles=("rolegate.admin",))

    as_user = await client.get("/admin/policy", headers={"Authorization": f"Bearer {user}"})
    as_admin = await client.get("/admin/policy", headers={"Authorization": f"Bearer {admin}"})

    assert as_user.status_code == 403
    assert as_admin.status_code == 200, as_admin.text


async def test_dev_token_before_any_serve_explains_what_to_do(tmp_path: Path) -> None:
    result = rolegate(tmp_path, "dev-token")

    assert result.returncode == 1
    assert "rolegate serve" in result.stderr
    assert "Traceback" not in result.stderr
