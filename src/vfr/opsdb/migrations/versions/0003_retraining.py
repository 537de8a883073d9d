"""Retraining runs and scheduler locks: ml_retraining_runs and ops_job_locks.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from vfr.opsdb.schema import LOCKS_TABLE, RUNS_TABLE

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # as vfr.opsdb.schema.ID_TYPE


def upgrade() -> None:
    op.create_table(
        RUNS_TABLE,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("champion_before", sa.String(32), nullable=True),
        sa.Column("challenger_version", sa.String(32), nullable=True),
        sa.Column("champion_after", sa.String(32), nullable=True),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("report", sa.Text(), nullable=True),
    )
    op.create_index("ix_ml_retraining_runs_started", RUNS_TABLE, ["started_at"])
    op.create_table(
        LOCKS_TABLE,
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("run_key", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table(LOCKS_TABLE)
    op.drop_index("ix_ml_retraining_runs_started", RUNS_TABLE)
    op.drop_table(RUNS_TABLE)
