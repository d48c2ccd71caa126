"""Every SQL statement about deployments. Flushes, never commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlops_kit.db import count_rows
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from model_serving.tables import Deployment


def get(session: Session, name: str) -> Deployment | None:
    return session.scalar(select(Deployment).where(Deployment.name == name))


def get_for_update(session: Session, name: str) -> Deployment | None:
    return session.scalar(select(Deployment).where(Deployment.name == name).with_for_update())


def page(session: Session, limit: int, offset: int, model: str | None) -> tuple[Sequence[Deployment], int]:
    query = select(Deployment)
    if model is not None:
        query = query.where(Deployment.model == model)
    total = count_rows(session, query)
    rows = session.scalars(query.order_by(Deployment.id).limit(limit).offset(offset)).all()
    return rows, total


def all_deployments(session: Session) -> Sequence[Deployment]:
    return session.scalars(select(Deployment).order_by(Deployment.id)).all()


def add(session: Session, values: dict[str, Any]) -> Deployment:
    row = Deployment(**values)
    session.add(row)
    session.flush()
    return row


def remove(session: Session, name: str) -> int:
    return session.execute(delete(Deployment).where(Deployment.name == name)).rowcount  # type: ignore[attr-defined,no-any-return]
