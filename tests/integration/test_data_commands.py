"""`rolegate keys create|list|revoke`, `rolegate usage` and `rolegate db upgrade`, run against a
configuration's SQLite database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rolegate.cli import cli
from tests.support.storage import PEPPER

CONFIG = f"""
models: [{{name: echo, provider: mock}}]
keys: {{enabled: true, pepper: "{PEPPER}"}}
policy:
  - name: services
    when: {{issuers: [apikey], roles: [svc]}}
    allow: {{routes: [inference], models: ["*"]}}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "rolegate.yaml"
    path.write_text(CONFIG)
    return path


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_db_upgrade_creates_the_tables_next_to_the_config(config: Path):
    run("db", "upgrade", "--config", str(config))

    with sqlite3.connect(config.parent / "rolegate.db") as connection:
        tables = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"api_keys", "usage_records", "alembic_version"} <= tables


def test_a_key_created_on_the_command_line_is_listed_by_hint_and_can_be_revoked(config: Path):
    key = run("keys", "create", "--config", str(config), "--name", "ci", "--owner", "team-a",
              "--roles", "svc", "--expires-in", "30d", "--rpm", "10").strip()

    listed = run("keys", "list", "--config", str(config))
    with sqlite3.connect(config.parent / "rolegate.db") as connection:
        key_id, limits, expires, created = connection.execute(
            "SELECT id, limits, expires_at, created_at FROM api_keys").fetchone()
    run("keys", "revoke", key_id, "--config", str(config))
    after = run("keys", "list", "--config", str(config))

    assert key.startswith("rg-") and key not in listed
    assert key[-4:] in listed and key_id in listed
    assert '"rpm": 10' in limits
    assert expires == pytest.approx(created + 30 * 86400, abs=5)
    assert key_id not in after


def test_revoking_an_unknown_key_fails(config: Path):
    result = CliRunner().invoke(cli, ["keys", "revoke", "key_nope", "--config", str(config)])

    assert result.exit_code == 1


def test_usage_prints_totals_by_the_chosen_grouping(config: Path):
    run("db", "upgrade", "--config", str(config))
    with sqlite3.connect(config.parent / "rolegate.db") as connection:
        connection.execute(
            "INSERT INTO usage_records (ts, day, request_id, issuer, subject, model, provider, "
            "deployment, operation, is_stream, prompt_tokens, completion_tokens, total_tokens, "
            "cost_usd, status, latency_ms) VALUES (strftime('%s','now'), '2030-01-01', 'r1', "
            "'apikey', 'team-a', 'echo', 'mock', 'echo', 'chat/completions', 0, 3, 4, 7, "
            "0.25, 200, 1.0)")

    report = run("usage", "--by", "model", "--since", "1d", "--config", str(config))

    assert "echo" in report and "7" in report and " 0.25 " in report


def insert_usage(config: Path, *costs: float) -> None:
    run("db", "upgrade", "--config", str(config))
    with sqlite3.connect(config.parent / "rolegate.db") as connection:
        for index, cost in enumerate(costs):
            connection.execute(
                "INSERT INTO usage_records (ts, day, request_id, issuer, subject, model, "
                "provider, deployment, operation, is_stream, prompt_tokens, completion_tokens, "
                "total_tokens, cost_usd, status, latency_ms) VALUES (strftime('%s','now'), "
                f"'2030-01-01', 'r{index}', 'apikey', 'team-a', 'echo', 'mock', 'echo', "
                "'chat/completions', 0, 3, 4, 7, ?, 200, 1.0)", (cost,))


def test_usage_json_gives_the_rows_with_costs_rounded_to_micro_dollars(config: Path):
    insert_usage(config, 0.1, 0.2, 0.0000123)

    rows = json.loads(run("usage", "--by", "model", "--json", "--config", str(config)))

    assert rows == [{"model": "echo", "requests": 3, "prompt_tokens": 9,
                     "completion_tokens": 12, "total_tokens": 21, "estimated_requests": 0,
                     "cost_usd": 0.300012}]


