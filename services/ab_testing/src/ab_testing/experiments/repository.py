"""Every SQL statement on experiments, phases, overrides and decisions. Flushes, never commits."""

from __future__ import annotations

from collections.abc import Sequence

from mlops_kit.db import count_rows, lock_key
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from ab_testing.tables import Decision, Experiment, Override, Phase


def find(session: Session, ref: str, *, lock: bool = False) -> Experiment | None:
    """The experiment whose id or key is ``ref``; ``lock``: its row locked (``FOR UPDATE``)."""
    query = select(Experiment).where(or_(Experiment.id == ref, Experiment.key == ref))
    if lock and session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalar(query)


def lock_new_key(session: Session, key: str) -> None:
    lock_key(session, "ab.experiment", key)  # two creations of one key: one wins, one is told


def key_taken(session: Session, key: str) -> bool:
    return session.scalar(select(Experiment.id).where(Experiment.key == key)) is not None


def add(session: Session, row: Experiment | Phase | Override | Decision) -> None:
    session.add(row)


def flush(session: Session) -> None:
    session.flush()


def page(
    session: Session, status: str | None, mode: str | None, limit: int, offset: int
) -> tuple[int, Sequence[Experiment]]:
    query = select(Experiment)
    if status:
        query = query.where(Experiment.status == status)
    if mode:
        query = query.where(Experiment.mode == mode)
    total = count_rows(session, query)
    rows = session.scalars(query.order_by(Experiment.created_at.desc()).limit(limit).offset(offset)).all()
    return total, rows


def phase(session: Session, experiment_id: str, number: int) -> Phase | None:
    return session.scalar(select(Phase).where(Phase.experiment_id == experiment_id, Phase.number == number))


def phases(session: Session, experiment_id: str) -> Sequence[Phase]:
    return session.scalars(
        select(Phase).where(Phase.experiment_id == experiment_id).order_by(Phase.number)
    ).all()


def overrides(session: Session, experiment_id: str) -> dict[str, str]:
    query = select(Override.user_id, Override.variant).where(Override.experiment_id == experiment_id)
    return {user_id: variant for user_id, variant in session.execute(query).all()}


def override(session: Session, experiment_id: str, user_id: str) -> Override | None:
    return session.scalar(
        select(Override).where(Override.experiment_id == experiment_id, Override.user_id == user_id)
    )


def delete_override(session: Session, experiment_id: str, user_id: str) -> None:
    session.execute(
        delete(Override).where(Override.experiment_id == experiment_id, Override.user_id == user_id)
    )


def decisions(
    session: Session, experiment_id: str, kind: str | None, limit: int, offset: int
) -> tuple[int, Sequence[Decision]]:
    query = select(Decision).where(Decision.experiment_id == experiment_id)
    if kind:
        query = query.where(Decision.kind == kind)
    total = count_rows(session, query)
    rows = session.scalars(query.order_by(Decision.id).limit(limit).offset(offset)).all()
    return total, rows


def decision(session: Session, decision_id: int | None) -> Decision | None:
    return session.get(Decision, decision_id) if decision_id is not None else None


def delete_decision(session: Session, decision: Decision) -> None:
    session.delete(decision)
