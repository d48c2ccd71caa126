"""Staged ingestion: accepted event ids and a log of events waiting to be folded replace the raw
events table; user_metrics loses its variant index (rank tests read the primary key's prefix);
exposures are keyed by (experiment, phase, user).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _recreate() -> str:
    # SQLite builds WITHOUT ROWID tables only on creation: the batch copies user_metrics into one
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade() -> None:
    op.create_table(
        "event_ids",
        sa.Column("experiment_id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "event_id"),
        sqlite_with_rowid=False,
    )
    # every stored event was folded when it arrived: its id is all that is still needed
    op.execute("INSERT INTO event_ids (experiment_id, event_id) SELECT experiment_id, event_id FROM events")
    op.drop_table("events")
    op.create_table(
        "pending_events",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # exposures: keyed by (experiment, phase, user) itself, one B-tree instead of a rowid and an index
    op.create_table(
        "exposures_keyed",
        sa.Column("experiment_id", sa.String(length=36), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "phase", "user_id", name="exposures_pk"),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO exposures_keyed (experiment_id, phase, user_id, variant, at) "
        "SELECT experiment_id, phase, user_id, variant, at FROM exposures"
    )
    op.drop_table("exposures")
    op.rename_table("exposures_keyed", "exposures")
    with op.batch_alter_table(
        "user_metrics", recreate=_recreate(), table_kwargs={"sqlite_with_rowid": False}
    ) as batch_op:
        batch_op.drop_index("ix_user_metrics_lookup")


def downgrade() -> None:
    with op.batch_alter_table("user_metrics", recreate=_recreate()) as batch_op:
        batch_op.create_index(
            "ix_user_metrics_lookup", ["experiment_id", "phase", "metric", "variant"], unique=False
        )
    op.drop_table("pending_events")
    op.create_table(
        "exposures_rowid",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("experiment_id", sa.String(length=36), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("experiment_id", "phase", "user_id"),
    )
    op.execute(
        "INSERT INTO exposures_rowid (experiment_id, phase, user_id, variant, at) "
        "SELECT experiment_id, phase, user_id, variant, at FROM exposures"
    )
    op.drop_table("exposures")
    op.rename_table("exposures_rowid", "exposures")
    op.create_table(
        "events",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("experiment_id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.String(length=100), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("covariate", sa.Float(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("experiment_id", "event_id"),
    )
    op.drop_table("event_ids")
