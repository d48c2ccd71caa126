"""monitoring: configuration, alert states and history, latest evaluations

Revision ID: 0004
Revises: 0002 (re-chained onto 0003 at merge)
Create Date: 2026-12-08 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _model_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "monitoring_configs",
        sa.Column("model_id", ID, nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=True),
        _model_fk(),
        sa.PrimaryKeyConstraint("model_id"),
    )
    op.create_index("ix_monitoring_configs_due", "monitoring_configs", ["next_due_at"])
    op.create_table(
        "monitoring_alert_states",
        sa.Column("model_id", ID, nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=True),
        _model_fk(),
        sa.PrimaryKeyConstraint("model_id", "rule"),
    )
    op.create_table(
        "monitoring_alert_events",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("model_id", ID, nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        _model_fk(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_monitoring_alert_events_model", "monitoring_alert_events", ["model_id", "id"])
    op.create_table(
        "monitoring_evaluations",
        sa.Column("model_id", ID, nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("evaluator", sa.String(length=64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        _model_fk(),
        sa.PrimaryKeyConstraint("model_id"),
    )


def downgrade() -> None:
    op.drop_table("monitoring_evaluations")
    op.drop_index("ix_monitoring_alert_events_model", table_name="monitoring_alert_events")
    op.drop_table("monitoring_alert_events")
    op.drop_table("monitoring_alert_states")
    op.drop_index("ix_monitoring_configs_due", table_name="monitoring_configs")
    op.drop_table("monitoring_configs")
