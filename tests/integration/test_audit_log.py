"""The audit log end to end, on SQLite and on PostgreSQL: admin changes and authorization
decisions land in one hash chain; `rolegate audit verify` finds an edited, deleted or reordered
entry; `rolegate audit export --since` writes JSON lines; concurrent appenders never fork the
chain."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text
from typer.testing import CliRunner

from rolegate.audit.chain import AuditEvent, first_break
from rolegate.audit.log import AuditLog
from rolegate.audit.store import AuditStore
from rolegate.cli import cli
from rolegate.config.model import DatabaseConfig
from rolegate.storage.database import Database
from tests.support.gateways import CHAT, bearer, keyed_config


def audited(database: dict[str, Any], upstream_url: str, tmp_path: Path) -> dict[str, Any]:
    return keyed_config(database, upstream_url, audit={
        "enabled": True, "flush_interval": 0.05, "mirror_file": str(tmp_path / "audit.jsonl")})


async def entries_of(database: dict[str, Any]) -> list[Any]:
    db = Database(DatabaseConfig.model_validate(database))
    try:
        return [entry async for entry in AuditStore(db.engine).entries()]
    finally:
        await db.close()


async def execute(database: dict[str, Any], *statements: str) -> None:
    db = Database(DatabaseConfig.model_validate(database))
    try:
        async with db.engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await db.close()


async def written(database: dict[str, Any], is_done: Any) -> list[Any]:
    """The entries once `is_done(entries)` (decisions are written every 50 ms)."""
    for _ in range(100):
        entries = await entries_of(database)
        if is_done(entries):
            return entries
        await asyncio.sleep(0.05)
    raise AssertionError(f"not written: {entries}")


def decisions_by(subject: str, entries: list[Any]) -> list[Any]:
    return [entry for entry in entries if entry.kind == "authz"
            and entry.actor["subject"] == subject]


def audit_command(tmp_path: Path, database: dict[str, Any], *args: str) -> Any:
    config = tmp_path / "cli.yaml"
    config.write_text(yaml.safe_dump({"database": database,
                                      "auth": {"dev_issuer": {"enabled": True}}}))
    return CliRunner().invoke(cli, ["audit", *args, "--config", str(config)])


async def test_admin_changes_and_decisions_are_chained_with_their_actor(
        gateway_for, settings_from, database, upstream, admin, dev_issuer, tmp_path):
    gateway = await gateway_for(settings_from(audited(database, upstream.url, tmp_path)))
    created = (await gateway.post("/admin/keys", headers=admin, json={
        "name": "svc", "owner": "team", "roles": ["svc"]})).json()
    await gateway.patch(f"/admin/keys/{created['id']}", headers=admin, json={"name": "renamed"})
    assert (await gateway.post("/v1/chat/completions", json=CHAT,
                               headers=bearer(created["key"]))).status_code == 200
    await gateway.delete(f"/admin/keys/{created['id']}", headers=admin)
    stranger = bearer(dev_issuer.mint(subject="eve", roles=("nobody",)))
    assert (await gateway.post("/v1/chat/completions", json=CHAT,
                               headers=stranger)).status_code == 403
    entries = await written(database, lambda entries: any(
        entry.data.get("decision") == "deny" for entry in entries))

    assert first_break(entries) is None
    kinds = [entry.kind for entry in entries]
    for kind in ("key.create", "key.update", "key.revoke"):
        change = entries[kinds.index(kind)]
        assert change.actor is not None and change.actor["subject"] == "ops"
        assert change.actor["issuer"] == decisions_by("ops", entries)[0].actor["issuer"]
        assert change.data["key"]["id"] == created["id"]
        assert created["key"] not in json.dumps(change.data)
    assert entries[kinds.index("key.update")].data["changed"] == ["name"]
    decisions = [entry for entry in entries if entry.kind == "authz"]
    allowed = [entry for entry in decisions if entry.data["decision"] == "allow"
               and entry.data["route"] == "inference"]
    assert allowed and allowed[0].data["rule"] == "services"
    assert allowed[0].data["model"] == "gpt-4o"
    assert allowed[0].data["key_id"] == created["id"]
    denied = [entry for entry in decisions if entry.data["decision"] == "deny"]
    assert [entry.actor["subject"] for entry in denied] == ["eve"]
    mirrored = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert [json.loads(line)["hash"] for line in mirrored] == [entry.hash for entry in entries]


async def append_events(database: dict[str, Any], count: int, *, start: float = 1000.0) -> None:
    db = Database(DatabaseConfig.model_validate(database))
    try:
        await db.upgrade()
        await AuditStore(db.engine).append([
            AuditEvent(start + index, "key.create", {"issuer": "https://idp", "subject": "ops"},
                       {"key": {"id": f"k{index}"}}) for index in range(count)])
    finally:
        await db.close()


@pytest.mark.parametrize(("tampering", "broken_at"), [
    (["UPDATE audit_log SET data = '{\"key\":{\"id\":\"forged\"}}' WHERE seq = 3"], 3),
    (["DELETE FROM audit_log WHERE seq = 2"], 3),
    (["UPDATE audit_log SET seq = 100 WHERE seq = 2", "UPDATE audit_log SET seq = 2 WHERE seq = 3",
      "UPDATE audit_log SET seq = 3 WHERE seq = 100"], 2),
], ids=["edited", "deleted", "reordered"])
async def test_audit_verify_names_the_first_tampered_entry(database, tmp_path, tampering,
                                                           broken_at):
    await append_events(database, 5)
    held = await asyncio.to_thread(audit_command, tmp_path, database, "verify")
    assert held.exit_code == 0, held.output
    assert "holds: 5 entries" in held.stdout

    await execute(database, *tampering)
    result = await asyncio.to_thread(audit_command, tmp_path, database, "verify")

    assert result.exit_code == 1
    assert f"broken at entry {broken_at}:" in result.stderr


async def test_audit_export_since_writes_the_later_entries_as_json_lines(database, tmp_path):
    await append_events(database, 4, start=1000.0)
    await append_events(database, 3, start=5000.0)

    result = await asyncio.to_thread(audit_command, tmp_path, database, "export",
                                     "--since", "4000")

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["seq"] for line in lines] == [5, 6, 7]
    assert {"seq", "ts", "kind", "actor", "data", "prev_hash", "hash"} == set(lines[0])
    everything = tmp_path / "all.jsonl"
    exported = await asyncio.to_thread(audit_command, tmp_path, database, "export", "-o",
                                       str(everything))
    assert exported.exit_code == 0, exported.output
    checked = CliRunner().invoke(cli, ["audit", "verify", "--file", str(everything)])
    assert checked.exit_code == 0, checked.output
    assert "holds: 7 entries" in checked.stdout


async def test_concurrent_appenders_in_two_processes_never_fork_the_chain(database):
    """Two writers with engines of their own (as two replicas have), each taking many
    concurrent commits and queued decisions: one chain, every entry in it once."""
    await append_events(database, 1)
    dbs = [Database(DatabaseConfig.model_validate(database)) for _ in range(2)]
    logs = [AuditLog(AuditStore(db.engine), flush_interval=0.01, batch_size=7) for db in dbs]
    try:
        for log in logs:
            await log.start()
        commits = []
        for index in range(40):
            log = logs[index % 2]
            log.record("authz", {"issuer": "i", "subject": f"q{index}"}, {"n": index})
            commits.append(log.commit("key.update", {"issuer": "i", "subject": f"c{index}"},
                                      {"n": index}))
        await asyncio.gather(*commits)
        for log in logs:
            await log.stop()
    finally:
        for db in dbs:
            await db.close()

    entries = await entries_of(database)

    assert first_break(entries) is None
    assert len(entries) == 1 + 80
    assert sorted(entry.actor["subject"] for entry in entries[1:]) == sorted(
        [f"q{index}" for index in range(40)] + [f"c{index}" for index in range(40)])


async def test_audit_verify_walks_a_chain_longer_than_one_page(database, tmp_path):
    await append_events(database, 1500)
    await append_events(database, 1000, start=9000.0)
    held = await asyncio.to_thread(audit_command, tmp_path, database, "verify")
    assert "holds: 2500 entries" in held.stdout, held.output

    await execute(database, "DELETE FROM audit_log WHERE seq = 2100")
    result = await asyncio.to_thread(audit_command, tmp_path, database, "verify")

    assert result.exit_code == 1
    assert "broken at entry 2101:" in result.stderr
