"""The retraining lock becomes a lease: ops_job_locks gains heartbeat_at and run_id.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from vfr.opsdb.schema import LOCKS_TABLE

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # as vfr.opsdb.schema.ID_TYPE


def upgrade() -> None:
    # nullable columns: a plain ALTER TABLE ADD COLUMN on SQLite and PostgreSQL alike; a lock row
    # written before this revision has no heartbeat and is judged by its acquired_at
    op.add_column(LOCKS_TABLE, sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
    op.add_column(LOCKS_TABLE, sa.Column("run_id", _ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table(LOCKS_TABLE) as batch:  # SQLite drops columns by copying the table
        batch.drop_column("run_id")
        batch.drop_column("heartbeat_at")
