"""Prediction log: ml_predictions and ml_outcomes.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from vfr.opsdb.schema import OUTCOMES_TABLE, PREDICTIONS_TABLE

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # as vfr.opsdb.schema.ID_TYPE


def upgrade() -> None:
    op.create_table(
        PREDICTIONS_TABLE,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("served_at", sa.DateTime(), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("feature_date", sa.Date(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("horizon", sa.String(8), nullable=False),
        sa.Column("predicted_class", sa.SmallInteger(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("confidence_level", sa.String(8), nullable=True),
        sa.Column("features", sa.Text(), nullable=True),
        sa.UniqueConstraint("model_name", "model_version", "horizon", "feature_date", "symbol",
                            name="uq_ml_predictions_key"),
    )
    op.create_index("ix_ml_predictions_date", PREDICTIONS_TABLE, ["feature_date"])
    op.create_table(
        OUTCOMES_TABLE,
        sa.Column("prediction_id", _ID, sa.ForeignKey(f"{PREDICTIONS_TABLE}.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("horizon_end", sa.Date(), nullable=False),
        sa.Column("realised_return", sa.Float(), nullable=False),
        sa.Column("excess_return", sa.Float(), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table(OUTCOMES_TABLE)
    op.drop_index("ix_ml_predictions_date", table_name=PREDICTIONS_TABLE)
    op.drop_table(PREDICTIONS_TABLE)