@pytest.mark.parametrize(("cost", "shown"), [(0.000012, " 0.000012 "), (12.5, " 12.50 "),
                                             (0.0, " 0 ")], ids=["small", "whole", "none"])
def test_usage_prints_costs_with_sensible_precision(config: Path, cost: float, shown: str):
    insert_usage(config, cost)

    assert shown in run("usage", "--by", "model", "--config", str(config))


def test_a_piped_usage_table_does_not_wrap(config: Path):
    run("db", "upgrade", "--config", str(config))
    with sqlite3.connect(config.parent / "rolegate.db") as connection:
        connection.execute(
            "INSERT INTO usage_records (ts, day, request_id, issuer, subject, model, provider, "
            "deployment, operation, is_stream, prompt_tokens, completion_tokens, total_tokens, "
            "cost_usd, status, latency_ms) VALUES (strftime('%s','now'), '2030-01-01', 'r1', "
            "'a-rather-long-issuer-name', 'a-subject-name-that-is-long-too@example.com', 'echo', "
            "'mock', 'echo', 'chat/completions', 0, 3, 4, 7, 0.25, 200, 1.0)")

    result = subprocess.run([sys.executable, "-m", "rolegate", "usage", "--config", str(config)],
                            capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if k != "COLUMNS"})

    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "a-rather-long-issuer" in line)
    assert "a-subject-name-that-is-long-too@example.com" in row
    assert "a-rather-long-issuer-name" in row


def key_id_of(config: Path) -> str:
    with sqlite3.connect(config.parent / "rolegate.db") as connection:
        return str(connection.execute(
            "SELECT id FROM api_keys ORDER BY created_at DESC").fetchone()[0])


def test_keys_list_json_gives_each_key_without_its_secret(config: Path):
    key = run("keys", "create", "--config", str(config), "--name", "ci", "--owner", "team-a",
              "--roles", "svc", "--rpm", "10").strip()

    keys = json.loads(run("keys", "list", "--json", "--config", str(config)))

    assert [(k["name"], k["owner"], k["roles"], k["limits"]) for k in keys] == [
        ("ci", "team-a", ["svc"], {"rpm": 10})]
    assert keys[0]["id"] == key_id_of(config) and keys[0]["hint"].endswith(key[-4:])
    assert key not in json.dumps(keys)


def test_keys_update_changes_only_the_given_fields_and_keeps_other_limits(config: Path):
    run("keys", "create", "--config", str(config), "--name", "ci", "--owner", "team-a",
        "--roles", "svc", "--rpm", "10")
    key_id = key_id_of(config)

    result = CliRunner().invoke(cli, ["keys", "update", key_id, "--name", "ci-2", "--tpm", "500",
                                      "--models", "echo", "--config", str(config)])
    keys = json.loads(run("keys", "list", "--json", "--config", str(config)))

    assert result.exit_code == 0, result.output
    assert f"Updated {key_id}: name, models" in result.stderr
    assert (keys[0]["name"], keys[0]["owner"], keys[0]["roles"], keys[0]["models"]) == (
        "ci-2", "team-a", ["svc"], ["echo"])
    assert keys[0]["limits"] == {"rpm": 10, "tpm": 500}


@pytest.mark.parametrize(("args", "message"), [
    (["key_nope", "--name", "x"], "No key has the id 'key_nope'"),
    (["key_nope"], "Nothing to change"),
], ids=["unknown-key", "no-change"])
def test_keys_update_refuses_an_unknown_key_or_no_change(config: Path, args: list[str],
                                                        message: str):
    run("db", "upgrade", "--config", str(config))
    result = CliRunner().invoke(cli, ["keys", "update", *args, "--config", str(config)])

    assert result.exit_code == 1
    assert message in result.stderr


