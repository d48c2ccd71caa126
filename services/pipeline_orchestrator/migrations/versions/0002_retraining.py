"""Retraining policies and the record of their trigger decisions

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retraining_policies",
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("pipeline", sa.String(length=100), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("cooldown_seconds", sa.Float(), nullable=False),
        sa.Column("evaluation_interval_seconds", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("triggers", sa.JSON(), nullable=False),
        sa.Column("next_evaluation_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_triggered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model"),
    )
    with op.batch_alter_table("retraining_policies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retraining_policies_next_evaluation_at"), ["next_evaluation_at"], unique=False
        )
    op.create_table(
        "retraining_triggers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("decision", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("run_state", sa.String(length=32), nullable=True),
        sa.Column("produced", sa.JSON(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("retraining_triggers", schema=None) as batch_op:
        batch_op.create_index("ix_retraining_triggers_model_at", ["model", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_retraining_triggers_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_table("retraining_triggers")
    op.drop_table("retraining_policies")
