"""The engine never puts a statement's values in an error's text, on SQLite and PostgreSQL: a
failing statement logged or shown by a command reveals no key hash."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from rolegate.config.model import DatabaseConfig
from rolegate.storage.database import Database
from rolegate.storage.tables import api_keys

KEY_HASH = "f00d" * 16


def key_row(key_id: str) -> dict[str, Any]:
    return {"id": key_id, "key_hash": KEY_HASH, "hint": "rg-...abcd", "name": "n",
            "owner": "o", "roles": [], "scopes": [], "created_at": 0.0}


async def test_a_failing_statement_does_not_show_its_parameters(
        database: dict[str, Any], caplog: pytest.LogCaptureFixture):
    storage = Database(DatabaseConfig.model_validate(database))
    await storage.upgrade()
    second = "key_" + secrets.token_hex(6)  # made here, so no source line shows it
    async with storage.engine.begin() as connection:
        await connection.execute(insert(api_keys).values(**key_row("key_a")))

    with caplog.at_level(logging.DEBUG, logger="sqlalchemy"), \
            pytest.raises(IntegrityError) as raised:
        async with storage.engine.begin() as connection:
            await connection.execute(insert(api_keys).values(**key_row(second)))
    # As the gateway's last-resort guard would log it: with the traceback and its causes.
    logging.getLogger("rolegate.test").error("write failed: %s", raised.value,
                                             exc_info=raised.value)
    await storage.close()

    assert "parameters hidden" in str(raised.value)
    for text in (str(raised.value), repr(raised.value), caplog.text):
        assert KEY_HASH not in text
        assert second not in text


async def test_a_value_the_driver_cannot_encode_is_not_quoted(
        database: dict[str, Any], caplog: pytest.LogCaptureFixture):
    storage = Database(DatabaseConfig.model_validate(database))
    await storage.upgrade()
    secret = secrets.token_hex(6)
    row = {**key_row("key_a"), "name": secret + "\ud800"}  # no UTF-8 encoder takes it

    with pytest.raises((SQLAlchemyError, UnicodeEncodeError)) as raised:  # SQLite: the latter
        async with storage.engine.begin() as connection:
            await connection.execute(insert(api_keys).values(**row))
    logging.getLogger("rolegate.test").error("write failed", exc_info=raised.value)
    await storage.close()

    for text in (str(raised.value), caplog.text):
        assert KEY_HASH not in text and secret not in text
