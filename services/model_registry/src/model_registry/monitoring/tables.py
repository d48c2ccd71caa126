"""Monitoring configuration, alert state and history, and the latest evaluation (migration 0004).

They share the registry's metadata (`model_registry.tables.Base`); a model's rows go with it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_kit.audit import utcnow
from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from model_registry.tables import Base, Id

_MODEL_FK = "registered_models.id"


class MonitoringConfigRow(Base):
    """A model's monitoring configuration, when its next evaluation is due, and who holds it."""

    __tablename__ = "monitoring_configs"
    __table_args__ = (Index("ix_monitoring_configs_due", "next_due_at"),)

    model_id: Mapped[int] = mapped_column(ForeignKey(_MODEL_FK, ondelete="CASCADE"), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    next_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(128))


class AlertStateRow(Base):
    """The current state of one alert rule of a model."""

    __tablename__ = "monitoring_alert_states"

    model_id: Mapped[int] = mapped_column(ForeignKey(_MODEL_FK, ondelete="CASCADE"), primary_key=True)
    rule: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    active_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    evaluated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AlertEventRow(Base):
    """One state change of an alert rule, with the evidence it was decided on."""

    __tablename__ = "monitoring_alert_events"
    __table_args__ = (Index("ix_monitoring_alert_events_model", "model_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey(_MODEL_FK, ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)


class EvaluationRow(Base):
    """A model's latest evaluation (what every replica's /metrics reports)."""

    __tablename__ = "monitoring_evaluations"

    model_id: Mapped[int] = mapped_column(ForeignKey(_MODEL_FK, ondelete="CASCADE"), primary_key=True)
    version: Mapped[str | None] = mapped_column(String(64))
    evaluated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_seconds: Mapped[float] = mapped_column(default=0.0)
    evaluator: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
