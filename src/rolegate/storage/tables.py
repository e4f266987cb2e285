"""The tables, as SQLAlchemy Core metadata. Migrations in `migrations/versions` create them.

Times are epoch seconds (floats), so the injected clock is the only source of time; usage rows
also carry their UTC `day` (YYYY-MM-DD) so reports group by day the same way on every database.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON, BigInteger, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text, false,
)

metadata = MetaData()

api_keys = Table(
    "api_keys", metadata,
    Column("id", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("hint", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("roles", JSON, nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("models", JSON, nullable=True),
    Column("limits", JSON, nullable=True),
    Column("expires_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Index("ix_api_keys_owner", "owner"),
)

usage = Table(
    "usage_records", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("day", String(10), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("issuer", String(200), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("client_id", String(200), nullable=True),
    Column("key_id", String(32), nullable=True),
    Column("end_user", String(200), nullable=True),
    Column("rule", String(200), nullable=True),
    Column("model", String(256), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("deployment", String(256), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("is_stream", Boolean, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("total_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("status", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("estimated", Boolean, nullable=False, server_default=false()),
    # Made by the gateway for each record (never taken from the request): a record written
    # twice (replayed from the spool after a crash) is kept once. NULL on older rows.
    Column("record_id", String(32), nullable=True),
    Index("ix_usage_ts", "ts"),
    Index("ux_usage_record_id", "record_id", unique=True),
    Index("ix_usage_day", "day"),
    Index("ix_usage_principal", "issuer", "subject"),
)

# The configured claims of each usage record's caller (`accounting.dimensions`): one row per
# value, so a record of a caller in three groups counts once under each group. `record_id` is
# `usage_records.id`; no foreign key, so usage records can be truncated or archived as before
# (written in the same transaction as their record, and only ever read joined to it).
usage_dimensions = Table(
    "usage_dimensions", metadata,
    Column("record_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("value", String(200), primary_key=True),
    Index("ix_usage_dimensions_name_value", "name", "value"),
)

# Usage records the database refused even alone (a batch that kept failing was split down to
# them): kept here, as JSON text, so one bad record never blocks the ones queued behind it.
usage_dead_letters = Table(
    "usage_dead_letters", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("record", Text, nullable=False),
    Index("ix_usage_dead_letters_ts", "ts"),
)

# The audit log: append-only, each entry hashing the one before it (`audit/chain.py`). `seq` is
# the key, so two writers that read the same head cannot both append after it.
audit_log = Table(
    "audit_log", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=False),
    Column("ts", Float, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("actor", Text, nullable=True),
    Column("data", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_ts", "ts"),
)
