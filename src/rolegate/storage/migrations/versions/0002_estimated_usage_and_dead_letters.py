"""Usage records say whether their tokens were estimated; records no database would take are set
aside in `usage_dead_letters` instead of blocking the ones behind them.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("estimated", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
    op.create_table(
        "usage_dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("record", sa.Text, nullable=False),
    )
    op.create_index("ix_usage_dead_letters_ts", "usage_dead_letters", ["ts"])


def downgrade() -> None:
    op.drop_table("usage_dead_letters")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("estimated")
