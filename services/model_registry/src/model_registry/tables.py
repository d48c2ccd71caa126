"""Registry tables. Tags and metrics are also kept in index tables so filters stay portable SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_kit.audit import audit_table, utcnow
from mlops_kit.orm import service_metadata
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Id = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = service_metadata()


audit_log = audit_table(Base.metadata)


# ids name storage prefixes, so SQLite must never hand out a deleted row's id again
NO_REUSE = {"sqlite_autoincrement": True}


class RegisteredModel(Base):
    __tablename__ = "registered_models"
    __table_args__ = NO_REUSE

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    next_seq: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(128))


class ModelTag(Base):
    __tablename__ = "model_tags"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(256), primary_key=True, index=True)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_model_versions_version"),
        UniqueConstraint("model_id", "seq", name="uq_model_versions_seq"),
        NO_REUSE,
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    framework: Mapped[str] = mapped_column(String(32), index=True)
    format: Mapped[str] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(16), default="None")
    status: Mapped[str] = mapped_column(String(16), default="registered")
    description: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(128))


class VersionTag(Base):
    __tablename__ = "version_tags"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(256), primary_key=True, index=True)


class VersionMetric(Base):
    __tablename__ = "version_metrics"
    __table_args__ = (Index("ix_version_metrics_key_value", "key", "value"),)

    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("version_id", "path", name="uq_artifacts_path"), NO_REUSE)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(512))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Alias(Base):
    __tablename__ = "aliases"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(128))


class Transition(Base):
    """History of alias moves and stage transitions; one `event_id` groups one user action."""

    __tablename__ = "transitions"
    __table_args__ = (Index("ix_transitions_model_kind_name", "model_id", "kind", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(32), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str | None] = mapped_column(String(64))
    from_value: Mapped[str | None] = mapped_column(String(64))
    to_value: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MonitoringReference(Base):
    """A version's reference profile (the core's JSON), replaced on every PUT."""

    __tablename__ = "monitoring_references"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    profile: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(128))


class PredictionRecord(Base):
    """One logged prediction (its features are in the batch's `LogSegment`); its label arrives
    later. Times are stored in UTC. Kept `monitoring_label_retention_days` after logging."""

    __tablename__ = "monitoring_predictions"
    __table_args__ = (
        UniqueConstraint("model_id", "request_id", name="uq_monitoring_predictions_request"),
        # labelled rows only (what performance windows read): an unlabelled row costs no entry
        Index(
            "ix_monitoring_predictions_labelled",
            "model_id",
            "version",
            "timestamp",
            postgresql_where=text("labelled_at IS NOT NULL"),
            sqlite_where=text("labelled_at IS NOT NULL"),
        ),
        # BRIN: rows arrive in logging order, and a B-tree here would cost every insert
        Index("ix_monitoring_predictions_logged", "logged_at", postgresql_using="brin"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    request_id: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    prediction: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    probability: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    label: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    labelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    logged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LogSegment(Base):
    """The features (and prediction, probability) of one accepted batch's rows of one version,
    columnar in one blob (`monitoring.segments`). Kept `monitoring_raw_retention_days` after
    logging, and until rolled up into the hourly buckets."""

    __tablename__ = "monitoring_segments"
    __table_args__ = (
        Index("ix_monitoring_segments_window", "model_id", "version", "t_max"),
        Index("ix_monitoring_segments_logged", "logged_at"),
        Index("ix_monitoring_segments_rolled", "rolled_up"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    t_min: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    t_max: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    logged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rolled_up: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class MonitoringBucket(Base):
    """One hour of one version's log, kept `monitoring_aggregate_retention_days`: the number of
    rows and labelled rows, and bounded uniform samples of the rows (a segment with sampling
    keys) and of the labelled rows (for performance). `raw_pruned`/`labels_pruned` say that some
    of the hour's raw rows are gone, so windows over it are answered from the samples."""

    __tablename__ = "monitoring_buckets"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    sample: Mapped[bytes | None] = mapped_column(LargeBinary)
    raw_pruned: Mapped[bool] = mapped_column(Boolean, default=False)
    labelled: Mapped[int] = mapped_column(BigInteger, default=0)
    labelled_sample: Mapped[bytes | None] = mapped_column(LargeBinary)
    labels_pruned: Mapped[bool] = mapped_column(Boolean, default=False)
