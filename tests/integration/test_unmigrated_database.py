"""A PostgreSQL schema nobody migrated: the commands and the gateway refuse it in one line that
names `rolegate db upgrade`, rather than starting, reporting ready and answering 503."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from rolegate.app import build_app
from rolegate.cli import cli
from rolegate.config.model import DatabaseConfig, Settings
from rolegate.storage.database import head_revision
from tests.support.storage import PEPPER, POSTGRES_URL, _execute, run_apart


@pytest.fixture
def empty_schema() -> Iterator[str]:
    schema = f"rg_empty_{secrets.token_hex(4)}"
    yield schema
    run_apart(_execute(DatabaseConfig(url=POSTGRES_URL),
                       f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def config_text(schema: str, *, migrate: bool = False) -> str:
    return f"""
database: {{url: "{POSTGRES_URL}", schema: {schema}, migrate_on_start: {str(migrate).lower()}}}
keys: {{enabled: true, pepper: "{PEPPER}"}}
models: [{{name: echo, provider: mock}}]
policy:
  - name: services
    when: {{issuers: [apikey], roles: [svc]}}
    allow: {{routes: [inference], models: ["*"]}}
"""


@pytest.fixture
def config(tmp_path: Path, empty_schema: str) -> Path:
    path = tmp_path / "rolegate.yaml"
    path.write_text(config_text(empty_schema))
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_keys_list_before_migrating_is_a_one_line_error_naming_db_upgrade(config: Path):
    result = invoke("keys", "list", "--config", str(config))

    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "no rolegate tables" in lines[0] and "rolegate db upgrade" in lines[0]
    assert "Traceback" not in result.output and "SELECT" not in result.output


def test_db_upgrade_says_from_which_revision_to_which_then_that_it_is_current(config: Path):
    first = invoke("db", "upgrade", "--config", str(config))
    second = invoke("db", "upgrade", "--config", str(config))
    listed = invoke("keys", "list", "--config", str(config))

    head = head_revision()
    assert first.exit_code == 0 and f"from empty to {head}" in first.output
    assert second.exit_code == 0 and f"already current (revision {head})" in second.output
    assert listed.exit_code == 0, listed.output


def test_serve_refuses_an_unmigrated_schema_and_names_the_command(config: Path):
    result = subprocess.run([sys.executable, "-m", "rolegate", "serve", "--config", str(config),
                             "--port", "0"], capture_output=True, text=True, timeout=60)

    [line] = [json.loads(line) for line in result.stderr.splitlines()]
    assert result.returncode == 1
    assert (line["level"], line["logger"]) == ("ERROR", "rolegate.server")
    assert f"rolegate db upgrade --config {config}" in line["message"]


async def test_the_gateway_fails_to_start_on_an_unmigrated_schema_with_a_clear_reason(
        empty_schema: str):
    settings = Settings.model_validate({
        "database": {"url": POSTGRES_URL, "schema": empty_schema, "migrate_on_start": False},
        "keys": {"enabled": True, "pepper": PEPPER},
        "models": [{"name": "echo", "provider": "mock"}], "policy": []})
    app = build_app(settings)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    await asyncio.wait_for(app({"type": "lifespan"}, inbox.get, outbox.put), 20)
    message = await outbox.get()

    assert message["type"] == "lifespan.startup.failed"
    assert "no rolegate tables" in message["message"]
    assert "rolegate db upgrade" in message["message"]


async def test_readiness_reports_the_database_once_it_is_migrated_at_start(empty_schema: str):
    settings = Settings.model_validate({
        "database": {"url": POSTGRES_URL, "schema": empty_schema, "migrate_on_start": True},
        "models": [{"name": "echo", "provider": "mock"}], "policy": []})
    app = build_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gateway") as client:
        before = await client.get("/health/ready")
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        lifespan = asyncio.ensure_future(app({"type": "lifespan"}, inbox.get, outbox.put))
        await inbox.put({"type": "lifespan.startup"})
        assert (await asyncio.wait_for(outbox.get(), 20))["type"] == "lifespan.startup.complete"
        after = await client.get("/health/ready")
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(lifespan, 20)

    assert (before.status_code, before.json()) == (
        503, {"status": "unavailable", "not_ready": {"database": "not opened yet"}})
    assert (after.status_code, after.json()) == (200, {"status": "ok"})
