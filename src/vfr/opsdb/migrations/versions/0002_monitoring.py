"""Monitoring: ml_drift (drift statistics per check) and ml_alerts (alert de-duplication).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from vfr.opsdb.schema import ALERTS_TABLE, DRIFT_TABLE

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # as vfr.opsdb.schema.ID_TYPE


def upgrade() -> None:
    op.create_table(
        DRIFT_TABLE,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),  # feature | prediction | performance | calibration
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=True),
    )
    op.create_index("ix_ml_drift_model_computed", DRIFT_TABLE, ["model_name", "computed_at"])
    op.create_table(
        ALERTS_TABLE,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("delivered_to", sa.Text(), nullable=True),
        sa.UniqueConstraint("key", name="uq_ml_alerts_key"),
    )


def downgrade() -> None:
    op.drop_table(ALERTS_TABLE)
    op.drop_index("ix_ml_drift_model_computed", table_name=DRIFT_TABLE)
    op.drop_table(DRIFT_TABLE)
