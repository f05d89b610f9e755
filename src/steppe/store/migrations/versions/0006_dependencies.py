"""Each job's dependencies and begin time (``sbatch --dependency``, ``--begin``). Jobs written before
this revision have neither.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("dependency", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("begin_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("begin_s")
        batch.drop_column("dependency")
