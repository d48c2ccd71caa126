"""Every SQL statement about reference profiles and the prediction log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, insert, select, update
from sqlalchemy.orm import Session

from model_registry.tables import ModelVersion, MonitoringReference, PredictionRecord

IN_CHUNK = 500  # ids per IN (...) list
_PREDICTIONS: Table = PredictionRecord.__table__  # type: ignore[assignment]


def get_reference(session: Session, version_id: int) -> MonitoringReference | None:
    return session.get(MonitoringReference, version_id)


def put_reference(session: Session, row: MonitoringReference) -> MonitoringReference:
    merged = session.merge(row)
    session.flush()
    return merged


def known_versions(session: Session, model_id: int, versions: Iterable[str]) -> set[str]:
    wanted = list(set(versions))
    found: set[str] = set()
    for i in range(0, len(wanted), IN_CHUNK):
        found.update(
            session.scalars(
                select(ModelVersion.version).where(
                    ModelVersion.model_id == model_id, ModelVersion.version.in_(wanted[i : i + IN_CHUNK])
                )
            )
        )
    return found


def logged_ids(session: Session, model_id: int, request_ids: list[str]) -> dict[str, int]:
    """request_id -> row id of the ones already logged."""
    found: dict[str, int] = {}
    for i in range(0, len(request_ids), IN_CHUNK):
        rows = session.execute(
            select(PredictionRecord.request_id, PredictionRecord.id).where(
                PredictionRecord.model_id == model_id,
                PredictionRecord.request_id.in_(request_ids[i : i + IN_CHUNK]),
            )
        )
        found.update({rid: pk for rid, pk in rows})
    return found


def add_predictions(session: Session, rows: list[dict[str, Any]]) -> None:
    # a Core insert of the table (one executemany), not the ORM's bulk path with its per-row work
    if rows:
        session.execute(insert(_PREDICTIONS), rows)


def set_labels(session: Session, updates: list[dict[str, Any]]) -> None:
    """`[{"id", "label", "labelled_at"}]` by primary key."""
    if updates:
        session.execute(update(PredictionRecord), updates)


def latest_logged_version(session: Session, model_id: int) -> str | None:
    return session.scalar(
        select(PredictionRecord.version)
        .where(PredictionRecord.model_id == model_id)
        .order_by(PredictionRecord.timestamp.desc(), PredictionRecord.id.desc())
        .limit(1)
    )


def window(
    session: Session,
    model_id: int,
    version: str,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    labelled: bool = False,
) -> list[Row[Any]]:
    """The most recent `limit` predictions of the window [start, end), newest first."""
    query = select(
        PredictionRecord.request_id,
        PredictionRecord.features,
        PredictionRecord.prediction,
        PredictionRecord.probability,
        PredictionRecord.label,
    ).where(PredictionRecord.model_id == model_id, PredictionRecord.version == version)
    if start is not None:
        query = query.where(PredictionRecord.timestamp >= start)
    if end is not None:
        query = query.where(PredictionRecord.timestamp < end)
    if labelled:
        query = query.where(PredictionRecord.labelled_at.is_not(None))
    query = query.order_by(PredictionRecord.timestamp.desc(), PredictionRecord.id.desc()).limit(limit)
    return list(session.execute(query))
