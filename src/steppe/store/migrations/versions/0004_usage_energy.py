"""The meter's energy figures on usage records: IT and facility kWh, kg CO2e, KZT and where the
IT energy came from (``model``, ``nvml``, ``mixed``; ``none`` without a site). Rows written
before this revision keep their GPU-seconds and read as 0 energy from source ``none``.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ENERGY_COLUMNS = ("it_kwh", "facility_kwh", "carbon_kg", "cost_kzt")


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        for name in ENERGY_COLUMNS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("energy_source", sa.String(length=8), nullable=False, server_default="none"))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("energy_source")
        for name in reversed(ENERGY_COLUMNS):
            batch.drop_column(name)
