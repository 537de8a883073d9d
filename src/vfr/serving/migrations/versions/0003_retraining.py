"""Retraining runs and scheduler locks: ml_retraining_runs and ops_job_locks.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ml_retraining_runs",
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
    op.create_index("ix_ml_retraining_runs_started", "ml_retraining_runs", ["started_at"])
    op.create_table(
        "ops_job_locks",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("run_key", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ops_job_locks")
    op.drop_index("ix_ml_retraining_runs_started", "ml_retraining_runs")
    op.drop_table("ml_retraining_runs")
