"""Outcomes of the early-signal model: ml_outcomes gains surprise_pct (the report's EPS surprise).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from vfr.opsdb.schema import OUTCOMES_TABLE

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: outcomes of the return model have no surprise
    op.add_column(OUTCOMES_TABLE, sa.Column("surprise_pct", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table(OUTCOMES_TABLE) as batch:  # SQLite drops columns by copying the table
        batch.drop_column("surprise_pct")
