"""Usage records carry the configured claims of their caller (`accounting.dimensions`), one row
per value in `usage_dimensions`, so usage can be grouped by tenant, group or department.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "usage_dimensions",
        sa.Column("record_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                  primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.String(200), primary_key=True),
    )
    op.create_index("ix_usage_dimensions_name_value", "usage_dimensions", ["name", "value"])


def downgrade() -> None:
    op.drop_table("usage_dimensions")
