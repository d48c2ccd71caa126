"""Every SQL statement about experiments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, Table, delete, insert, select, update
from sqlalchemy.orm import Session

from experiment_tracking.tables import Experiment, ExperimentTag

E: Table = Experiment.__table__  # type: ignore[assignment]
T: Table = ExperimentTag.__table__  # type: ignore[assignment]


def insert_experiment(session: Session, values: dict[str, Any]) -> int:
    return int(session.execute(insert(E).values(**values).returning(E.c.id)).scalar_one())


def get_row(session: Session, experiment_id: int) -> dict[str, Any] | None:
    row = session.execute(select(E).where(E.c.id == experiment_id)).mappings().first()
    return dict(row) if row else None


def get_row_by_name(session: Session, name: str) -> dict[str, Any] | None:
    row = session.execute(select(E).where(E.c.name == name)).mappings().first()
    return dict(row) if row else None


def rows_by_ids(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    rows = session.execute(select(E).where(E.c.id.in_(ids))).mappings()
    return {row["id"]: dict(row) for row in rows}


def tags_by_ids(session: Session, ids: Sequence[int]) -> dict[int, dict[str, str]]:
    found: dict[int, dict[str, str]] = {i: {} for i in ids}
    for exp_id, key, value in session.execute(
        select(T.c.experiment_id, T.c.key, T.c.value).where(T.c.experiment_id.in_(ids))
    ):
        found[exp_id][key] = value
    return found


def update_row(session: Session, experiment_id: int, **values: Any) -> None:
    session.execute(update(E).where(E.c.id == experiment_id).values(**values))


def set_tags(session: Session, experiment_id: int, tags: dict[str, str]) -> None:
    if not tags:
        return
    session.execute(delete(T).where(T.c.experiment_id == experiment_id, T.c.key.in_(list(tags))))
    session.execute(
        insert(T), [{"experiment_id": experiment_id, "key": k, "value": v} for k, v in tags.items()]
    )


def delete_tag(session: Session, experiment_id: int, key: str) -> int:
    result = session.execute(delete(T).where(T.c.experiment_id == experiment_id, T.c.key == key))
    return int(getattr(result, "rowcount", 0) or 0)


def ids_for(session: Session, query: Select[Any], limit: int, offset: int) -> list[int]:
    return [row[0] for row in session.execute(query.limit(limit).offset(offset))]