def test_revoking_a_revoked_key_says_it_already_was(config: Path):
    run("keys", "create", "--config", str(config), "--name", "ci", "--owner", "team-a",
        "--roles", "svc")
    key_id = key_id_of(config)

    first = CliRunner().invoke(cli, ["keys", "revoke", key_id, "--config", str(config)])
    again = CliRunner().invoke(cli, ["keys", "revoke", key_id, "--config", str(config)])

    assert first.stderr.strip() == f"Revoked {key_id}."
    assert again.exit_code == 0
    assert again.stderr.startswith(f"{key_id} was already revoked on ")
    assert "nothing changed" in again.stderr


def test_creating_a_key_whose_roles_or_models_grant_nothing_warns(config: Path):
    result = CliRunner().invoke(cli, [
        "keys", "create", "--config", str(config), "--name", "ci", "--owner", "team-a",
        "--roles", "svc,reporter", "--models", "echo,gpt-*"])

    assert result.exit_code == 0
    assert result.stdout.startswith("rg-")
    assert "warning: role 'reporter' is named by no policy rule" in result.stderr
    assert "warning: --models 'gpt-*' matches no configured model (known: echo)" in result.stderr
    assert "'svc'" not in result.stderr and "'echo'" not in result.stderr


def test_an_unknown_grouping_is_refused(config: Path):
    result = CliRunner().invoke(cli, ["usage", "--by", "colour", "--config", str(config)])

    assert result.exit_code == 1


@pytest.mark.parametrize("args", [["usage", "--model", "gpt\x00-4o"],
                                  ["usage", "--subject", "team\x1b[2J"],
                                  ["keys", "create", "--name", "ci", "--owner", "team\x00a"]],
                         ids=["usage-model-nul", "usage-subject-escape", "key-owner-nul"])
def test_a_control_character_in_a_filter_or_owner_is_refused(config: Path, args: list[str]):
    result = CliRunner().invoke(cli, [*args, "--config", str(config)])

    assert result.exit_code == 1
    assert "control characters" in result.stderr
    assert "Traceback" not in result.output


def explain_key(config: Path, key: str, model: str = "echo") -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["explain", "--token", key, "--route",
                                      "/v1/chat/completions", "--model", model,
                                      "--config", str(config)])
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout


def test_explain_shows_why_an_api_key_is_allowed_or_refused(config: Path):
    allowed = run("keys", "create", "--config", str(config), "--name", "ci", "--owner",
                  "team-a", "--roles", "svc").strip()
    other = run("keys", "create", "--config", str(config), "--name", "web", "--owner",
                "team-b", "--roles", "web").strip()
    narrow = run("keys", "create", "--config", str(config), "--name", "narrow", "--owner",
                 "team-c", "--roles", "svc", "--models", "gpt-4o-mini").strip()

    code, out = explain_key(config, allowed)
    assert code == 0 and "ALLOW" in out and "team-a" in out and "svc" in out

    code, out = explain_key(config, other)
    assert code == 1 and "403 insufficient_scope" in out and "services" in out

    code, out = explain_key(config, narrow)
    assert code == 1 and "403 model_not_allowed" in out and "gpt-4o-mini" in out

    code, out = explain_key(config, "rg-" + "x" * 40)
    assert code == 1 and "unknown_api_key" in out


def test_explain_with_a_revoked_key_says_so(config: Path):
    key = run("keys", "create", "--config", str(config), "--name", "ci", "--owner", "team-a",
              "--roles", "svc").strip()
    with sqlite3.connect(config.parent / "rolegate.db") as connection:
        (key_id,) = connection.execute("SELECT id FROM api_keys").fetchone()
    run("keys", "revoke", key_id, "--config", str(config))

    code, out = explain_key(config, key)
    assert code == 1 and "api_key_revoked" in out


def test_explain_with_a_key_when_keys_are_off_says_so(tmp_path: Path):
    path = tmp_path / "rolegate.yaml"
    path.write_text("""
models: [{name: echo, provider: mock}]
auth: {dev_issuer: {enabled: true}}
policy:
  - {name: services, when: {roles: [svc]}, allow: {routes: [inference], models: ["*"]}}
""")

    code, out = explain_key(path, "rg-" + "x" * 40)
    assert code == 1 and "not enabled" in out
