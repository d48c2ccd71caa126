"""Feature store tables: the registry (entities, feature sets and their schema versions, feature
services), the offline store, materialization jobs and feature statistics.

Timestamps of feature rows are integers, microseconds since the Unix epoch in UTC: point-in-time
joins compare and index them as plain numbers on SQLite and PostgreSQL alike. Registry times are
timezone-aware datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_kit.audit import audit_table, utcnow
from mlops_kit.db import UtcDateTime
from mlops_kit.orm import service_metadata
from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Id = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = service_metadata()


audit_log = audit_table(Base.metadata)


class Entity(Base):
    """What features describe (a user, a driver): its join keys and their value type."""

    __tablename__ = "entities"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    join_keys: Mapped[list[str]] = mapped_column(JSON)
    value_type: Mapped[str] = mapped_column(String(16))  # string | int
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class FeatureSet(Base):
    """A named group of features of one entity. Its schema lives in versions; `latest_version`
    is the one writes use unless they name another."""

    __tablename__ = "feature_sets"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    entity_id: Mapped[int] = mapped_column(Id, ForeignKey("entities.id"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str | None] = mapped_column(String(256), nullable=True)
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    ttl_seconds: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # None: never expires
    latest_version: Mapped[int] = mapped_column(Integer, default=1)
    # bumped on every change; replicas compare it to know their cached schema is stale
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # materialization watermark: offline rows with event time up to here are in the online store
    materialized_until_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # the newest offline row (by id: the ingestion order) an incremental job has copied: rows
    # ingested later are materialized whatever their event time
    materialized_row_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class FeatureSetVersion(Base):
    """One schema of a feature set: `features` is `[{"name", "type", "description"}]`."""

    __tablename__ = "feature_set_versions"

    feature_set_id: Mapped[int] = mapped_column(
        Id, ForeignKey("feature_sets.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    features: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    breaking: Mapped[bool] = mapped_column(default=False)
    change: Mapped[str] = mapped_column(Text, default="")  # what changed from the previous version
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class FeatureService(Base):
    """A named, versioned list of features a model consumes (`set:feature` references, each
    pinned to the feature-set version current when the service version was made)."""

    __tablename__ = "feature_services"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    features: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class OfflineRow(Base):
    """Every ingested row, kept: training data is read from here with point-in-time joins.
    `values` maps feature name to value, as written under schema `version`."""

    __tablename__ = "offline_rows"
    __table_args__ = (
        Index("ix_offline_rows_lookup", "feature_set_id", "entity_key", "event_ts", "created_ts"),
        Index("ix_offline_rows_event", "feature_set_id", "event_ts"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    feature_set_id: Mapped[int] = mapped_column(Id, ForeignKey("feature_sets.id", ondelete="CASCADE"))
    entity_key: Mapped[str] = mapped_column(String(512))
    event_ts: Mapped[int] = mapped_column(BigInteger)  # µs since epoch, UTC
    created_ts: Mapped[int] = mapped_column(BigInteger)  # µs since epoch, UTC (ingestion time if not given)
    version: Mapped[int] = mapped_column(Integer)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)


class MaterializationJob(Base):
    """Offline → online copy of a time range, with progress."""

    __tablename__ = "materialization_jobs"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    feature_set_id: Mapped[int] = mapped_column(
        Id, ForeignKey("feature_sets.id", ondelete="CASCADE"), index=True
    )
    start_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    end_us: Mapped[int] = mapped_column(BigInteger)
    incremental: Mapped[bool] = mapped_column(default=False)
    # incremental jobs: rows ingested after this offline row id are copied too, older event times included
    after_row_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="PENDING")  # PENDING RUNNING SUCCEEDED FAILED
    rows_total: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_done: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class FeatureStatistics(Base):
    """Per feature of a feature-set version: mergeable running statistics (`state`, updated on
    every ingestion) and the summary served from them (`summary`)."""

    __tablename__ = "feature_statistics"

    feature_set_id: Mapped[int] = mapped_column(
        Id, ForeignKey("feature_sets.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
