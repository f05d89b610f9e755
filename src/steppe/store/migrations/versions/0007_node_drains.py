"""Drained nodes (``steppe node drain NODE --reason``): one row per drained node, kept across a
restart of the hub.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_drains",
        sa.Column("node", sa.String(length=200), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("since_s", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("node_drains")
