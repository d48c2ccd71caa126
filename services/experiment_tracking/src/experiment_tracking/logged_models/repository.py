"""SQL for MLflow 3 logged models."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from experiment_tracking.tables import LoggedModel

LM: Table = LoggedModel.__table__  # type: ignore[assignment]


def insert_model(session: Session, values: dict[str, Any]) -> None:
    session.execute(insert(LM).values(**values))


def get_row(session: Session, model_id: str) -> dict[str, Any] | None:
    row = session.execute(select(LM).where(LM.c.id == model_id)).mappings().first()
    return dict(row) if row else None


def update_row(session: Session, model_id: str, **values: Any) -> None:
    session.execute(update(LM).where(LM.c.id == model_id).values(**values))


def search_rows(
    session: Session, experiment_ids: list[int], name: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    query = select(LM).where(LM.c.experiment_id.in_(experiment_ids), LM.c.lifecycle_stage == "active")
    if name is not None:
        query = query.where(LM.c.name == name)
    query = query.order_by(LM.c.creation_time.desc(), LM.c.id).limit(limit).offset(offset)
    return [dict(row) for row in session.execute(query).mappings()]
