"""monitoring: columnar log segments, hourly buckets; features leave the per-row table

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 03:40:00

The features of rows logged before this revision are moved into segments (one per 5,000 rows
of a model's version), then the per-row `features` column is dropped.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op
from model_registry.monitoring.segments import encode_columns

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CHUNK = 5000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _micros(moment: datetime) -> int:
    delta = _utc(moment) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _create_tables() -> None:
    op.create_table(
        "monitoring_segments",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("model_id", ID, nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("t_min", sa.DateTime(timezone=True), nullable=False),
        sa.Column("t_max", sa.DateTime(timezone=True), nullable=False),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rolled_up", sa.Boolean(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_monitoring_segments_window", "monitoring_segments", ["model_id", "version", "t_max"])
    op.create_index("ix_monitoring_segments_logged", "monitoring_segments", ["logged_at"])
    op.create_index("ix_monitoring_segments_rolled", "monitoring_segments", ["rolled_up"])
    op.create_table(
        "monitoring_buckets",
        sa.Column("model_id", ID, nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("sample", sa.LargeBinary(), nullable=True),
        sa.Column("raw_pruned", sa.Boolean(), nullable=False),
        sa.Column("labelled", sa.BigInteger(), nullable=False),
        sa.Column("labelled_sample", sa.LargeBinary(), nullable=True),
        sa.Column("labels_pruned", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("model_id", "version", "start"),
    )


def _legacy_chunks(conn: sa.Connection) -> Iterator[list[Any]]:
    rows = conn.execute(
        sa.text(
            "SELECT model_id, version, request_id, timestamp, features, prediction, probability, logged_at "
            "FROM monitoring_predictions ORDER BY model_id, version, id"
        ).columns(
            features=sa.JSON(),
            prediction=sa.JSON(),
            probability=sa.JSON(),
            timestamp=sa.DateTime(timezone=True),
            logged_at=sa.DateTime(timezone=True),
        )
    )
    chunk: list[Any] = []
    for row in rows:
        if chunk and (chunk[0].model_id, chunk[0].version) != (row.model_id, row.version):
            yield chunk
            chunk = []
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _segment(chunk: list[Any]) -> dict[str, Any]:
    n = len(chunk)
    columns: dict[str, list[Any]] = {}
    for i, row in enumerate(chunk):
        for key, value in (row.features or {}).items():
            columns.setdefault(key, [None] * n)[i] = value
    columns.setdefault("prediction", [r.prediction for r in chunk])
    columns.setdefault("probability", [r.probability for r in chunk])
    timestamps = [_utc(r.timestamp) for r in chunk]
    micros = np.array([_micros(t) for t in timestamps], dtype=np.int64)
    return {
        "model_id": chunk[0].model_id,
        "version": chunk[0].version,
        "rows": n,
        "t_min": min(timestamps),
        "t_max": max(timestamps),
        "logged_at": max(_utc(r.logged_at) for r in chunk),
        "rolled_up": False,
        "data": encode_columns([r.request_id for r in chunk], micros, columns),
    }


def upgrade() -> None:
    _create_tables()
    conn = op.get_bind()
    segments = sa.table(
        "monitoring_segments",
        *(
            sa.column(c)
            for c in ("model_id", "version", "rows", "t_min", "t_max", "logged_at", "rolled_up", "data")
        ),
    )
    moved = [_segment(chunk) for chunk in _legacy_chunks(conn)]
    for segment in moved:
        conn.execute(segments.insert().values(**segment))
    if conn.dialect.name == "postgresql":  # segments are incompressible floats: no pglz attempt
        op.execute("ALTER TABLE monitoring_segments ALTER COLUMN data SET STORAGE EXTERNAL")
    with op.batch_alter_table("monitoring_predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_monitoring_predictions_window")
        batch_op.create_index(
            "ix_monitoring_predictions_labelled",
            ["model_id", "version", "timestamp"],
            unique=False,
            postgresql_where=sa.text("labelled_at IS NOT NULL"),
            sqlite_where=sa.text("labelled_at IS NOT NULL"),
        )
        batch_op.drop_column("features")
        batch_op.create_index(
            "ix_monitoring_predictions_logged", ["logged_at"], unique=False, postgresql_using="brin"
        )


def downgrade() -> None:
    with op.batch_alter_table("monitoring_predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_monitoring_predictions_logged")
        batch_op.drop_index("ix_monitoring_predictions_labelled")
        batch_op.create_index("ix_monitoring_predictions_window", ["model_id", "version", "timestamp"])
        batch_op.add_column(sa.Column("features", sa.JSON(), nullable=False, server_default="{}"))
    op.drop_table("monitoring_buckets")
    op.drop_index("ix_monitoring_segments_rolled", table_name="monitoring_segments")
    op.drop_index("ix_monitoring_segments_logged", table_name="monitoring_segments")
    op.drop_index("ix_monitoring_segments_window", table_name="monitoring_segments")
    op.drop_table("monitoring_segments")
