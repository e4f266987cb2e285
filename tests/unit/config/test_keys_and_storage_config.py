"""Configuration checks for keys, the database and limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rolegate.config.load import ConfigError, load_settings, read_pepper, validate_settings

BASE: dict[str, Any] = {
    "models": [{"name": "echo", "provider": "mock"}],
    "auth": {"dev_issuer": {"enabled": True}},
    "policy": [{"name": "services", "when": {"issuers": ["apikey"]},
                "allow": {"routes": ["inference"], "models": ["*"]}}],
}
KEYS = {"enabled": True, "pepper": "0123456789abcdef0123"}


def problems(data: dict[str, Any]) -> list[str]:
    try:
        validate_settings(data, source="<test>")
    except ConfigError as exc:
        return exc.problems
    return []


def test_issuer_apikey_is_known_only_when_keys_are_enabled():
    with_keys = {**BASE, "keys": KEYS, "database": {"url": "sqlite+aiosqlite:///x.db"}}

    assert any("unknown issuer 'apikey'" in p for p in problems(BASE))
    assert problems(with_keys) == []


def test_keys_need_a_database_and_exactly_one_pepper_source():
    assert any("need a database" in p for p in problems({**BASE, "keys": KEYS}))
    assert any("exactly one of pepper or pepper_file" in p for p in problems(
        {**BASE, "keys": {"enabled": True}, "database": {"url": "sqlite+aiosqlite:///x"}}))


def test_an_issuer_may_not_take_the_reserved_name_apikey():
    data = {**BASE, "keys": KEYS, "database": {"url": "sqlite+aiosqlite:///x.db"},
            "auth": {"issuers": [{"name": "apikey", "issuer": "https://idp", "audiences": ["a"],
                                  "jwks_url": "https://idp/jwks"}]}}

    assert any("reserved" in p for p in problems(data))


def test_redis_limits_need_a_url_and_rule_limits_must_be_positive():
    data = {**BASE, "limits": {"backend": "redis"}}
    data["policy"] = [{**BASE["policy"][0], "when": {"authenticated": True},
                       "allow": {"routes": ["inference"], "limits": {"rpm": 0}}}]

    found = problems(data)

    assert any("limits.url" in p for p in found)
    assert any("policy[0].allow.limits.rpm" in p for p in found)


def test_a_config_file_without_a_database_gets_rolegate_db_next_to_it(tmp_path: Path):
    path = tmp_path / "rolegate.yaml"
    path.write_text("models: [{name: echo, provider: mock}]\n"
                    "auth: {dev_issuer: {enabled: true}}\n")

    settings = load_settings(path, environ={})

    assert settings.database.url == f"sqlite+aiosqlite:///{tmp_path / 'rolegate.db'}"
    assert settings.database.migrate_on_start is None


def test_the_pepper_can_come_from_a_file(tmp_path: Path):
    pepper = tmp_path / "pepper"
    pepper.write_text("a-long-enough-pepper-value\n")
    settings = validate_settings({**BASE, "database": {"url": "sqlite+aiosqlite:///x"},
                                  "keys": {"enabled": True, "pepper_file": str(pepper)}},
                                 source="<test>")

    assert read_pepper(settings.keys) == b"a-long-enough-pepper-value"


def test_a_short_pepper_file_is_refused(tmp_path: Path):
    pepper = tmp_path / "pepper"
    pepper.write_text("short")
    settings = validate_settings({**BASE, "database": {"url": "sqlite+aiosqlite:///x"},
                                  "keys": {"enabled": True, "pepper_file": str(pepper)}},
                                 source="<test>")

    with pytest.raises(ConfigError):
        read_pepper(settings.keys)


def test_the_audit_log_needs_a_database():
    audited = {**BASE, "keys": KEYS, "audit": {"enabled": True}}

    assert "audit.enabled: the audit log needs a database (set database.url)" in problems(
        audited)
    assert problems({**audited, "database": {"url": "sqlite+aiosqlite:///x.db"}}) == []
