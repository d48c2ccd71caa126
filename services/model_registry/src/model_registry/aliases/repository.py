"""Every SQL statement about aliases and the transition history."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from model_registry.tables import Alias, ModelVersion, Transition


def get_alias(session: Session, model_id: int, alias: str) -> Alias | None:
    return session.get(Alias, (model_id, alias))


def resolve(session: Session, model_id: int, alias: str) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion)
        .join(Alias, Alias.version_id == ModelVersion.id)
        .where(Alias.model_id == model_id, Alias.alias == alias)
    )


def list_aliases(session: Session, model_id: int) -> list[tuple[Alias, str]]:
    rows = session.execute(
        select(Alias, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == Alias.version_id)
        .where(Alias.model_id == model_id)
        .order_by(Alias.alias)
    )
    return [(a, v) for a, v in rows]


def delete_alias(session: Session, alias: Alias) -> None:
    session.execute(delete(Alias).where(Alias.model_id == alias.model_id, Alias.alias == alias.alias))


def versions_in_stage(session: Session, model_id: int, stage: str) -> list[ModelVersion]:
    return list(
        session.scalars(
            select(ModelVersion)
            .where(ModelVersion.model_id == model_id, ModelVersion.stage == stage)
            .order_by(ModelVersion.seq)
        )
    )


def add_transitions(session: Session, rows: list[Transition]) -> None:
    session.add_all(rows)
    session.flush()


def last_transition(
    session: Session,
    model_id: int,
    kind: str,
    name: str,
    action: str | None = None,
) -> Transition | None:
    query = select(Transition).where(
        Transition.model_id == model_id, Transition.kind == kind, Transition.name == name
    )
    if action:
        query = query.where(Transition.action == action)
    return session.scalar(query.order_by(Transition.id.desc()).limit(1))


def event(session: Session, event_id: str) -> list[Transition]:
    return list(
        session.scalars(select(Transition).where(Transition.event_id == event_id).order_by(Transition.id))
    )


def history(
    session: Session,
    model_id: int,
    kind: str | None,
    name: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Transition], int]:
    query = select(Transition).where(Transition.model_id == model_id)
    if kind:
        query = query.where(Transition.kind == kind)
    if name:
        query = query.where(Transition.name == name)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Transition.id.desc()).limit(limit).offset(offset))
    return list(rows), total
