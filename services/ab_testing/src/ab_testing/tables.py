"""A/B testing tables: experiments and their phases, overrides, exposures, accepted event ids
(idempotency) and the log of events waiting to be folded, per-user metric values (rank tests),
and the per-variant sufficient statistics that analysis reads (it never scans events)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_kit.audit import audit_table, utcnow
from mlops_kit.db import UtcDateTime
from mlops_kit.orm import service_metadata
from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Id = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = service_metadata()


audit_log = audit_table(Base.metadata)


class Status:
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    ARCHIVED = "archived"


class Experiment(Base):
    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    hypothesis: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=Status.DRAFT)
    mode: Mapped[str] = mapped_column(String(16), default="ab")  # ab | bandit | canary
    model_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # the current phase's
    metrics: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    primary_metric: Mapped[str | None] = mapped_column(String(100), nullable=True)
    guardrail_metrics: Mapped[list[str]] = mapped_column(JSON, default=list)
    minimum_detectable_effect: Mapped[float | None] = mapped_column(Float, nullable=True)
    significance_level: Mapped[float] = mapped_column(Float, default=0.05)
    power: Mapped[float] = mapped_column(Float, default=0.8)
    coverage: Mapped[float] = mapped_column(Float, default=1.0)
    seed: Mapped[str] = mapped_column(String(200))
    namespace: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    phase: Mapped[int] = mapped_column(Integer, default=1)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # bandit / canary settings and state
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Phase(Base):
    """A stretch of an experiment with fixed variants and weights; results are per phase."""

    __tablename__ = "phases"
    __table_args__ = (UniqueConstraint("experiment_id", "number"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    seed: Mapped[str] = mapped_column(String(200))
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    coverage: Mapped[float] = mapped_column(Float, default=1.0)
    reason: Mapped[str] = mapped_column(String(200), default="")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Override(Base):
    __tablename__ = "overrides"
    __table_args__ = (UniqueConstraint("experiment_id", "user_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(200))
    variant: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Exposure(Base):
    """A user's first assignment in a phase (the denominator of zero-filled metrics, and SRM)."""

    __tablename__ = "exposures"
    __table_args__ = {"sqlite_with_rowid": False}

    experiment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    phase: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    variant: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ExposureCount(Base):
    __tablename__ = "exposure_counts"

    experiment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    phase: Mapped[int] = mapped_column(Integer, primary_key=True)
    variant: Mapped[str] = mapped_column(String(100), primary_key=True)
    users: Mapped[int] = mapped_column(BigInteger, default=0)


class EventId(Base):
    """The ids of the events folded or waiting to be: an event id is accepted once per experiment."""

    __tablename__ = "event_ids"
    __table_args__ = {"sqlite_with_rowid": False}

    experiment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)


class PendingEvents(Base):
    """Accepted events not yet folded into the users' aggregates and the variants' sums, one row
    per request (an append-only log: ingestion writes it, the folder reads and deletes it in
    chunks of many requests). ``payload``: orjson of ``[[experiment_id, phase, metric, user_id,
    variant, value, covariate], ...]``."""

    __tablename__ = "pending_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    shard: Mapped[int] = mapped_column(Integer, default=0)  # of the users: one folder per shard
    events: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class UserMetric(Base):
    """One user's aggregate for one (component) metric in one phase."""

    __tablename__ = "user_metrics"
    __table_args__ = {"sqlite_with_rowid": False}

    experiment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    phase: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    variant: Mapped[str] = mapped_column(String(100))
    total: Mapped[float] = mapped_column(Float, default=0.0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    covariate: Mapped[float | None] = mapped_column(Float, nullable=True)


class MetricStats(Base):
    """Sufficient statistics of one metric for one variant in one phase, kept up to date on ingestion."""

    __tablename__ = "metric_stats"

    experiment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    phase: Mapped[int] = mapped_column(Integer, primary_key=True)
    variant: Mapped[str] = mapped_column(String(100), primary_key=True)
    metric: Mapped[str] = mapped_column(String(100), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)  # users with a value (zero-filled: see analysis)
    sum: Mapped[float] = mapped_column(Float, default=0.0)
    sum_sq: Mapped[float] = mapped_column(Float, default=0.0)
    n_cov: Mapped[int] = mapped_column(BigInteger, default=0)
    sum_x: Mapped[float] = mapped_column(Float, default=0.0)
    sum_x_sq: Mapped[float] = mapped_column(Float, default=0.0)
    sum_xy: Mapped[float] = mapped_column(Float, default=0.0)
    # ratio metrics: per-user numerator and denominator
    sum_den: Mapped[float] = mapped_column(Float, default=0.0)
    sum_den_sq: Mapped[float] = mapped_column(Float, default=0.0)
    sum_num_den: Mapped[float] = mapped_column(Float, default=0.0)


class Decision(Base):
    """Every automatic (bandit, canary) or manual (promote) decision, with its evidence."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # advance | rollback | promote | reweight | hold
    phase: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
