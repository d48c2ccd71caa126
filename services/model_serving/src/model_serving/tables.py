"""Serving tables: the deployments every replica loads (what each replica has loaded is its own
state, reported by the replica that answers)."""

from __future__ import annotations

from datetime import datetime

from mlops_kit.audit import audit_table, utcnow
from mlops_kit.db import UtcDateTime
from mlops_kit.orm import service_metadata
from sqlalchemy import BigInteger, Boolean, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Id = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = service_metadata()


audit_log = audit_table(Base.metadata)


class Deployment(Base):
    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str] = mapped_column(String(128))
    alias: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[str | None] = mapped_column(String(32))
    feature_service: Mapped[str | None] = mapped_column(String(128))
    experiment: Mapped[str | None] = mapped_column(String(128))
    shadow_alias: Mapped[str | None] = mapped_column(String(64))
    shadow_version: Mapped[str | None] = mapped_column(String(64))
    monitoring: Mapped[bool] = mapped_column(Boolean, default=True)
    min_replicas: Mapped[int] = mapped_column(Integer, default=1)
    max_replicas: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(128))
