"""Each job's submit directory: where its user submitted it from (the job's ``SLURM_SUBMIT_DIR``).
Jobs written before this revision have none, and their ``SLURM_SUBMIT_DIR`` is their working directory.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("submit_dir", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("submit_dir")
