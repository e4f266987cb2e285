"""Alembic environment: migrations always run on a connection handed in by `Database.upgrade`."""

from __future__ import annotations

from alembic import context

from rolegate.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `rolegate db upgrade`")
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
