"""`rolegate usage --by <dimension>`: totals grouped by a claim named in
`accounting.dimensions`, a record counting under each of its values."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rolegate.cli import cli

CONFIG = """
models: [{name: echo, provider: mock}]
auth: {dev_issuer: {enabled: true}}
accounting: {dimensions: [groups, department]}
policy:
  - name: users
    when: {authenticated: true}
    allow: {routes: [inference], models: ["*"]}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "rolegate.yaml"
    path.write_text(CONFIG)
    return path


def record(connection: sqlite3.Connection, request_id: str, tokens: int,
           dimensions: list[tuple[str, str]]) -> None:
    cursor = connection.execute(
        "INSERT INTO usage_records (ts, day, request_id, issuer, subject, model, provider, "
        "deployment, operation, is_stream, prompt_tokens, completion_tokens, total_tokens, "
        "cost_usd, status, latency_ms) VALUES (strftime('%s','now'), '2030-01-01', ?, 'dev', "
        "'alice', 'echo', 'mock', 'echo', 'chat/completions', 0, 0, ?, ?, 0.5, 200, 1.0)",
        (request_id, tokens, tokens))
    connection.executemany("INSERT INTO usage_dimensions VALUES (?, ?, ?)",
                           [(cursor.lastrowid, name, value) for name, value in dimensions])


def test_usage_by_a_dimension_counts_a_record_under_each_value(config: Path):
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade", "--config", str(config)]).exit_code == 0
    with sqlite3.connect(config.parent / "rolegate.db") as connection:
        record(connection, "r1", 111, [("groups", "finance"), ("groups", "legal"),
                                       ("department", "ops")])
        record(connection, "r2", 222, [("groups", "finance")])

    result = runner.invoke(cli, ["usage", "--by", "groups", "--config", str(config)])
    lines = result.stdout.splitlines()

    assert result.exit_code == 0, result.output
    assert any("groups" in line for line in lines)
    assert any("finance" in line and "333" in line for line in lines)
    assert any("legal" in line and "111" in line for line in lines)


def test_usage_by_an_unconfigured_dimension_names_the_configured_ones(config: Path):
    result = CliRunner().invoke(cli, ["usage", "--by", "tid", "--config", str(config)])

    assert result.exit_code == 1
    assert "department" in result.stderr and "groups" in result.stderr
