"""Every SQL statement about aliases and the transition history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVarTuple

from mlops_kit.db import count_rows
from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from model_registry.tables import Alias, ModelVersion, RegisteredModel, Transition


def get_alias(session: Session, model_id: int, alias: str) -> Alias | None:
    return session.get(Alias, (model_id, alias))


def add_alias(session: Session, alias: Alias) -> Alias:
    session.add(alias)
    return alias


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


Columns = TypeVarTuple("Columns")


def _of_models(query: Select[*Columns], names: Sequence[str]) -> Select[*Columns]:
    return query.where(RegisteredModel.name.in_(names)) if names else query


def alias_targets(session: Session, names: Sequence[str], limit: int) -> list[tuple[str, str, str, datetime]]:
    """(model, alias, version, updated_at) of the named models (all when none are named), unordered:
    the caller sorts, so the order is the same on every backend whatever its collation."""
    query = (
        select(RegisteredModel.name, Alias.alias, ModelVersion.version, Alias.updated_at)
        .join(Alias, Alias.model_id == RegisteredModel.id)
        .join(ModelVersion, ModelVersion.id == Alias.version_id)
    )
    rows = session.execute(_of_models(query, names).limit(limit))
    return [(name, alias, version, at) for name, alias, version, at in rows]


def staged_versions(session: Session, names: Sequence[str], limit: int) -> list[tuple[str, str, str, int]]:
    """(model, stage, version, seq) of every version in a stage other than None, unordered."""
    query = (
        select(RegisteredModel.name, ModelVersion.stage, ModelVersion.version, ModelVersion.seq)
        .join(ModelVersion, ModelVersion.model_id == RegisteredModel.id)
        .where(ModelVersion.stage != "None")
    )
    rows = session.execute(_of_models(query, names).limit(limit))
    return [(name, stage, version, seq) for name, stage, version, seq in rows]


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
    total = count_rows(session, query)
    rows = session.scalars(query.order_by(Transition.id.desc()).limit(limit).offset(offset))
    return list(rows), total
