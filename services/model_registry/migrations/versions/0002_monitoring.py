"""monitoring: reference profiles and the prediction log

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 02:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitoring_references",
        sa.Column("version_id", ID, nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id"),
    )
    op.create_table(
        "monitoring_predictions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("model_id", ID, nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("prediction", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("probability", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("label", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "request_id", name="uq_monitoring_predictions_request"),
    )
    with op.batch_alter_table("monitoring_predictions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_monitoring_predictions_window", ["model_id", "version", "timestamp"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("monitoring_predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_monitoring_predictions_window")
    op.drop_table("monitoring_predictions")
    op.drop_table("monitoring_references")
