"""Every SQL statement about monitoring configurations, evaluation leases, alert states and history,
and the latest evaluations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mlops_kit.db import count_rows
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from model_registry.monitoring.tables import AlertEventRow, AlertStateRow, EvaluationRow, MonitoringConfigRow
from model_registry.tables import (
    LogSegment,
    ModelVersion,
    MonitoringBucket,
    PredictionRecord,
    RegisteredModel,
)

# ---- configurations ---------------------------------------------------------------------------


def get_config(session: Session, model_id: int) -> MonitoringConfigRow | None:
    return session.get(MonitoringConfigRow, model_id)


def add_config(session: Session, row: MonitoringConfigRow) -> MonitoringConfigRow:
    session.add(row)
    return row


def put_config(session: Session, row: MonitoringConfigRow) -> MonitoringConfigRow:
    merged = session.merge(row)
    session.flush()
    return merged


def delete_config(session: Session, model_id: int) -> bool:
    """Remove the configuration, the rules' states and the latest evaluation (history stays)."""
    for table in (AlertStateRow, EvaluationRow):
        session.execute(delete(table).where(table.model_id == model_id))
    return bool(
        session.execute(delete(MonitoringConfigRow).where(MonitoringConfigRow.model_id == model_id)).rowcount  # type: ignore[attr-defined]
    )


# ---- evaluation leases ------------------------------------------------------------------------


def _free(now: datetime) -> Any:
    return or_(MonitoringConfigRow.lease_until.is_(None), MonitoringConfigRow.lease_until <= now)


def due_models(session: Session, now: datetime, limit: int) -> list[int]:
    return list(
        session.scalars(
            select(MonitoringConfigRow.model_id)
            .where(MonitoringConfigRow.next_due_at <= now, _free(now))
            .order_by(MonitoringConfigRow.next_due_at)
            .limit(limit)
        )
    )


def claim(
    session: Session, model_id: int, owner: str, now: datetime, until: datetime, due_only: bool
) -> bool:
    """Take the model's evaluation lease if it is free (and, with `due_only`, the run is due).
    One conditional UPDATE: of two replicas racing for it, exactly one changes the row."""
    condition = and_(MonitoringConfigRow.model_id == model_id, _free(now))
    if due_only:
        condition = and_(condition, MonitoringConfigRow.next_due_at <= now)
    result = session.execute(
        update(MonitoringConfigRow).where(condition).values(lease_owner=owner, lease_until=until)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(session: Session, model_id: int, owner: str, next_due_at: datetime | None) -> bool:
    """Give the lease back (and set the next run); false when it was no longer ours."""
    values: dict[str, Any] = {"lease_owner": None, "lease_until": None}
    if next_due_at is not None:
        values["next_due_at"] = next_due_at
    result = session.execute(
        update(MonitoringConfigRow)
        .where(MonitoringConfigRow.model_id == model_id, MonitoringConfigRow.lease_owner == owner)
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def locked_config(session: Session, model_id: int) -> MonitoringConfigRow | None:
    """The configuration row, locked until the transaction ends (the evaluation's write)."""
    query = select(MonitoringConfigRow).where(MonitoringConfigRow.model_id == model_id)
    return session.scalar(query.with_for_update())


# ---- alert states and history -----------------------------------------------------------------


def states(session: Session, model_id: int) -> dict[str, AlertStateRow]:
    rows = session.scalars(select(AlertStateRow).where(AlertStateRow.model_id == model_id))
    return {row.rule: row for row in rows}


def drop_states(session: Session, model_id: int, rules: Sequence[str]) -> None:
    if rules:
        session.execute(
            delete(AlertStateRow).where(AlertStateRow.model_id == model_id, AlertStateRow.rule.in_(rules))
        )


def put_state(session: Session, row: AlertStateRow) -> None:
    session.merge(row)


def add_events(session: Session, rows: Sequence[AlertEventRow]) -> None:
    session.add_all(rows)
    session.flush()


def events(
    session: Session, model_id: int, rule: str | None, limit: int, offset: int
) -> tuple[list[AlertEventRow], int]:
    query = select(AlertEventRow).where(AlertEventRow.model_id == model_id)
    if rule is not None:
        query = query.where(AlertEventRow.rule == rule)
    total = count_rows(session, query)
    page = session.scalars(query.order_by(AlertEventRow.id.desc()).limit(limit).offset(offset))
    return list(page), total


# ---- latest evaluations -----------------------------------------------------------------------


def get_evaluation(session: Session, model_id: int) -> EvaluationRow | None:
    return session.get(EvaluationRow, model_id)


def put_evaluation(session: Session, row: EvaluationRow) -> None:
    session.merge(row)


def exported(session: Session) -> list[tuple[str, EvaluationRow, dict[str, Any]]]:
    """(model name, evaluation row, configuration) of every configured model, for /metrics."""
    query = (
        select(RegisteredModel.name, EvaluationRow, MonitoringConfigRow.config)
        .join(MonitoringConfigRow, MonitoringConfigRow.model_id == RegisteredModel.id)
        .join(EvaluationRow, EvaluationRow.model_id == RegisteredModel.id)
        .order_by(RegisteredModel.name)
    )
    return [(name, row, config) for name, row, config in session.execute(query)]


def registered_metrics(
    session: Session, versions: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """{(model name, version): the metrics registered with the version} of the given versions."""
    if not versions:
        return {}
    query = (
        select(RegisteredModel.name, ModelVersion.version, ModelVersion.metrics)
        .join(ModelVersion, ModelVersion.model_id == RegisteredModel.id)
        .where(or_(*(and_(RegisteredModel.name == m, ModelVersion.version == v) for m, v in versions)))
    )
    return {(name, version): metrics or {} for name, version, metrics in session.execute(query)}


def all_states(session: Session) -> list[tuple[str, AlertStateRow]]:
    query = select(RegisteredModel.name, AlertStateRow).join(
        AlertStateRow, AlertStateRow.model_id == RegisteredModel.id
    )
    return [(name, row) for name, row in session.execute(query)]


def logged_counts(session: Session, model_id: int, version: str) -> tuple[int, int]:
    """(predictions, labelled predictions) logged for the version: the hourly buckets' counts
    plus the segments not rolled up yet (the per-row table is not scanned); labelled ones from the
    labelled rows' partial index, so within the label retention."""
    rolled = session.scalar(
        select(func.coalesce(func.sum(MonitoringBucket.rows), 0)).where(
            MonitoringBucket.model_id == model_id, MonitoringBucket.version == version
        )
    )
    fresh = session.scalar(
        select(func.coalesce(func.sum(LogSegment.rows), 0)).where(
            LogSegment.model_id == model_id, LogSegment.version == version, LogSegment.rolled_up.is_(False)
        )
    )
    labelled = session.scalar(
        select(func.count()).where(
            PredictionRecord.model_id == model_id,
            PredictionRecord.version == version,
            PredictionRecord.labelled_at.is_not(None),
        )
    )
    return int(rolled or 0) + int(fresh or 0), int(labelled or 0)


def get_model(session: Session, model_id: int) -> RegisteredModel | None:
    return session.get(RegisteredModel, model_id)


def model_name(session: Session, model_id: int) -> str | None:
    return session.scalar(select(RegisteredModel.name).where(RegisteredModel.id == model_id))
