"""Each job's dependencies, begin time and array (``sbatch --dependency``, ``--begin``, ``--array``):
the array's id (its first task's job id), the task's index, the array's size and throttle. Jobs
written before this revision have none of them.

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
        for name in ("array_job_id", "array_task_id", "array_count", "array_limit"):
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for name in ("array_limit", "array_count", "array_task_id", "array_job_id"):
            batch.drop_column(name)
        batch.drop_column("begin_s")
        batch.drop_column("dependency")
