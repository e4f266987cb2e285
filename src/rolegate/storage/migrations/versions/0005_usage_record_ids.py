"""A unique id per usage record, so a record written twice (replayed from the spool after a
crash between the database's commit and the spool's clean-up) is kept once.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    # Nullable: rows written before this revision have no id (a unique index allows many NULLs
    # on both PostgreSQL and SQLite).
    with op.batch_alter_table("usage_records") as table:
        table.add_column(sa.Column("record_id", sa.String(32), nullable=True))
    op.create_index("ux_usage_record_id", "usage_records", ["record_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_usage_record_id", "usage_records")
    with op.batch_alter_table("usage_records") as table:
        table.drop_column("record_id")
