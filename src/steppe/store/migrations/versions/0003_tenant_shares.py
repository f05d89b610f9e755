"""Tenant shares in the store (an organisation's fair-share weight and concurrent-GPU quota) and
each job's workload class (training, inference, interactive: its power model).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("fairshare_weight", sa.Float(), nullable=True))
        batch.add_column(sa.Column("gpu_quota", sa.Integer(), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("workload", sa.String(length=16), nullable=False, server_default="training"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("workload")
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("gpu_quota")
        batch.drop_column("fairshare_weight")
