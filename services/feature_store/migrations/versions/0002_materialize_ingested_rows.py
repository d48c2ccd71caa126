"""incremental materialization tracks ingested rows, not only event time

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feature_sets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("materialized_row_id", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("materialization_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("after_row_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("materialization_jobs", schema=None) as batch_op:
        batch_op.drop_column("after_row_id")
    with op.batch_alter_table("feature_sets", schema=None) as batch_op:
        batch_op.drop_column("materialized_row_id")
