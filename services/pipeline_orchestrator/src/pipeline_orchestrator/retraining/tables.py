"""Retraining policies (one per model) and the record of every trigger decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_kit.audit import utcnow
from mlops_kit.db import UtcDateTime
from sqlalchemy import JSON, Boolean, Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pipeline_orchestrator.tables import Base


class RetrainingPolicy(Base):
    __tablename__ = "retraining_policies"

    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(100))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cooldown_seconds: Mapped[float] = mapped_column(Float, default=3600.0)
    evaluation_interval_seconds: Mapped[float] = mapped_column(Float, default=300.0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # the validated trigger settings: {"performance", "drift", "schedule", "new_data", "alerts"}
    triggers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    next_evaluation_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    next_scheduled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_triggered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class RetrainingTrigger(Base):
    __tablename__ = "retraining_triggers"
    __table_args__ = (Index("ix_retraining_triggers_model_at", "model", "at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    decision: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    run_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    produced: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
